// Package netstack builds netipl's gVisor TCP/IP stack over the boot NIC. The NIC is a Linux tap file
// descriptor (IFF_TAP|IFF_NO_PI: one raw Ethernet frame per read or write), driven by gVisor's fdbased
// link endpoint with EthernetHeader set. In the guest metal provides that fd from /dev/net/tun
// (docs/nic.md); on a Linux host the same code runs over a real tap device, which is how it is tested.
//
// The stack carries IPv4 (with ARP), IPv6, UDP, TCP and ICMP. Addresses are configured explicitly
// (SetAddress, SetGateway): statically, or from a DHCP lease the caller obtained through ListenUDP.
// Sockets are ordinary net.PacketConn / net.Conn values: UDPConn for UDP (its own reads, gonet's
// writes), gVisor's gonet adapters for TCP.
//
// New lowers gVisor's global log level to warnings: its informational notices would otherwise
// appear on the guest console.
//
// Fault injection and tracing wrap the link: Config.WrapLink receives the endpoint and may return a
// decorator that embeds gVisor's nested.Endpoint (as link/sniffer does).
package netstack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// NICID is the id of the one NIC every Stack has.
const NICID tcpip.NICID = 1

// DefaultMTU is the MTU used when Config.MTU is 0 (virtio-net without VIRTIO_NET_F_MTU).
const DefaultMTU = 1500

// Config says which link the stack runs over. Exactly one of TapFD, TapName and Link is set.
type Config struct {
	// TapFD is an open tap fd (IFF_TAP|IFF_NO_PI), e.g. metal's /dev/net/tun. The Stack takes it
	// over: it is made non-blocking, watched by Go's poller and closed by Close, so nothing else
	// may use or close it afterwards (a host caller that keeps its own *os.File passes a dup).
	// Leave TapFD 0 (or -1) when TapName or Link is set.
	TapFD int
	// TapName is a Linux tap interface to attach to via /dev/net/tun (created if missing). The Stack
	// opens it and closes it on Close.
	TapName string
	// Link is any gVisor link endpoint that carries Ethernet frames (tests use channel or pipe).
	Link stack.LinkEndpoint
	// MAC is the stack's Ethernet address (the NIC's, from /sys/class/net/eth0/address). Required.
	MAC net.HardwareAddr
	// MTU of the link; 0 means DefaultMTU.
	MTU uint32
	// Clock is the stack's time source; nil means the real clock.
	Clock tcpip.Clock
	// WrapLink, if set, wraps the link endpoint before the NIC is created (fault injection, sniffer).
	WrapLink func(stack.LinkEndpoint) stack.LinkEndpoint
}

// Stack is a gVisor stack with one NIC over the configured link. Its methods are safe for
// concurrent use. The zero Stack is not usable; call New.
type Stack struct {
	s    *stack.Stack
	mac  net.HardwareAddr
	mtu  uint32
	tap  *tapLink     // the tap link, if the Stack runs over one (it owns the fd)
	fast *udpFastPath // the outermost link layer: bulk UDP past gVisor's IPv4 input
	send *udpSendPath // connected UDP sockets' writes past gVisor's output path (udpsend.go)

	mu      sync.Mutex
	v4      netip.Prefix // configured IPv4 address, or zero
	gateway netip.Addr   // configured IPv4 gateway, or zero
	closed  bool
}

// New creates the stack over cfg's link and enables the NIC. It has no address until SetAddress.
func New(cfg Config) (*Stack, error) {
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("netstack: MAC %q is not a 6-byte Ethernet address", cfg.MAC.String())
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < header.IPv4MinimumMTU || mtu > 65535 {
		return nil, fmt.Errorf("netstack: MTU %d outside [%d, 65535]", mtu, header.IPv4MinimumMTU)
	}
	sources := 0
	if cfg.TapFD > 0 {
		sources++
	}
	if cfg.TapName != "" {
		sources++
	}
	if cfg.Link != nil {
		sources++
	}
	if sources != 1 {
		return nil, errors.New("netstack: set exactly one of Config.TapFD, Config.TapName and Config.Link")
	}
	st := &Stack{mac: append(net.HardwareAddr(nil), cfg.MAC...), mtu: mtu}
	link := cfg.Link
	switch {
	case cfg.TapName != "":
		f, err := OpenTap(cfg.TapName)
		if err != nil {
			return nil, err
		}
		if st.tap, err = newTapLinkFile(f, mtu, tcpip.LinkAddress(cfg.MAC)); err != nil {
			return nil, err
		}
		link = st.tap
	case cfg.TapFD > 0:
		var err error
		if st.tap, err = newTapLink(cfg.TapFD, mtu, tcpip.LinkAddress(cfg.MAC)); err != nil {
			return nil, err
		}
		link = st.tap
	}
	st.coalesceTCP(cfg)
	st.send = &udpSendPath{tap: st.tap}
	if cfg.WrapLink != nil {
		link = cfg.WrapLink(link)
		st.send.tap = nil // the decorator sees every frame
	}
	st.fast = newUDPFastPath(link)
	clock := cfg.Clock
	if clock == nil {
		clock = tcpip.NewStdClock()
	}
	// gVisor logs rate-limited notices (e.g. dropped martian packets) at Info to stderr; in the
	// guest stderr is the console, which only the loader writes. Keep warnings and worse.
	log.SetLevel(log.Warning)
	st.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		Clock:              clock,
		HandleLocal:        false,
		NUDDisp:            st.send,
	})
	st.fast.setStats(st.s.Stats())
	st.send.setStack(st.s)
	if err := st.s.CreateNICWithOptions(NICID, st.fast, stack.NICOptions{Name: "eth0"}); err != nil {
		st.s.Close()
		st.closeTap()
		return nil, fmt.Errorf("netstack: create NIC: %s", err)
	}
	st.mu.Lock()
	err := st.setUnspecifiedLocked(true)
	st.routesLocked()
	st.mu.Unlock()
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// closeTap closes the tap link (a second Close is a no-op), for when the stack did not take it.
func (st *Stack) closeTap() {
	if st.tap != nil {
		st.tap.Close()
		st.tap.waitReader()
	}
}

// Close stops the stack, waits for its goroutines and closes the tap (TapName or TapFD).
func (st *Stack) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.mu.Unlock()
	st.s.Close()
	st.s.Wait()
	st.closeTap()
	return nil
}

// Stack returns the underlying gVisor stack (for protocol clients that need it directly).
func (st *Stack) Stack() *stack.Stack { return st.s }

// MAC returns the stack's Ethernet address.
func (st *Stack) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), st.mac...) }

// MTU returns the link MTU.
func (st *Stack) MTU() uint32 { return st.mtu }

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	fa := tcpip.FullAddress{NIC: NICID, Port: ap.Port()}
	if a := ap.Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
		fa.Addr = tcpip.AddrFromSlice(a.AsSlice())
	}
	return fa
}

func protocolOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Unmap().Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// SetAddress gives the NIC the IPv4 address p (e.g. 10.0.2.15/24), replacing the previous IPv4
// address and its on-link route. The zero Prefix removes the IPv4 address.
func (st *Stack) SetAddress(p netip.Prefix) error {
	if p.IsValid() && !p.Addr().Is4() {
		return fmt.Errorf("netstack: set address %s: only IPv4 is configured statically", p)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.routesChangedLocked() // now, not only after routesLocked: the old address goes first
	if st.v4.IsValid() {
		if err := st.s.RemoveAddress(NICID, tcpip.AddrFromSlice(st.v4.Addr().AsSlice())); err != nil {
			return fmt.Errorf("netstack: remove address %s: %s", st.v4, err)
		}
	}
	st.v4 = netip.Prefix{}
	st.fast.setAddress(tcpip.AddressWithPrefix{})
	if err := st.setUnspecifiedLocked(!p.IsValid()); err != nil {
		return err
	}
	if p.IsValid() {
		pa := tcpip.ProtocolAddress{
			Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpip.AddrFromSlice(p.Addr().AsSlice()),
				PrefixLen: p.Bits(),
			},
		}
		if err := st.s.AddProtocolAddress(NICID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("netstack: add address %s: %s", p, err)
		}
		st.v4 = p
		st.fast.setAddress(pa.AddressWithPrefix)
	}
	st.routesLocked()
	return nil
}

// routesChangedLocked tells the send fast path that routes or addresses changed: sockets
// connected before take gVisor's path from now on (their route was fixed at Connect).
func (st *Stack) routesChangedLocked() { st.send.routeGen.Add(1) }

// unspecified is the source address a NIC without an IPv4 address sends from (RFC 2131 §4.1:
// a client without an address uses 0.0.0.0). gVisor needs an address endpoint to route from, so
// 0.0.0.0/32 is assigned while no real IPv4 address is.
var unspecified = tcpip.ProtocolAddress{
	Protocol:          ipv4.ProtocolNumber,
	AddressWithPrefix: tcpip.AddressWithPrefix{Address: header.IPv4Any, PrefixLen: 32},
}

// setUnspecifiedLocked adds or removes the 0.0.0.0 address.
func (st *Stack) setUnspecifiedLocked(on bool) error {
	if on {
		err := st.s.AddProtocolAddress(NICID, unspecified, stack.AddressProperties{})
		if _, dup := err.(*tcpip.ErrDuplicateAddress); err != nil && !dup {
			return fmt.Errorf("netstack: add address 0.0.0.0: %s", err)
		}
		return nil
	}
	err := st.s.RemoveAddress(NICID, header.IPv4Any)
	if _, missing := err.(*tcpip.ErrBadLocalAddress); err != nil && !missing {
		return fmt.Errorf("netstack: remove address 0.0.0.0: %s", err)
	}
	return nil
}

// SetGateway sets the IPv4 default route via gw; the zero Addr removes it.
func (st *Stack) SetGateway(gw netip.Addr) error {
	if gw.IsValid() && !gw.Is4() {
		return fmt.Errorf("netstack: set gateway %s: not an IPv4 address", gw)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.gateway = gw
	st.routesLocked()
	return nil
}

// Address returns the configured IPv4 address (zero if none).
func (st *Stack) Address() netip.Prefix {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.v4
}

// routesLocked rebuilds the route table: the on-link IPv4 subnet, the IPv4 default route (via the
// gateway, or on-link so that broadcasts and a DHCP exchange work before an address exists) and
// on-link IPv6.
func (st *Stack) routesLocked() {
	var table []tcpip.Route
	if st.v4.IsValid() {
		sub := tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(st.v4.Masked().Addr().AsSlice()), PrefixLen: st.v4.Bits()}.Subnet()
		table = append(table, tcpip.Route{Destination: sub, NIC: NICID})
	}
	def := tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: NICID}
	if st.gateway.IsValid() {
		def.Gateway = tcpip.AddrFromSlice(st.gateway.AsSlice())
	}
	table = append(table, def, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: NICID})
	st.s.SetRouteTable(table)
	st.routesChangedLocked()
}

// udpReceiveBuffer is the receive buffer of UDP sockets: a bulk transfer arriving faster than the
// reader is scheduled is queued rather than dropped (gVisor's default is 208 KiB).
const udpReceiveBuffer = 4 << 20

// ListenUDP opens a UDP socket bound to laddr (an unspecified address binds to the NIC; port 0
// picks one). Broadcast is allowed, so a DHCP client can bind 0.0.0.0:68 and send to
// 255.255.255.255:67 before the stack has an address.
func (st *Stack) ListenUDP(laddr netip.AddrPort) (*UDPConn, error) {
	var wq waiter.Queue
	ep, terr := st.s.NewEndpoint(udp.ProtocolNumber, protocolOf(laddr.Addr()), &wq)
	if terr != nil {
		return nil, fmt.Errorf("netstack: listen udp %s: %s", laddr, terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	ep.SocketOptions().SetReceiveBufferSize(udpReceiveBuffer, true)
	if terr := ep.Bind(fullAddr(laddr)); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: listen udp %s: %s", laddr, terr)
	}
	return st.newUDPConn(&wq, ep, protocolOf(laddr.Addr())), nil
}

// DialUDP opens a UDP socket connected to raddr, bound to laddr (which may be the zero AddrPort).
func (st *Stack) DialUDP(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	var wq waiter.Queue
	ep, terr := st.s.NewEndpoint(udp.ProtocolNumber, protocolOf(raddr.Addr()), &wq)
	if terr != nil {
		return nil, fmt.Errorf("netstack: dial udp %s: %s", raddr, terr)
	}
	ep.SocketOptions().SetReceiveBufferSize(udpReceiveBuffer, true)
	if laddr.IsValid() {
		if terr := ep.Bind(fullAddr(laddr)); terr != nil {
			ep.Close()
			return nil, fmt.Errorf("netstack: dial udp %s: bind %s: %s", raddr, laddr, terr)
		}
	}
	gen := st.send.routeGen.Load() // before the route is found: a later change disables the send fast path
	if terr := ep.Connect(fullAddr(raddr)); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: dial udp %s: %s", raddr, terr)
	}
	c := st.newUDPConn(&wq, ep, protocolOf(raddr.Addr()))
	if c.send != nil {
		c.send.setConnected(gen)
	}
	return c, nil
}

// newUDPConn wraps a bound (and, if dialled, connected) UDP endpoint; an IPv4 socket's port
// goes to the fast path.
func (st *Stack) newUDPConn(wq *waiter.Queue, ep tcpip.Endpoint, proto tcpip.NetworkProtocolNumber) *UDPConn {
	c := newUDPConn(wq, ep)
	if proto == ipv4.ProtocolNumber {
		c.fast = st.fast
		c.updateFastPath()
		if st.send.tap != nil {
			c.send = newUDPSender(st.send, wq, ep)
		}
	}
	return c
}

// ListenTCP opens a TCP listener on laddr.
func (st *Stack) ListenTCP(laddr netip.AddrPort) (*gonet.TCPListener, error) {
	l, err := gonet.ListenTCP(st.s, fullAddr(laddr), protocolOf(laddr.Addr()))
	if err != nil {
		return nil, fmt.Errorf("netstack: listen tcp %s: %w", laddr, err)
	}
	return l, nil
}

// Stats is a snapshot of the stack's counters that matter for a boot (style B18).
type Stats struct {
	RxPackets, RxBytes uint64 // frames the NIC received
	TxPackets, TxBytes uint64 // frames the NIC sent
	TxNoBufferSpace    uint64 // frames dropped because the link was full
	DroppedPackets     uint64 // frames the stack dropped (any layer)
	IPMalformed        uint64 // malformed IPv4/IPv6 packets
	ARPRequestsSent    uint64
	ARPRepliesReceived uint64
	UDPReceived        uint64 // UDP datagrams delivered to sockets
	UDPUnknownPort     uint64 // UDP datagrams for no socket
	UDPReceiveBufErr   uint64 // UDP datagrams dropped on a full socket buffer
	UDPMalformed       uint64
	TCPRetransmits     uint64
	TCPResets          uint64 // RSTs received
}

// Stats returns the current counters.
func (st *Stack) Stats() Stats {
	s := st.s.Stats()
	n := st.s.NICInfo()[NICID].Stats
	return Stats{
		RxPackets:          n.Rx.Packets.Value() + st.fast.rxPackets.Load() + st.framesMerged(),
		RxBytes:            n.Rx.Bytes.Value() + st.fast.rxBytes.Load() + st.bytesDropped(),
		TxPackets:          n.Tx.Packets.Value() + st.send.txPackets.Load(),
		TxBytes:            n.Tx.Bytes.Value() + st.send.txBytes.Load(),
		TxNoBufferSpace:    n.TxPacketsDroppedNoBufferSpace.Value() + st.send.txDropped.Load(),
		DroppedPackets:     s.DroppedPackets.Value(),
		IPMalformed:        s.IP.MalformedPacketsReceived.Value(),
		ARPRequestsSent:    s.ARP.OutgoingRequestsSent.Value(),
		ARPRepliesReceived: s.ARP.RepliesReceived.Value(),
		UDPReceived:        s.UDP.PacketsReceived.Value(),
		UDPUnknownPort:     s.UDP.UnknownPortErrors.Value(),
		UDPReceiveBufErr:   s.UDP.ReceiveBufferErrors.Value(),
		UDPMalformed:       s.UDP.MalformedPacketsReceived.Value(),
		TCPRetransmits:     s.TCP.Retransmits.Value(),
		TCPResets:          s.TCP.ResetsReceived.Value(),
	}
}
