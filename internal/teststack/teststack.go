// Package teststack builds the small gVisor stacks that protocol tests join by a pipe link
// (gvisor's link/pipe): one NIC, one IPv4 address, every destination on-link. It is imported
// only by _test.go files.
package teststack

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// NIC is the one NIC's id.
const NIC tcpip.NICID = 1

// IPv4 returns a stack with the transport protocol given and NIC 1 on ep holding addr, e.g.
// 10.0.2.15/24, or 0.0.0.0/0 for a DHCP client without a lease (it then sends from 0.0.0.0).
// All destinations route to NIC 1 with no gateway. The stack is closed when the test ends.
func IPv4(t testing.TB, ep stack.LinkEndpoint, addr netip.Prefix, transport stack.TransportProtocolFactory) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{transport},
	})
	t.Cleanup(func() { s.Close(); s.Wait() })
	if err := s.CreateNIC(NIC, ep); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{
		Address: tcpip.AddrFromSlice(addr.Addr().AsSlice()), PrefixLen: addr.Bits()}}
	if err := s.AddProtocolAddress(NIC, pa, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress(%v): %v", addr, err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: NIC}})
	return s
}
