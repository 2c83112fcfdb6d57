package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"netipl/netstack/dhcpv4"
	"netipl/pxecfg"
)

// console emits every line the loader prints: the contract of design §5 (QEMU's lines, kept
// word for word) plus what QEMU's image lacks (each config name tried and its result, transfer
// rates, checksum results, one reason line on failure). Nothing else in the loader writes to
// the console; console_test.go pins each line.
type console struct {
	mu sync.Mutex
	w  io.Writer
	// tried is set once "Trying pxelinux.cfg files..." was printed.
	tried bool
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, format, args...)
}

func (c *console) start() { c.printf("Network boot starting...\n") }

func (c *console) mac(m net.HardwareAddr) { c.printf("  Using MAC address: %s\n", m) }

// dhcpStart, dhcpRound and dhcpDone draw QEMU's countdown: five blanks, then "\b\b\b%03d" for
// each round from 010 down, then "\b\b\b\bdone".
func (c *console) dhcpStart()         { c.printf("  Requesting information via DHCP:     ") }
func (c *console) dhcpRound(left int) { c.printf("\b\b\b%03d", max(left, 0)) }
func (c *console) dhcpDone()          { c.printf("\b\b\b\bdone\n") }

// dhcpFailed ends the countdown with QEMU's words (research/qemu-netboot.md §2.4, §7.6): a line
// break, then "Giving up after N DHCP requests" with the rounds netipl actually ran.
func (c *console) dhcpFailed(rounds int) { c.printf("\nGiving up after %d DHCP requests\n", rounds) }

func (c *console) address(a netip.Addr) {
	if a.Is4() {
		c.printf("  Using IPv4 address: %s\n", a)
	} else {
		c.printf("  Using IPv6 address: %s\n", a)
	}
}

func (c *console) server(s string) { c.printf("  Using TFTP server: %s\n", s) }

func (c *console) bootfile(name string) {
	if name != "" {
		c.printf("  Bootfile name: '%s'\n", name)
	}
}

// step prints one fetch pxecfg.Discover made: the boot file, or a config name and its result.
func (c *console) step(s pxecfg.Step, server string) {
	name := displayName(s.URL, server)
	isCandidate := s.What != "bootfile" && s.What != "bootfile rejected" && s.What != "referenced file"
	if isCandidate && !c.tried {
		c.printf("Trying pxelinux.cfg files...\n")
		c.tried = true
	}
	switch {
	case s.What == "bootfile rejected":
		c.printf("  %v\n", s.Err)
	case s.Err == nil:
		c.printf("  %s: Received %s (%s)\n", protoName(s.URL), name, sizeText(int64(s.Size)))
	case isCandidate && isNotFound(s.Err):
		c.printf("  %s (%s): not found\n", name, s.What)
	case isCandidate && names(s.Err, name):
		c.printf("  %v (%s candidate)\n", s.Err, s.What)
	case isCandidate:
		c.printf("  %s (%s): %v\n", name, s.What, s.Err)
	case names(s.Err, name):
		c.printf("  %v\n", s.Err)
	default:
		c.printf("  %s: %v\n", name, s.Err)
	}
}

// names reports whether err's text already names the file, so a line prints the name once.
func names(err error, name string) bool { return name != "" && strings.Contains(err.Error(), name) }

// sizeText is QEMU's size in "TFTP: Received NAME (...)": "N KBytes" (rounded down) above 1024
// bytes, else "N Bytes" (research/qemu-netboot.md §2.10).
func sizeText(n int64) string {
	if n > 1024 {
		return fmt.Sprintf("%d KBytes", n/1024)
	}
	return fmt.Sprintf("%d Bytes", n)
}

// notes prints what the config says to show (SAY) and what it could not use.
func (c *console) say(line string)     { c.printf("%s\n", line) }
func (c *console) note(n pxecfg.Note)  { c.printf("  Note: %s\n", n) }
func (c *console) selectedBy(w string) { c.printf("  Selected by %s\n", w) }
func (c *console) ins(title string)    { c.printf("Parsing .INS file: %s\n", title) }

func (c *console) entry(label string) { c.printf("Loading pxelinux.cfg entry '%s'\n", label) }

// progress prints one line for a large transfer (every tenth).
func (c *console) progress(name string, got, size int64, elapsed time.Duration) {
	c.printf("  Receiving %s: %d of %d MiB (%s)\n", name, got>>20, size>>20, rate(got, elapsed))
}

// received is QEMU's "TFTP: Received NAME (N KBytes)" with the time and rate added.
func (c *console) received(url, name string, n int64, elapsed time.Duration) {
	c.printf("  %s: Received %s (%s) in %.2f s, %s\n", protoName(url), name, sizeText(n), elapsed.Seconds(), rate(n, elapsed))
}

func (c *console) verified(name string) { c.printf("  SHA256 verified: %s\n", name) }

func (c *console) planLine(s string) { c.printf("  %s\n", s) }

func (c *console) done() { c.printf("Network loading done, starting kernel...\n") }

func (c *console) dryRun() { c.printf("Network loading done, dry run: not starting the kernel\n") }

// fail prints the one reason line and QEMU's failure line. An entry without KERNEL and a failed
// DHCP keep QEMU's words ("Kernel entry is missing!", "Could not get IP address";
// research/qemu-netboot.md §2.4, §9 item 16).
func (c *console) fail(err error) {
	reason := strings.TrimSpace(err.Error())
	switch {
	case errors.Is(err, pxecfg.ErrNoKernel):
		reason = "Kernel entry is missing! (" + reason + ")"
	case errors.Is(err, dhcpv4.ErrNoLease):
		reason = "Could not get IP address (" + reason + ")"
	}
	c.printf("netipl: %s\nFailed to load OS from network\n", reason)
}

// rate formats bytes per elapsed time in MB/s (10^6 bytes, as network tools do).
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/d.Seconds()/1e6)
}

// protoName is "TFTP" or "HTTP" by the URL's scheme.
func protoName(url string) string {
	if strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://") {
		return "HTTP"
	}
	return "TFTP"
}

// displayName shows a tftp:// URL on the boot server as its file name (as QEMU prints it) and
// anything else as the URL.
func displayName(url, server string) string {
	if rest, ok := strings.CutPrefix(url, "tftp://"); ok {
		host, name, _ := strings.Cut(rest, "/")
		if host == server || strings.Trim(host, "[]") == server {
			return name
		}
	}
	return url
}
