package netstack

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	guestMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	peerMAC  = net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}
)

func TestNewRejectsBadConfig(t *testing.T) {
	ch := channel.New(4, 1500, tcpip.LinkAddress(guestMAC))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no MAC", Config{Link: ch}, "netstack: MAC \"\" is not a 6-byte Ethernet address"},
		{"no link", Config{MAC: guestMAC}, "netstack: set exactly one of Config.TapFD, Config.TapName and Config.Link"},
		{"two links", Config{MAC: guestMAC, Link: ch, TapName: "x"}, "netstack: set exactly one of Config.TapFD, Config.TapName and Config.Link"},
		{"tiny MTU", Config{MAC: guestMAC, Link: ch, MTU: 60}, "netstack: MTU 60 outside [68, 65535]"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: New() error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestUDPOverPipe runs two Stacks joined by a gVisor pipe: static addresses, ARP, a UDP echo, a TCP
// exchange and the counters.
func TestUDPOverPipe(t *testing.T) {
	a, b := pipe.New(tcpip.LinkAddress(guestMAC), tcpip.LinkAddress(peerMAC), 1500)
	guest := newTestStack(t, Config{Link: a, MAC: guestMAC}, "10.0.2.15/24")
	peer := newTestStack(t, Config{Link: b, MAC: peerMAC}, "10.0.2.2/24")

	c := dialEcho(t, guest, peer, "10.0.2.2:7777")
	exchangeUDP(t, c, 20)

	l, err := peer.ListenTCP(netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 1<<16)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			conn.Write(buf[:n])
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := guest.DialTCP(ctx, netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("netipl"), 10000)
	go tc.Write(msg)
	got := make([]byte, len(msg))
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFull(tc, got); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("TCP echo of %d bytes: %v", len(msg), err)
	}
	tc.Close()

	s := guest.Stats()
	if s.TxPackets < 21 || s.RxPackets < 21 || s.UDPReceived != 20 || s.DroppedPackets != 0 {
		t.Errorf("guest stats %+v: want ≥21 frames each way, 20 UDP datagrams, no drops", s)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestBroadcastWithoutAddress checks what a DHCP client needs: bind 0.0.0.0:68 with no address,
// send to 255.255.255.255:67, and receive a broadcast reply.
func TestBroadcastWithoutAddress(t *testing.T) {
	ch := channel.New(16, 1500, tcpip.LinkAddress(guestMAC))
	st, err := New(Config{Link: ethernet.New(ch), MAC: guestMAC}) // Ethernet frames, as on a tap
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:68"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("DISCOVER"), &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
		t.Fatalf("WriteTo(255.255.255.255:67) without an address: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pkt := ch.ReadContext(ctx)
	if pkt == nil {
		t.Fatal("no frame sent")
	}
	frame := pkt.ToView().AsSlice()
	pkt.DecRef()
	eth := header.Ethernet(frame)
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	udp := header.UDP(ip.Payload())
	if eth.DestinationAddress() != header.EthernetBroadcastAddress || ip.DestinationAddress() != header.IPv4Broadcast ||
		ip.SourceAddress() != header.IPv4Any || udp.SourcePort() != 68 || udp.DestinationPort() != 67 {
		t.Errorf("sent %v -> %v, %v -> %v, ports %d -> %d; want broadcast from 0.0.0.0:68 to 255.255.255.255:67",
			eth.SourceAddress(), eth.DestinationAddress(), ip.SourceAddress(), ip.DestinationAddress(), udp.SourcePort(), udp.DestinationPort())
	}
	// A broadcast OFFER from 10.0.2.2:67 to 255.255.255.255:68.
	reply := buildUDP(peerMAC, header.EthernetBroadcastAddress, netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("255.255.255.255"), 67, 68, []byte("OFFER"))
	ch.InjectInbound(header.IPv4ProtocolNumber, stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferOf(reply)}))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "OFFER" || from.String() != "10.0.2.2:67" {
		t.Errorf("ReadFrom = %q from %v, %v; want OFFER from 10.0.2.2:67", buf[:n], from, err)
	}
}

func TestSetAddressReplaces(t *testing.T) {
	ch := channel.New(4, 1500, tcpip.LinkAddress(guestMAC))
	st := newTestStack(t, Config{Link: ch, MAC: guestMAC}, "10.0.2.15/24")
	if err := st.SetAddress(netip.MustParsePrefix("192.168.1.7/16")); err != nil {
		t.Fatal(err)
	}
	addrs := st.Stack().AllAddresses()[NICID]
	var v4 []string
	for _, a := range addrs {
		if a.Protocol == header.IPv4ProtocolNumber && a.AddressWithPrefix.Address != header.IPv4Broadcast {
			v4 = append(v4, a.AddressWithPrefix.String())
		}
	}
	if strings.Join(v4, ",") != "192.168.1.7/16" || st.Address().String() != "192.168.1.7/16" {
		t.Errorf("IPv4 addresses after SetAddress = %v, Address() = %v; want only 192.168.1.7/16", v4, st.Address())
	}
	if err := st.SetAddress(netip.MustParsePrefix("fe80::1/64")); err == nil {
		t.Error("SetAddress(IPv6) succeeded")
	}
	if err := st.SetGateway(netip.MustParseAddr("192.168.0.1")); err != nil {
		t.Fatal(err)
	}
	var gw bool
	for _, r := range st.Stack().GetRouteTable() {
		if r.Destination == header.IPv4EmptySubnet && r.Gateway.String() == "192.168.0.1" {
			gw = true
		}
	}
	if !gw {
		t.Errorf("route table %v has no default route via 192.168.0.1", st.Stack().GetRouteTable())
	}
}

// newTestStack is New(cfg) with addr set, closed when the test ends.
func newTestStack(tb testing.TB, cfg Config, addr string) *Stack {
	tb.Helper()
	st, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.SetAddress(netip.MustParsePrefix(addr)); err != nil {
		tb.Fatal(err)
	}
	return st
}

// dialEcho runs a UDP echo server on peer at addr and returns guest's socket connected to it;
// both close when the test ends.
func dialEcho(t *testing.T, guest, peer *Stack, addr string) *UDPConn {
	t.Helper()
	srv, err := peer.ListenUDP(netip.MustParseAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go echoUDP(srv)
	c, err := guest.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func echoUDP(c net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo(buf[:n], from)
	}
}

// exchangeUDP sends n datagrams of growing size on c and expects each echoed back.
func exchangeUDP(t *testing.T, c net.Conn, n int) {
	t.Helper()
	buf := make([]byte, 2048)
	for i := 0; i < n; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*1472/n)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("datagram %d: Write: %v", i, err)
		}
		got, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("datagram %d: echo %d bytes, %v; want %d bytes back", i, got, err, len(msg))
		}
	}
}
