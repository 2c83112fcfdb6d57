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
	var gen uint64
	if c.send != nil {
		c.send.disconnect()
		gen = c.send.path.routeGen.Load() // before the route is found: a later change disables the send fast path
	}
	if terr := c.ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(raddr.Addr().AsSlice()), Port: raddr.Port()}); terr != nil {
		return fmt.Errorf("netstack: connect udp %s: %s", raddr, terr)
	}
	c.updateFastPath() // only raddr's datagrams qualify now
	if c.send != nil && raddr.Addr().Is4() {
		c.send.setConnected(gen)
	}
	return nil
}
