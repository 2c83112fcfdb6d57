package dhcpv6

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"netipl/internal/testnet"
	"netipl/netstack/tftp"
)

// TestDnsmasq runs the IPv6 boot path against a real dnsmasq across a veth pair between two network namespaces:
// stateless (Information-Request) and stateful (IA_NA) exchanges that return the boot-file URL, then a TFTP fetch
// of that URL over IPv6 from the leased address. Needs root and iproute2.
func TestDnsmasq(t *testing.T) {
	srvNS, cliNS := testnet.VethPair(t, "d6")
	testnet.Run(t, "ip", "-n", srvNS, "addr", "add", "fd00::1/64", "dev", "vsrv", "nodad")
	testnet.Run(t, "ip", "-n", srvNS, "link", "set", "vsrv", "up")
	// No duplicate address detection, so the link-local address is usable at once.
	testnet.Run(t, "ip", "netns", "exec", cliNS, "sysctl", "-qw", "net.ipv6.conf.vcli.accept_dad=0")
	testnet.Run(t, "ip", "-n", cliNS, "link", "set", "vcli", "address", clientMAC.String(), "up")
	for i := 0; ; i++ { // the kernel adds the link-local address shortly after the link comes up
		out, _ := exec.Command("ip", "-n", cliNS, "-6", "addr", "show", "dev", "vcli", "scope", "link").CombinedOutput()
		if strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative") {
			break
		}
		if i == 300 {
			t.Fatalf("no link-local address on vcli: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}

	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("s390x kernel over IPv6\n"), 50000)
	if err := os.WriteFile(filepath.Join(dir, "kernel.img"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := testnet.StartDnsmasq(t, srvNS, "vsrv", "",
		"--dhcp-range=fd00::100,fd00::1ff,64,1h",
		"--dhcp-option=option6:bootfile-url,tftp://[fd00::1]/kernel.img",
		"--dhcp-option=option6:dns-server,[fd00::1]",
		"--enable-tftp", "--tftp-root="+dir)

	conn, err := testnet.ListenPacketIn(cliNS, "vcli", "udp6", "[::]:546")
	if err != nil {
		t.Fatalf("client socket in %s: %v", cliNS, err)
	}
	defer conn.Close()

	for _, stateful := range []bool{false, true} {
		c := &Client{Conn: conn, HWAddr: clientMAC, Stateful: stateful, Zone: "vcli", InitialTimeout: 300 * time.Millisecond,
			MaxTimeout: time.Second, Total: 15 * time.Second, AdvertiseWait: 50 * time.Millisecond}
		l, err := c.Acquire(context.Background())
		if err != nil {
			t.Fatalf("Acquire(stateful=%v) from dnsmasq = %v\ndnsmasq log:\n%s", stateful, err, logs.String())
		}
		if l.BootURL != "tftp://[fd00::1]/kernel.img" || fmt.Sprint(l.DNS) != "[fd00::1]" ||
			stateful != l.Addr.IsValid() || (stateful && !netip.MustParsePrefix("fd00::/64").Contains(l.Addr)) {
			t.Fatalf("Acquire(stateful=%v) = %+v\ndnsmasq log:\n%s", stateful, l, logs.String())
		}
		if !stateful {
			continue
		}
		u, err := ParseBootURL(l.BootURL)
		if err != nil {
			t.Fatal(err)
		}
		// IA_NA carries no prefix length; the on-link /64 comes from the router advertisement in real networks.
		testnet.Run(t, "ip", "-n", cliNS, "addr", "add", l.Addr.String()+"/64", "dev", "vcli", "nodad")
		tc := &tftp.Client{Listen: func() (net.PacketConn, error) {
			return testnet.ListenPacketIn(cliNS, "", "udp6", "["+l.Addr.String()+"]:0")
		}}
		var img testnet.MemFile
		if _, err := tc.Get(context.Background(), netip.AddrPortFrom(u.Addr, u.Port), u.Path, &img); err != nil ||
			!bytes.Equal(img.Bytes, kernel) {
			t.Errorf("tftp Get(%s) = %v (%d of %d bytes)", l.BootURL, err, len(img.Bytes), len(kernel))
		}
	}
}
