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
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"netipl/internal/testnet"
	"netipl/netstack/tftp"
)

type memFile struct{ buf []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.buf) {
		m.buf = append(m.buf, make([]byte, end-len(m.buf))...)
	}
	return copy(m.buf[off:], p), nil
}

// TestDnsmasq runs the IPv6 boot path against a real dnsmasq across a veth pair between two network namespaces:
// stateless (Information-Request) and stateful (IA_NA) exchanges that return the boot-file URL, then a TFTP fetch
// of that URL over IPv6 from the leased address. Needs root and iproute2.
func TestDnsmasq(t *testing.T) {
	if os.Geteuid() != 0 {
		testnet.SkipOrFail(t, "needs root for network namespaces")
	}
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		testnet.SkipOrFail(t, "dnsmasq not installed: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testnet.SkipOrFail(t, "iproute2 not installed: %v", err)
	}
	srvNS, cliNS := fmt.Sprintf("netipl-d6s-%d", os.Getpid()), fmt.Sprintf("netipl-d6c-%d", os.Getpid())
	testnet.Run(t, "ip", "netns", "add", srvNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", srvNS).Run() })
	testnet.Run(t, "ip", "netns", "add", cliNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cliNS).Run() })
	testnet.Run(t, "ip", "link", "add", "vsrv", "netns", srvNS, "type", "veth", "peer", "name", "vcli", "netns", cliNS)
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
	var logs testnet.LockedBuffer
	cmd := exec.Command("ip", "netns", "exec", srvNS, dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface=vsrv", "--bind-interfaces", "--user=root", "--pid-file=", "--log-dhcp", "--log-facility=-",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--dhcp-range=fd00::100,fd00::1ff,64,1h",
		"--dhcp-option=option6:bootfile-url,tftp://[fd00::1]/kernel.img",
		"--dhcp-option=option6:dns-server,[fd00::1]",
		"--enable-tftp", "--tftp-root="+dir)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var conn net.PacketConn
	if err := testnet.InNetns(cliNS, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), "vcli") })
			return serr
		}}
		var err error
		conn, err = lc.ListenPacket(context.Background(), "udp6", "[::]:546")
		return err
	}); err != nil {
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
			var pc net.PacketConn
			err := testnet.InNetns(cliNS, func() error {
				var err error
				pc, err = net.ListenPacket("udp6", "["+l.Addr.String()+"]:0")
				return err
			})
			return pc, err
		}}
		var img memFile
		if _, err := tc.Get(context.Background(), netip.AddrPortFrom(u.Addr, u.Port), u.Path, &img); err != nil ||
			!bytes.Equal(img.buf, kernel) {
			t.Errorf("tftp Get(%s) = %v (%d of %d bytes)", l.BootURL, err, len(img.buf), len(kernel))
		}
	}
}
