package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"netipl/netstack/dhcpv4"
	"netipl/netstack/tftp"
	"netipl/pxecfg"
)

// TestConsoleLines pins every console line word for word (design §5; QEMU's lines from
// research/qemu-netboot.md §2.10 where they exist).
func TestConsoleLines(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	notFound := classify(fmt.Errorf("tftp RRQ %q from 10.0.2.2:69: %w", "pxelinux.cfg/0A", &tftp.Error{Code: 1, Message: "not found"}))
	tests := []struct {
		name string
		emit func(c *console)
		want string
	}{
		{"start", func(c *console) { c.start() }, "Network boot starting...\n"},
		{"mac", func(c *console) { c.mac(mac) }, "  Using MAC address: 52:54:00:12:34:56\n"},
		{"dhcp countdown", func(c *console) { c.dhcpStart(); c.dhcpRound(10); c.dhcpRound(9); c.dhcpDone() },
			"  Requesting information via DHCP:     \b\b\b010\b\b\b009\b\b\b\bdone\n"},
		{"dhcp failed", func(c *console) { c.dhcpStart(); c.dhcpRound(1); c.dhcpFailed(10) },
			"  Requesting information via DHCP:     \b\b\b001\nGiving up after 10 DHCP requests\n"},
		{"dhcp failed early", func(c *console) { c.dhcpStart(); c.dhcpRound(10); c.dhcpRound(9); c.dhcpRound(8); c.dhcpFailed(3) },
			"  Requesting information via DHCP:     \b\b\b010\b\b\b009\b\b\b008\nGiving up after 3 DHCP requests\n"},
		{"ipv4", func(c *console) { c.address(netip.MustParseAddr("10.0.2.15")) }, "  Using IPv4 address: 10.0.2.15\n"},
		{"ipv6", func(c *console) { c.address(netip.MustParseAddr("fec0::5054:ff:fe12:3456")) }, "  Using IPv6 address: fec0::5054:ff:fe12:3456\n"},
		{"server", func(c *console) { c.server("10.0.2.2") }, "  Using TFTP server: 10.0.2.2\n"},
		{"bootfile", func(c *console) { c.bootfile("pxelinux.cfg") }, "  Bootfile name: 'pxelinux.cfg'\n"},
		{"no bootfile", func(c *console) { c.bootfile("") }, ""},
		{"bootfile step", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile", URL: "tftp://10.0.2.2/boot.cfg", Size: 61}, "10.0.2.2")
		}, "  TFTP: Received boot.cfg (61 Bytes)\n"},
		{"bootfile step 1024", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile", URL: "tftp://10.0.2.2/boot.cfg", Size: 1024}, "10.0.2.2")
		}, "  TFTP: Received boot.cfg (1024 Bytes)\n"},
		{"bootfile step KBytes", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile", URL: "tftp://10.0.2.2/boot.cfg", Size: 2047}, "10.0.2.2")
		}, "  TFTP: Received boot.cfg (1 KBytes)\n"},
		{"bootfile too small", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile", URL: "tftp://10.0.2.2/tiny.bin", Size: 4, Err: errors.New("tiny.bin is too small (4 bytes only)")}, "10.0.2.2")
		}, "  tiny.bin is too small (4 bytes only)\n"},
		{"bootfile missing", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile", URL: "tftp://10.0.2.2/missing.img", Err: classify(fmt.Errorf("tftp RRQ %q from 10.0.2.2:69: %w", "missing.img", &tftp.Error{Code: 1, Message: "file not found"}))}, "10.0.2.2")
		}, "  tftp RRQ \"missing.img\" from 10.0.2.2:69: file not found (code 1)\n"},
		{"bootfile error without its name", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile", URL: "tftp://10.0.2.2/k.img", Err: errors.New("open socket: no buffers")}, "10.0.2.2")
		}, "  k.img: open socket: no buffers\n"},
		{"probe error naming the file", func(c *console) {
			c.step(pxecfg.Step{What: "IP", URL: "tftp://10.0.2.2/pxelinux.cfg/0A", Err: errors.New(`tftp RRQ "pxelinux.cfg/0A" from 10.0.2.2:69: no response from server`)}, "10.0.2.2")
		}, "Trying pxelinux.cfg files...\n  tftp RRQ \"pxelinux.cfg/0A\" from 10.0.2.2:69: no response from server (IP candidate)\n"},
		{"probes", func(c *console) {
			c.step(pxecfg.Step{What: "MAC", URL: "tftp://10.0.2.2/pxelinux.cfg/01-52-54-00-12-34-56", Err: notFound}, "10.0.2.2")
			c.step(pxecfg.Step{What: "IP", URL: "tftp://10.0.2.2/pxelinux.cfg/0A", Err: errors.New("tftp RRQ: no response from server")}, "10.0.2.2")
			c.step(pxecfg.Step{What: "default", URL: "tftp://10.0.2.2/pxelinux.cfg/default", Size: 52}, "10.0.2.2")
		}, "Trying pxelinux.cfg files...\n" +
			"  pxelinux.cfg/01-52-54-00-12-34-56 (MAC): not found\n" +
			"  pxelinux.cfg/0A (IP): tftp RRQ: no response from server\n" +
			"  TFTP: Received pxelinux.cfg/default (52 Bytes)\n"},
		{"http step on another host", func(c *console) {
			c.step(pxecfg.Step{What: "referenced file", URL: "http://boot.lab/inc.cfg", Size: 9}, "10.0.2.2")
		}, "  HTTP: Received http://boot.lab/inc.cfg (9 Bytes)\n"},
		{"rejected bootfile", func(c *console) {
			c.step(pxecfg.Step{What: "bootfile rejected", URL: "tftp://10.0.2.2/x", Err: errors.New("boot file x (.INS file): x:2: no address")}, "10.0.2.2")
		}, "  boot file x (.INS file): x:2: no address\n"},
		{"entry", func(c *console) { c.entry("linux") }, "Loading pxelinux.cfg entry 'linux'\n"},
		{"received KBytes", func(c *console) {
			c.received("tftp://10.0.2.2/kernel.img", "kernel.img", 5066752, 310*time.Millisecond)
		}, "  TFTP: Received kernel.img (4948 KBytes) in 0.31 s, 16.3 MB/s\n"},
		{"received Bytes", func(c *console) { c.received("http://h/x", "http://h/x", 1000, time.Second) },
			"  HTTP: Received http://h/x (1000 Bytes) in 1.00 s, 0.0 MB/s\n"},
		{"progress", func(c *console) { c.progress("initrd", 200<<20, 1<<30, 2*time.Second) },
			"  Receiving initrd: 200 of 1024 MiB (104.9 MB/s)\n"},
		{"verified", func(c *console) { c.verified("initrd.gz") }, "  SHA256 verified: initrd.gz\n"},
		{"done", func(c *console) { c.done() }, "Network loading done, starting kernel...\n"},
		{"no kernel", func(c *console) {
			c.fail(fmt.Errorf("pxelinux.cfg/default:2: LABEL linux: %w", pxecfg.ErrNoKernel))
		}, "netipl: Kernel entry is missing! (pxelinux.cfg/default:2: LABEL linux: no KERNEL)\nFailed to load OS from network\n"},
		{"no lease", func(c *console) {
			c.fail(fmt.Errorf("dhcpv4: %w after 10 rounds (1m0s)", dhcpv4.ErrNoLease))
		}, "netipl: Could not get IP address (dhcpv4: no DHCP lease after 10 rounds (1m0s))\nFailed to load OS from network\n"},
		{"fail", func(c *console) { c.fail(errors.New("boot: kernel image of 12 bytes is too small\n")) },
			"netipl: boot: kernel image of 12 bytes is too small\nFailed to load OS from network\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.emit(&console{w: &b})
			if b.String() != tt.want {
				t.Errorf("console %s:\n got %q\nwant %q", tt.name, b.String(), tt.want)
			}
		})
	}
}

func TestParseSidecar(t *testing.T) {
	good := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	if d, err := parseSidecar([]byte(good + "  test\n")); err != nil || fmt.Sprintf("%x", d) != good {
		t.Errorf("parseSidecar(good) = %x, %v", d, err)
	}
	for _, bad := range []string{"", "   \n", "abc  file", good[:63] + "z  f"} {
		if _, err := parseSidecar([]byte(bad)); err == nil {
			t.Errorf("parseSidecar(%q) succeeded", bad)
		}
	}
}

func TestMaskOf(t *testing.T) {
	for _, tt := range []struct{ p, want string }{{"10.0.2.15/24", "255.255.255.0"}, {"10.1.2.3/0", "0.0.0.0"}, {"10.0.0.1/32", "255.255.255.255"}} {
		if got := maskOf(netip.MustParsePrefix(tt.p)); got.String() != tt.want {
			t.Errorf("maskOf(%s) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-mem", "x"}, &out, &errb); code != 2 {
		t.Errorf("run(-mem without -dry-run) = %d, want 2 (%s)", code, errb.String())
	}
	if code := run([]string{"extra"}, &out, &errb); code != 2 {
		t.Errorf("run(extra) = %d, want 2", code)
	}
}
