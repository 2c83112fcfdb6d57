package netstack

import (
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Connect fixes the socket's peer: later datagrams come only from raddr, and Write sends to it over a route
// found once (an unconnected WriteTo looks the route up for every datagram).
func (c *UDPConn) Connect(raddr netip.AddrPort) error {
	// Leave the fast path first: between the endpoint's Connect and the new registration, the old
	// (unconnected) one would hand a non-peer's datagram to the connected socket.
	c.leaveFastPath()
	if terr := c.ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(raddr.Addr().AsSlice()), Port: raddr.Port()}); terr != nil {
		return fmt.Errorf("netstack: connect udp %s: %s", raddr, terr)
	}
	c.updateFastPath() // only raddr's datagrams qualify now
	return nil
}
