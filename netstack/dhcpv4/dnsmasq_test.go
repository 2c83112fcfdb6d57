package dhcpv4

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

// TestDnsmasq gets a lease from a real dnsmasq across a veth pair between two network namespaces, checks that
// dnsmasq recognised the PXE identity (vendor class and user class tags select options),
// fetches the boot file from dnsmasq's TFTP server, and releases the lease. Needs root and iproute2.
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
	srvNS, cliNS := fmt.Sprintf("netipl-d4s-%d", os.Getpid()), fmt.Sprintf("netipl-d4c-%d", os.Getpid())
	testnet.Run(t, "ip", "netns", "add", srvNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", srvNS).Run() })
	testnet.Run(t, "ip", "netns", "add", cliNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cliNS).Run() })
	testnet.Run(t, "ip", "link", "add", "vsrv", "netns", srvNS, "type", "veth", "peer", "name", "vcli", "netns", cliNS)
	testnet.Run(t, "ip", "-n", srvNS, "addr", "add", "10.77.0.1/24", "dev", "vsrv")
	testnet.Run(t, "ip", "-n", srvNS, "link", "set", "vsrv", "up")
	testnet.Run(t, "ip", "-n", cliNS, "link", "set", "vcli", "address", clientMAC.String(), "up")

	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("s390x kernel image\n"), 100000)
	os.MkdirAll(filepath.Join(dir, "s390x"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "s390x", "kernel.img"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testnet.LockedBuffer
	cmd := exec.Command("ip", "netns", "exec", srvNS, dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface=vsrv", "--bind-interfaces", "--no-ping", "--user=root", "--pid-file=", "--log-dhcp", "--log-facility=-",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h",
		"--dhcp-boot=s390x/kernel.img,,10.77.0.1",
		"--dhcp-vendorclass=set:s390pxe,PXEClient:Arch:00031",
		"--dhcp-userclass=set:netipl,netipl",
		"--dhcp-option=tag:s390pxe,209,pxelinux.cfg/s390x",
		"--dhcp-option=tag:netipl,210,/netipl/",
		"--dhcp-option=option:dns-server,10.77.0.1",
		"--enable-tftp", "--tftp-root="+dir)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var conn net.PacketConn
	err = testnet.InNetns(cliNS, func() error {
		lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
					return
				}
				serr = unix.BindToDevice(int(fd), "vcli")
			})
			return serr
		}}
		var err error
		conn, err = lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
		return err
	})
	if err != nil {
		t.Fatalf("client socket in %s: %v", cliNS, err)
	}
	defer conn.Close()

	// dnsmasq needs a moment to bind; the client's own retransmission covers it.
	c := &Client{Conn: conn, HWAddr: clientMAC, UUID: []byte("0123456789abcdef"), InitialTimeout: 500 * time.Millisecond,
		MaxTimeout: time.Second, Total: 20 * time.Second, OfferWait: 50 * time.Millisecond}
	l, err := c.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire from dnsmasq = %v\ndnsmasq log:\n%s", err, logs.String())
	}
	if !l.Addr.Addr().Is4() || l.Addr.Bits() != 24 || l.BootFile != "s390x/kernel.img" || l.ServerID.String() != "10.77.0.1" ||
		l.ConfigFile != "pxelinux.cfg/s390x" || l.PathPrefix != "/netipl/" || fmt.Sprint(l.DNS) != "[10.77.0.1]" {
		t.Errorf("lease from dnsmasq: %s\ndnsmasq log:\n%s", summary(l), logs.String())
	}
	bs, err := l.BootServer(context.Background(), nil)
	if err != nil || bs.Addr.String() != "10.77.0.1" {
		t.Errorf("BootServer = %+v, %v; want 10.77.0.1", bs, err)
	}
	// RELEASE goes unicast from the leased address, so the client interface needs it now.
	testnet.Run(t, "ip", "-n", cliNS, "addr", "add", l.Addr.String(), "dev", "vcli")
	// Fetch the boot file from dnsmasq's TFTP server with the lease's parameters.
	tc := &tftp.Client{Listen: func() (net.PacketConn, error) {
		var pc net.PacketConn
		err := testnet.InNetns(cliNS, func() error {
			var err error
			pc, err = net.ListenPacket("udp4", l.Addr.Addr().String()+":0")
			return err
		})
		return pc, err
	}}
	var img memFile
	res, err := tc.Get(context.Background(), netip.AddrPortFrom(bs.Addr, 69), l.BootFile, &img)
	if err != nil || !bytes.Equal(img.buf, kernel) {
		t.Errorf("tftp Get(%s) from dnsmasq = %+v, %v (%d of %d bytes)", l.BootFile, res, err, len(img.buf), len(kernel))
	}
	if err := c.Release(l); err != nil {
		t.Fatalf("Release = %v", err)
	}
	for i := 0; i < 200 && !strings.Contains(logs.String(), "DHCPRELEASE"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "DHCPRELEASE(vsrv) "+l.Addr.Addr().String()) {
		t.Errorf("dnsmasq did not log the RELEASE of %v:\n%s", l.Addr.Addr(), logs.String())
	}
}
