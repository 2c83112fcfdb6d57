package netstack

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"
)

// udpSendPath is the stack-wide half of the UDP send fast path: a connected IPv4 UDPConn over
// the tap link builds each datagram's frame itself — Ethernet, IPv4 and UDP headers computed
// once from gVisor's route, neighbour entry and the socket's options, then per Write the
// lengths, the IPv4 header checksum and a fresh UDP checksum — and writes it to the tap fd, past
// gonet (a bytes.Reader per Write), the UDP endpoint's write (a write context, a route
// reference, a packet buffer from pools), IPv4's output (iptables hooks, the fragmentation
// check), the NIC (neighbour lookup, link header) and the tap link's writev.
//
// Why: under QEMU TCG a TFTP transfer that pipelines against slirp is bound by the guest's
// instructions per block, and the ACK's trip through gVisor's write path is a large share of
// them. BenchmarkTxUDPFrame measures the send path per datagram.
//
// The frame is the one gVisor would send, byte for byte: gVisor sets DF (the sockets' default
// path-MTU discovery, "want") and with DF an IPv4 ID of 0, so nothing in it is random. A socket
// takes the fast path only while everything gVisor's path would do for it is plain:
//   - connected (DialUDP or UDPConn.Connect) to an IPv4 unicast peer, not closed, no write
//     deadline set (gonet's write honours it);
//   - the route table and the NIC's address unchanged since the socket was connected (gVisor's
//     connected route is fixed at Connect; routeGen counts SetAddress and SetGateway);
//   - the route leaves through the link (not looped back, not a broadcast), needs a transport
//     checksum (no offload), and the next hop's neighbour entry has a link address that gVisor's
//     route would use without resolving (Reachable, Static, Delay or Probe); neighGen counts
//     every neighbour-table event (the stack's NUD dispatcher), and after one the headers are
//     rebuilt on the next Write;
//   - the socket's TTL, TOS, DF and checksum options as read when the headers were built (they
//     can only be changed by this package, which does not);
//   - the datagram fits the MTU (no fragmentation);
//   - the stack's link is the tap link itself (no Config.WrapLink decorator: a fault injector or
//     sniffer sees every frame).
//
// Everything else takes gVisor's path, and so does a datagram whose write to the tap fails (a
// closed fd): gonet's Write then does what it always does. A full device queue (EAGAIN) drops
// the datagram and the Write succeeds, as in Linux (see write). A pending
// asynchronous error of the socket (ICMP port unreachable for a connected peer) is returned
// as gonet's Write would return it. The endpoint's LastError (a lock and a defer) is asked only
// after the endpoint announced an error (waiter.EventErr, which gVisor's UDP endpoint notifies
// after recording it): on every Write it cost ~3 % of the guest's samples in a TFTP transfer.
//
// Counters: Stats().TxPackets/TxBytes include these frames and Stats().TxNoBufferSpace the
// datagrams dropped on a full queue (gVisor's NIC counters do not see them); the stack-wide UDP
// PacketsSent, IP PacketsSent (IP OutgoingPacketErrors for a drop) and the socket's own
// PacketsSent are incremented here, as gVisor does. IPv4's per-NIC output counters are not.
type udpSendPath struct {
	s   *stack.Stack
	tap *tapLink // the link frames are written to; nil: no send fast path

	routeGen atomic.Uint64 // bumped after every change of the route table or the IPv4 address
	neighGen atomic.Uint64 // bumped by every neighbour-table event

	txPackets, txBytes atomic.Uint64 // frames written here (not in the NIC's counters)
	txDropped          atomic.Uint64 // datagrams dropped on a full device queue

	udpSent, ipSent, ipErrors *tcpip.StatCounter
}

var _ stack.NUDDispatcher = (*udpSendPath)(nil)

// OnNeighborAdded implements stack.NUDDispatcher.
func (p *udpSendPath) OnNeighborAdded(tcpip.NICID, stack.NeighborEntry) { p.neighGen.Add(1) }

// OnNeighborChanged implements stack.NUDDispatcher.
func (p *udpSendPath) OnNeighborChanged(tcpip.NICID, stack.NeighborEntry) { p.neighGen.Add(1) }

// OnNeighborRemoved implements stack.NUDDispatcher.
func (p *udpSendPath) OnNeighborRemoved(tcpip.NICID, stack.NeighborEntry) { p.neighGen.Add(1) }

// setStack gives the path the stack (after stack.New, which takes the path as NUD dispatcher).
func (p *udpSendPath) setStack(s *stack.Stack) {
	p.s = s
	p.udpSent, p.ipSent, p.ipErrors = s.Stats().UDP.PacketsSent, s.Stats().IP.PacketsSent, s.Stats().IP.OutgoingPacketErrors
}

const (
	sendEthLen = header.EthernetMinimumSize
	sendIPOff  = sendEthLen
	sendUDPOff = sendIPOff + header.IPv4MinimumSize
	sendHdrLen = sendUDPOff + header.UDPMinimumSize
)

// udpSender is one socket's half of the send fast path. Its mutex serializes the socket's
// fast-path writes (they share the frame buffer) with Connect, Close and deadline changes.
type udpSender struct {
	path *udpSendPath

	mu        sync.Mutex
	connected bool   // the endpoint is connected to an IPv4 peer
	routeGen  uint64 // path.routeGen before the endpoint was connected
	closed    bool
	deadline  bool // a write deadline is set: gonet's write handles it

	built    bool   // the headers were (re)computed for neighGen
	neighGen uint64 // path.neighGen when they were
	ready    bool   // they are valid: the fast path may be taken

	local, remote tcpip.Address
	maxPayload    int    // the most payload bytes a datagram may have without fragmentation
	frame         []byte // headers, then the payload of the datagram being written
	sockSent      *tcpip.StatCounter

	// errPending is set when the endpoint notifies an error (errEntry, on its waiter queue):
	// LastError may then have one for the next Write.
	wq         *waiter.Queue
	errEntry   waiter.Entry
	errPending atomic.Bool

	// rawWrite writes out to the tap fd inside the tap's RawConn.Write and leaves the result in
	// errno; it is s.writeFD, bound once (a closure per write would be allocated).
	out      []byte
	errno    unix.Errno
	rawWrite func(fd uintptr) bool
}

// newUDPSender makes the send fast path of a socket whose endpoint notifies wq; it watches wq
// for errors until close.
func newUDPSender(p *udpSendPath, wq *waiter.Queue, ep tcpip.Endpoint) *udpSender {
	s := &udpSender{path: p, wq: wq}
	s.rawWrite = s.writeFD
	if es, ok := ep.Stats().(*tcpip.TransportEndpointStats); ok {
		s.sockSent = &es.PacketsSent
	}
	s.errEntry = waiter.NewFunctionEntry(waiter.EventErr, func(waiter.EventMask) { s.errPending.Store(true) })
	wq.EventRegister(&s.errEntry)
	return s
}

// writeFD is the tap write, run by the tap's RawConn.Write.
func (s *udpSender) writeFD(fd uintptr) bool {
	for {
		s.errno = rawfile.NonBlockingWrite(int(fd), s.out)
		if s.errno != unix.EINTR {
			return true
		}
	}
}

// disconnect turns the fast path off until setConnected (before the endpoint's peer changes).
func (s *udpSender) disconnect() {
	s.mu.Lock()
	s.connected, s.built, s.ready = false, false, false
	s.mu.Unlock()
}

// setConnected records that the endpoint was connected while path.routeGen was gen.
func (s *udpSender) setConnected(gen uint64) {
	s.mu.Lock()
	s.connected, s.routeGen, s.built, s.ready = true, gen, false, false
	s.mu.Unlock()
}

// close turns the fast path off for good.
func (s *udpSender) close() {
	s.mu.Lock()
	if !s.closed {
		s.wq.EventUnregister(&s.errEntry)
	}
	s.closed, s.ready = true, false
	s.mu.Unlock()
}

// setDeadline records whether a write deadline is set.
func (s *udpSender) setDeadline(on bool) {
	s.mu.Lock()
	s.deadline = on
	s.mu.Unlock()
}

// write sends b as one datagram on the fast path if it may (ok); otherwise the caller takes
// gVisor's path.
func (s *udpSender) write(c *UDPConn, b []byte) (n int, err error, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected || s.closed || s.deadline || s.routeGen != s.path.routeGen.Load() {
		return 0, nil, false
	}
	if g := s.path.neighGen.Load(); !s.built || s.neighGen != g {
		s.build(c.ep, g)
	}
	if !s.ready || len(b) > s.maxPayload {
		return 0, nil, false
	}
	if s.errPending.Swap(false) {
		if terr := c.ep.LastError(); terr != nil {
			// What gonet's Write returns for it (the endpoint's write would report it first).
			return 0, &net.OpError{Op: "write", Net: "udp", Source: c.gc.LocalAddr(), Err: errors.New(terr.String())}, true
		}
	}
	ulen := header.UDPMinimumSize + len(b)
	tlen := header.IPv4MinimumSize + ulen
	f := s.frame[:sendEthLen+tlen]
	copy(f[sendHdrLen:], b)
	ip := header.IPv4(f[sendIPOff:sendUDPOff])
	ip.SetTotalLength(uint16(tlen))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(f[sendUDPOff:])
	u.SetLength(uint16(ulen))
	u.SetChecksum(0)
	sum := checksum.Checksum(f[sendUDPOff:], header.PseudoHeaderChecksum(header.UDPProtocolNumber, s.local, s.remote, uint16(ulen)))
	// RFC 768: a computed checksum of zero is sent as all ones (zero means "none").
	if sum != 0xffff {
		sum = ^sum
	}
	u.SetChecksum(sum)
	s.out = f
	werr := s.path.tap.rc.Write(s.rawWrite)
	s.out = nil
	switch {
	case werr == nil && (s.errno == unix.EAGAIN || s.errno == unix.ENOBUFS):
		// The device queue is full: the datagram is dropped and the Write succeeds, as Linux
		// does (udp_send_skb: ENOBUFS without IP_RECVERR is success) and gVisor for
		// ErrNoBufferSpace. gVisor's path over the tap link would not do better: the link's
		// ErrWouldBlock makes gonet wait for the socket to become writable (forever, if no other
		// packet of the socket is released) and then resend its already consumed payload
		// reader, an empty datagram.
		s.path.txDropped.Add(1)
		s.path.ipErrors.Increment()
	case werr != nil || s.errno != 0:
		return 0, nil, false // gVisor's path retries it, reports and counts the failure
	default:
		s.path.txPackets.Add(1)
		s.path.txBytes.Add(uint64(len(f)))
		s.path.ipSent.Increment()
	}
	s.path.udpSent.Increment()
	if s.sockSent != nil {
		s.sockSent.Increment()
	}
	return len(b), nil, true
}

// build computes the headers from gVisor's state (see udpSendPath for what qualifies) and
// records neighGen; ready says whether the fast path may be taken until the next event.
func (s *udpSender) build(ep tcpip.Endpoint, neighGen uint64) {
	s.built, s.neighGen, s.ready = true, neighGen, false
	local, lerr := ep.GetLocalAddress()
	remote, rerr := ep.GetRemoteAddress()
	if lerr != nil || rerr != nil || local.Addr.Len() != header.IPv4AddressSize || remote.Addr.Len() != header.IPv4AddressSize ||
		local.Port == 0 || remote.Port == 0 {
		return
	}
	if header.IsV4MulticastAddress(remote.Addr) || remote.Addr == header.IPv4Broadcast {
		return
	}
	if v, err := ep.GetSockOptInt(tcpip.MTUDiscoverOption); err != nil ||
		(v != int(tcpip.PMTUDiscoveryWant) && v != int(tcpip.PMTUDiscoveryDo) && v != int(tcpip.PMTUDiscoveryProbe)) {
		return // without DF gVisor picks a random IPv4 ID
	}
	if ep.SocketOptions().GetNoChecksum() {
		return
	}
	tos, err := ep.GetSockOptInt(tcpip.IPv4TOSOption)
	if err != nil {
		return
	}
	ttl, err := ep.GetSockOptInt(tcpip.IPv4TTLOption)
	if err != nil {
		return
	}
	r, terr := s.path.s.FindRoute(NICID, local.Addr, remote.Addr, ipv4.ProtocolNumber, false /* multicastLoop */)
	if terr != nil {
		return
	}
	defer r.Release()
	if r.Loop() != stack.PacketOut || r.IsOutboundBroadcast() || !r.RequiresTXTransportChecksum() ||
		r.LocalAddress() != local.Addr || r.RemoteAddress() != remote.Addr {
		return
	}
	if ttl == 0 {
		ttl = int(r.DefaultTTL())
	}
	mtu := int(r.MTU()) // IPv4's payload limit on the link
	if mtu < header.UDPMinimumSize {
		return
	}
	hop := r.NextHop()
	if hop.Len() == 0 {
		hop = remote.Addr
	}
	neigh, terr := s.path.s.Neighbors(NICID, ipv4.ProtocolNumber)
	if terr != nil {
		return
	}
	var dst tcpip.LinkAddress
	for _, n := range neigh {
		if n.Addr != hop {
			continue
		}
		switch n.State {
		case stack.Reachable, stack.Static, stack.Delay, stack.Probe:
			dst = n.LinkAddr // the address gVisor's route sends to without resolving
		}
	}
	if len(dst) != header.EthernetAddressSize {
		return // not resolved, or stale: gVisor's path resolves or re-confirms it
	}
	if want := sendEthLen + header.IPv4MinimumSize + mtu; cap(s.frame) < want {
		s.frame = make([]byte, want)
	}
	s.frame = s.frame[:cap(s.frame)]
	header.Ethernet(s.frame).Encode(&header.EthernetFields{SrcAddr: r.LocalLinkAddress(), DstAddr: dst, Type: header.IPv4ProtocolNumber})
	header.IPv4(s.frame[sendIPOff:]).Encode(&header.IPv4Fields{
		TOS:      uint8(tos),
		Flags:    header.IPv4FlagDontFragment,
		TTL:      uint8(ttl),
		Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr:  local.Addr,
		DstAddr:  remote.Addr,
	})
	header.UDP(s.frame[sendUDPOff:]).Encode(&header.UDPFields{SrcPort: local.Port, DstPort: remote.Port})
	s.local, s.remote = local.Addr, remote.Addr
	s.maxPayload = mtu - header.UDPMinimumSize
	s.ready = true
}
