package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

func newStack(t *testing.T, ep stack.LinkEndpoint, addr netip.Addr) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	t.Cleanup(func() { s.Close(); s.Wait() })
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(addr.AsSlice()), PrefixLen: 24}}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s
}

// TestLookupOverGVisor resolves through a gVisor stack, the server (option 6) on a second stack.
func TestLookupOverGVisor(t *testing.T) {
	clientAddr, serverAddr := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.3")
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x03", 1500)
	cs, ss := newStack(t, a, clientAddr), newStack(t, b, serverAddr)
	sc, err := gonet.DialUDP(ss, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(serverAddr.AsSlice()), Port: 53}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("server socket: %v", err)
	}
	serveFake(t, sc, zone)
	r := &Resolver{Servers: []netip.Addr{serverAddr}, Timeout: 2 * time.Second, Listen: func() (net.PacketConn, error) {
		return gonet.DialUDP(cs, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(clientAddr.AsSlice())}, nil, ipv4.ProtocolNumber)
	}}
	got, err := r.LookupHost(context.Background(), "boot.lab")
	if err != nil || fmt.Sprint(got) != "[10.0.2.9]" {
		t.Errorf("LookupHost(boot.lab) over gVisor = %v, %v; want [10.0.2.9]", got, err)
	}
}
