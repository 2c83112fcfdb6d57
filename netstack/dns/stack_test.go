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
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"netipl/internal/teststack"
)

// TestLookupOverGVisor resolves through a gVisor stack, the server (option 6) on a second stack.
func TestLookupOverGVisor(t *testing.T) {
	clientAddr, serverAddr := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.3")
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x03", 1500)
	cs, ss := teststack.IPv4(t, a, netip.PrefixFrom(clientAddr, 24), udp.NewProtocol), teststack.IPv4(t, b, netip.PrefixFrom(serverAddr, 24), udp.NewProtocol)
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
