package netstack

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// TestUDPConnConnect: after Connect, Write reaches the peer, the peer's datagrams still arrive, and
// datagrams from another port are dropped by the stack.
func TestUDPConnConnect(t *testing.T) {
	a, b := pipe.New(tcpip.LinkAddress(guestMAC), tcpip.LinkAddress(peerMAC), 1500)
	gs := newTestStack(t, Config{Link: a, MAC: guestMAC}, "10.0.2.15/24")
	ps := newTestStack(t, Config{Link: b, MAC: peerMAC}, "10.0.2.2/24")
	local, peer := netip.MustParseAddrPort("10.0.2.15:4000"), netip.MustParseAddrPort("10.0.2.2:7777")
	g, err := gs.ListenUDP(local)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p, err := ps.ListenUDP(peer)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stranger, err := ps.ListenUDP(netip.MustParseAddrPort("10.0.2.2:7778"))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()

	if err := g.Connect(peer); err != nil {
		t.Fatalf("Connect(%s) = %v", peer, err)
	}
	if _, err := g.Write([]byte("ack")); err != nil {
		t.Fatalf("Write after Connect = %v", err)
	}
	buf := make([]byte, 64)
	p.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, from, err := p.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "ack" || from != local {
		t.Fatalf("peer read %q from %v, %v; want \"ack\" from %v", buf[:n], from, err, local)
	}
	to := net.UDPAddrFromAddrPort(local)
	if _, err := stranger.WriteTo([]byte("stranger"), to); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteTo([]byte("data"), to); err != nil {
		t.Fatal(err)
	}
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, from, err := g.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "data" || from != peer {
		t.Errorf("connected read %q from %v, %v; want \"data\" from %v (the stranger's datagram dropped)", buf[:n], from, err, peer)
	}
}
