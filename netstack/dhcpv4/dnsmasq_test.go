package dhcpv4

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"netipl/internal/testnet"
	"netipl/netstack/tftp"
)

// TestDnsmasq gets a lease from a real dnsmasq across a veth pair between two network namespaces, checks that
// dnsmasq recognised the PXE identity (vendor class and user class tags select options),
// fetches the boot file from dnsmasq's TFTP server, and releases the lease. Needs root and iproute2.
func TestDnsmasq(t *testing.T) {
	srvNS, cliNS := testnet.VethPair(t, "d4")
	testnet.Run(t, "ip", "-n", srvNS, "addr", "add", "10.77.0.1/24", "dev", "vsrv")
	testnet.Run(t, "ip", "-n", srvNS, "link", "set", "vsrv", "up")
	testnet.Run(t, "ip", "-n", cliNS, "link", "set", "vcli", "address", clientMAC.String(), "up")

	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("s390x kernel image\n"), 100000)
	os.MkdirAll(filepath.Join(dir, "s390x"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "s390x", "kernel.img"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := testnet.StartDnsmasq(t, srvNS, "vsrv", "", "--no-ping",
		"--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h",
		"--dhcp-boot=s390x/kernel.img,,10.77.0.1",
		"--dhcp-vendorclass=set:s390pxe,PXEClient:Arch:00031",
		"--dhcp-userclass=set:netipl,netipl",
		"--dhcp-option=tag:s390pxe,209,pxelinux.cfg/s390x",
		"--dhcp-option=tag:netipl,210,/netipl/",
		"--dhcp-option=option:dns-server,10.77.0.1",
		"--enable-tftp", "--tftp-root="+dir)

	conn, err := testnet.ListenPacketIn(cliNS, "vcli", "udp4", "0.0.0.0:68")
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
		return testnet.ListenPacketIn(cliNS, "", "udp4", l.Addr.Addr().String()+":0")
	}}
	var img testnet.MemFile
	res, err := tc.Get(context.Background(), netip.AddrPortFrom(bs.Addr, 69), l.BootFile, &img)
	if err != nil || !bytes.Equal(img.Bytes, kernel) {
		t.Errorf("tftp Get(%s) from dnsmasq = %+v, %v (%d of %d bytes)", l.BootFile, res, err, len(img.Bytes), len(kernel))
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
