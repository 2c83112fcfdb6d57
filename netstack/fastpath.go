package netstack

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// udpFastPath is the outermost decorator of the stack's link: it hands a plain unicast IPv4/UDP
// datagram for a port that one of the Stack's UDP sockets holds straight to gVisor's transport
// layer: to the socket's UDP endpoint (UDP length and checksum verification, the socket's
// queue), past the IPv4 endpoint's per-packet work and the NIC's transport demultiplexer (which
// would find the same endpoint). Every other frame takes gVisor's ordinary path.
//
// Why: under QEMU TCG the guest's bulk UDP (TFTP, the flood of bench/nic.sh) is bound by the
// instructions spent per frame, and gVisor's IPv4 input costs more than a third of them for
// work that a single-address host without forwarding, raw sockets, iptables rules or IP options
// does not need (two address-table lookups that iterate the addresses, a header view per
// access, iptables hooks), and the demultiplexer's lookups (hashes of the 4-tuple) another
// sixth. BenchmarkRxUDPFrame measures it.
//
// A datagram takes the fast path only if everything gVisor's IPv4 input would check for it is
// plainly fine, so that the result is the same as gVisor's: version 4 without options (IHL 5),
// not a fragment, a valid header checksum, total length within the frame and at least the UDP
// header, a UDP length within the IP payload, the destination exactly the NIC's IPv4 address,
// a source that is not ours, not loopback, multicast, the limited or the subnet broadcast, and a
// destination port that a socket of this Stack is bound to (connected sockets: from their peer
// only). The UDP checksum stays gVisor's to verify (the link does not vouch for it). Anything
// else (broadcasts, ICMP-worthy misses such as a closed port) goes the ordinary way, which
// answers a closed port with ICMP port unreachable.
//
// What is skipped, and why that is sound here: iptables/nftables (netstack installs no rules;
// a caller who adds some through Stack() must not rely on them for UDP to bound ports), raw
// sockets (the stack has no raw endpoint factory), forwarding (off). The NIC's and IPv4's receive
// counters do not see these frames; Stats adds them back (rxPackets, rxBytes) and the stack-wide
// IP counters are incremented here.
type udpFastPath struct {
	nested.Endpoint

	disp  atomic.Pointer[fastDispatch] // nil while detached
	v4    atomic.Pointer[fastAddr]     // the NIC's IPv4 address; nil: no fast path
	ports atomic.Pointer[map[uint16]*fastPort]

	portsMu sync.Mutex // serializes copy-on-write updates of ports

	rxPackets, rxBytes atomic.Uint64 // frames delivered here (not in the NIC's counters)

	ipReceived, ipValid, ipDelivered *tcpip.StatCounter
}

// fastDispatch is the NIC the link is attached to, as both dispatchers.
type fastDispatch struct {
	nd stack.NetworkDispatcher
	td stack.TransportDispatcher
}

// fastAddr is the NIC's IPv4 address and its subnet's broadcast address.
type fastAddr struct {
	addr, bcast tcpip.Address
}

// fastPort is a socket's binding: its local address (zero: any) and, when connected, its peer;
// and its endpoint, which a datagram for it is handed to.
type fastPort struct {
	local     tcpip.Address
	remote    tcpip.Address
	rport     uint16
	connected bool
	ep        stack.TransportEndpoint // nil: through the NIC's transport demultiplexer
}

var _ stack.LinkEndpoint = (*udpFastPath)(nil)

func newUDPFastPath(child stack.LinkEndpoint) *udpFastPath {
	f := &udpFastPath{}
	f.Init(child, f)
	f.ports.Store(&map[uint16]*fastPort{})
	return f
}

// setStats gives the fast path the stack's IP counters (before the NIC is created).
func (f *udpFastPath) setStats(s tcpip.Stats) {
	f.ipReceived, f.ipValid, f.ipDelivered = s.IP.PacketsReceived, s.IP.ValidPacketsReceived, s.IP.PacketsDelivered
}

// Attach implements stack.LinkEndpoint.
func (f *udpFastPath) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		f.disp.Store(nil)
	} else {
		td, _ := d.(stack.TransportDispatcher)
		f.disp.Store(&fastDispatch{nd: d, td: td})
	}
	f.Endpoint.Attach(d)
}

// setAddress sets the NIC's IPv4 address (the zero Prefix turns the fast path off).
func (f *udpFastPath) setAddress(addr tcpip.AddressWithPrefix) {
	if addr.Address.Len() != header.IPv4AddressSize {
		f.v4.Store(nil)
		return
	}
	sub := addr.Subnet()
	f.v4.Store(&fastAddr{addr: addr.Address, bcast: sub.Broadcast()})
}

// register records a socket's binding on port and returns the function that removes it.
func (f *udpFastPath) register(port uint16, p *fastPort) (unregister func()) {
	f.portsMu.Lock()
	defer f.portsMu.Unlock()
	m := f.copyPortsLocked()
	m[port] = p
	f.ports.Store(&m)
	return func() {
		f.portsMu.Lock()
		defer f.portsMu.Unlock()
		if (*f.ports.Load())[port] != p {
			return
		}
		m := f.copyPortsLocked()
		delete(m, port)
		f.ports.Store(&m)
	}
}

func (f *udpFastPath) copyPortsLocked() map[uint16]*fastPort {
	old := *f.ports.Load()
	m := make(map[uint16]*fastPort, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	return m
}

// DeliverNetworkPacket implements stack.NetworkDispatcher for the child link.
func (f *udpFastPath) DeliverNetworkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	d := f.disp.Load()
	if d == nil {
		return
	}
	if protocol == header.IPv4ProtocolNumber && d.td != nil && f.deliverUDP(d.td, pkt) {
		return
	}
	d.nd.DeliverNetworkPacket(protocol, pkt)
}

// isMartianSource reports a source address that gVisor's IPv4 input refuses (or that is ours).
func (a *fastAddr) isMartianSource(src tcpip.Address) bool {
	b := src.As4()
	return src == a.addr || src == a.bcast || src == header.IPv4Broadcast ||
		b[0] == 127 || b[0]&0xf0 == 0xe0 || src == header.IPv4Any
}

// deliverUDP hands pkt to the transport layer if it qualifies (see udpFastPath) and reports
// whether it did.
func (f *udpFastPath) deliverUDP(td stack.TransportDispatcher, pkt *stack.PacketBuffer) bool {
	own := f.v4.Load()
	if own == nil {
		return false
	}
	const hdrs = header.IPv4MinimumSize + header.UDPMinimumSize
	b, ok := pkt.Data().PullUp(hdrs)
	if !ok {
		return false
	}
	ip := header.IPv4(b)
	if b[0] != 0x45 || ip.Protocol() != uint8(header.UDPProtocolNumber) || ip.More() || ip.FragmentOffset() != 0 {
		return false
	}
	size := pkt.Data().Size()
	tlen := int(ip.TotalLength())
	if tlen < hdrs || tlen > size || ip.DestinationAddress() != own.addr {
		return false
	}
	src := ip.SourceAddress()
	if own.isMartianSource(src) {
		return false
	}
	u := header.UDP(b[header.IPv4MinimumSize:])
	ulen := int(u.Length())
	if ulen < header.UDPMinimumSize || ulen > tlen-header.IPv4MinimumSize {
		return false
	}
	p := (*f.ports.Load())[u.DestinationPort()]
	if p == nil || (p.local.Len() != 0 && p.local != own.addr) ||
		(p.connected && (p.remote != src || p.rport != u.SourcePort())) {
		return false
	}
	if !ip.IsChecksumValid() {
		return false // gVisor counts and drops it
	}
	// Parse as gVisor's IPv4 and UDP input would (parse.IPv4, parse.UDP): the headers, the
	// payload trimmed to the lengths the headers give.
	f.rxPackets.Add(1)
	f.rxBytes.Add(uint64(size))
	f.ipReceived.Increment()
	f.ipValid.Increment()
	f.ipDelivered.Increment()
	pkt.NetworkHeader().Consume(header.IPv4MinimumSize)
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	pkt.Data().CapLength(tlen - header.IPv4MinimumSize)
	pkt.TransportHeader().Consume(header.UDPMinimumSize)
	pkt.TransportProtocolNumber = header.UDPProtocolNumber
	pkt.Data().CapLength(ulen - header.UDPMinimumSize)
	pkt.NICID = NICID
	pkt.InputNICID = NICID
	if p.ep == nil {
		td.DeliverTransportPacket(header.UDPProtocolNumber, pkt)
		return true
	}
	// The endpoint the demultiplexer would find: the port is this socket's alone (netstack sets
	// no SO_REUSEPORT/SO_REUSEADDR), and a connected socket's peer was checked above.
	p.ep.HandlePacket(stack.TransportEndpointID{
		LocalPort:     u.DestinationPort(),
		LocalAddress:  own.addr,
		RemotePort:    u.SourcePort(),
		RemoteAddress: src,
	}, pkt)
	return true
}
