package dhcpv4

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	dhcp "github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"netipl/internal/teststack"
)

var clientMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// udpConn opens a broadcast-capable UDP socket on s bound to port.
func udpConn(t *testing.T, s *stack.Stack, port uint16) *gonet.UDPConn {
	t.Helper()
	var wq waiter.Queue
	ep, err := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		t.Fatalf("NewEndpoint: %v", err)
	}
	ep.SocketOptions().SetBroadcast(true)
	if err := ep.Bind(tcpip.FullAddress{NIC: 1, Port: port}); err != nil {
		t.Fatalf("Bind(:%d): %v", port, err)
	}
	c := gonet.NewUDPConn(&wq, ep)
	t.Cleanup(func() { c.Close() })
	return c
}

// labServer is a scripted DHCP server run by server4 on the lab stack.
type labServer struct {
	mu       sync.Mutex
	requests []*dhcp.DHCPv4 // every DISCOVER/REQUEST/RELEASE seen
	offer    func(req *dhcp.DHCPv4) []*dhcp.DHCPv4
	answer   func(req *dhcp.DHCPv4) *dhcp.DHCPv4
	// offerRaw, when set, answers a DISCOVER with raw datagrams (e.g. BOOTP replies without the magic cookie).
	offerRaw func(req *dhcp.DHCPv4) [][]byte
	// answerAll, when set, replaces answer and may send several replies to one REQUEST.
	answerAll func(req *dhcp.DHCPv4) []*dhcp.DHCPv4
}

func (l *labServer) handle(conn net.PacketConn, peer net.Addr, m *dhcp.DHCPv4) {
	l.mu.Lock()
	l.requests = append(l.requests, m)
	l.mu.Unlock()
	var out []*dhcp.DHCPv4
	switch m.MessageType() {
	case dhcp.MessageTypeDiscover:
		if l.offerRaw != nil {
			for _, b := range l.offerRaw(m) {
				conn.WriteTo(b, &net.UDPAddr{IP: net.IPv4bcast, Port: 68})
			}
		}
		if l.offer != nil {
			out = l.offer(m)
		}
	case dhcp.MessageTypeRequest:
		if l.answerAll != nil {
			out = l.answerAll(m)
		} else if l.answer != nil {
			if a := l.answer(m); a != nil {
				out = append(out, a)
			}
		}
	}
	for _, r := range out {
		conn.WriteTo(r.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 68})
	}
}

func (l *labServer) seen() []*dhcp.DHCPv4 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*dhcp.DHCPv4(nil), l.requests...)
}

// startLab joins a client stack (no address) and a lab stack (10.0.2.2/24) by a pipe and runs l on the lab side.
// It returns the client's socket on 0.0.0.0:68.
func startLab(t *testing.T, l *labServer) net.PacketConn {
	t.Helper()
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 1500)
	cs := teststack.IPv4(t, a, netip.MustParsePrefix("0.0.0.0/0"), udp.NewProtocol)
	ls := teststack.IPv4(t, b, netip.MustParsePrefix("10.0.2.2/24"), udp.NewProtocol)
	srv, err := server4.NewServer("", nil, l.handle, server4.WithConn(udpConn(t, ls, 67)))
	if err != nil {
		t.Fatalf("server4.NewServer: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return udpConn(t, cs, 68)
}

// offerFrom builds an OFFER (or ACK/NAK) for req from server id sid.
func replyTo(req *dhcp.DHCPv4, mt dhcp.MessageType, sid string, mods ...dhcp.Modifier) *dhcp.DHCPv4 {
	base := []dhcp.Modifier{
		dhcp.WithMessageType(mt),
		dhcp.WithYourIP(net.ParseIP("10.0.2.15")),
		dhcp.WithServerIP(net.ParseIP("10.0.2.2")),
		dhcp.WithOption(dhcp.OptServerIdentifier(net.ParseIP(sid))),
		dhcp.WithNetmask(net.CIDRMask(24, 32)),
		dhcp.WithOption(dhcp.OptRouter(net.ParseIP("10.0.2.2"))),
		dhcp.WithOption(dhcp.OptDNS(net.ParseIP("10.0.2.3"))),
		dhcp.WithLeaseTime(3600),
	}
	if mt == dhcp.MessageTypeNak {
		base = []dhcp.Modifier{dhcp.WithMessageType(mt), dhcp.WithOption(dhcp.OptServerIdentifier(net.ParseIP(sid))),
			dhcp.WithOption(dhcp.OptMessage("address in use"))}
	}
	m, err := dhcp.NewReplyFromRequest(req, append(base, mods...)...)
	if err != nil {
		panic(err)
	}
	return m
}

// mustAddr is netip.MustParseAddr for tables.
func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
