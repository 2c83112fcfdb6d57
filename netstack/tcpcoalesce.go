package netstack

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// tcpCoalescer merges the in-order TCP data segments of one burst (the frames the tap link reads
// in one wake-up, at most rxBatch) into one IPv4 packet of up to 64 KiB before gVisor sees them:
// a software GRO in the tap link's reader. gVisor then builds one packet buffer and runs IPv4
// input, the TCP demultiplexer, segment processing, the receive queue and the reader's wake-up
// once per burst instead of once per 1460-byte frame.
//
// Why: under QEMU TCG an HTTP download through slirp is bound by the guest's instructions per
// frame, and gVisor's per-segment work was most of them (≈ 50 µs per frame; bench/httpceiling.sh
// shows that slirp, virtio-net and metal alone deliver 250 MB/s). gVisor's own GRO package
// (stack/gro) does not work here: it marks merged packets checksum-validated, which the NIC
// overwrites from the link's capabilities, so gVisor then drops them as bad checksums.
//
// A frame is merged only when it is a plain IPv4 TCP segment for our MAC (IHL 5, not a fragment,
// a valid header checksum, ACK with or without PSH and nothing else, data) that continues the
// pending one exactly: same addresses, ports, ACK number, header length and options (timestamps
// included), sequence number right after it, an even-length pending payload, and the result
// within 64 KiB. Anything else is delivered after the pending packet, so order is kept. The merged
// packet carries the first segment's headers (flags ORed, the last window) and a TCP checksum
// computed from the segments' checksum fields and headers alone, without a pass over the data:
// it verifies exactly when every merged segment did, and gVisor still verifies it. A burst of
// one frame is delivered unchanged (no copy). The tap link takes the pending packet at the end
// of each burst (before it yields, and when the device queue is empty), so nothing waits.
//
// The coalescer is used by the reader goroutine only.
type tcpCoalescer struct {
	mac tcpip.LinkAddress

	// pending is the packet being built: the first frame's view as read, or (merged) a 64 KiB
	// view with the first frame's headers and all payloads. nil when nothing is pending.
	pending *buffer.View
	merged  bool
	next    uint32 // sequence number that continues the pending segment
	sum     uint16 // one's complement sum of the pending payload
	odd     bool   // the pending payload has odd length (nothing may follow: byte lanes)

	// framesMerged counts frames whose payload went into another frame's packet (Stats adds them
	// to RxPackets, which counts frames).
	framesMerged atomic.Uint64
}

// offer's verdicts on a frame.
const (
	coalesceNo     = iota // not mergeable: deliver take() first, then the frame
	coalesceMerged        // its payload joined the pending packet; the caller keeps the view
	coalesceHeld          // it is the new pending packet (the coalescer owns the view now)
)

// Header offsets in an Ethernet frame.
const (
	ipOff  = header.EthernetMinimumSize
	tcpOff = ipOff + header.IPv4MinimumSize
)

// tcpSegment is a frame's parsed view, valid while the frame is.
type tcpSegment struct {
	ip      header.IPv4 // the IPv4 header and what follows, cut to the total length
	tcp     header.TCP  // header and payload
	payload []byte
	paySum  uint16 // one's complement sum of payload, derived from the headers
}

// parseTCPSegment returns the segment if frame (Ethernet) may be merged.
func (c *tcpCoalescer) parseTCPSegment(frame []byte) (tcpSegment, bool) {
	var s tcpSegment
	if len(frame) < tcpOff+header.TCPMinimumSize || binary.BigEndian.Uint16(frame[12:]) != uint16(header.IPv4ProtocolNumber) ||
		string(frame[:6]) != string(c.mac) {
		return s, false
	}
	b := frame[ipOff:]
	if b[0] != 0x45 || b[9] != uint8(header.TCPProtocolNumber) || binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
		return s, false
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total < header.IPv4MinimumSize+header.TCPMinimumSize || total > len(b) ||
		checksum.Checksum(b[:header.IPv4MinimumSize], 0) != 0xffff {
		return s, false
	}
	s.ip = header.IPv4(b[:total])
	s.tcp = header.TCP(b[header.IPv4MinimumSize:total])
	off := int(s.tcp.DataOffset())
	flags := s.tcp.Flags()
	if off < header.TCPMinimumSize || off >= len(s.tcp) ||
		flags&header.TCPFlagAck == 0 || flags&^(header.TCPFlagAck|header.TCPFlagPsh) != 0 {
		return s, false
	}
	s.payload = s.tcp[off:]
	// A valid segment sums to 0xffff over pseudo-header, TCP header and payload, so the
	// payload's sum follows from the rest. Had the segment a bad checksum, so has the merged
	// packet, and gVisor drops that as it would have dropped the segment.
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, s.ip.SourceAddress(), s.ip.DestinationAddress(), uint16(len(s.tcp)))
	s.paySum = ^checksum.Combine(ps, checksum.Checksum(s.tcp[:off], 0))
	return s, true
}

// offer looks at the frame in v's first n bytes. For coalesceHeld, prev (if not nil) is the
// packet the frame replaced as pending, which the caller delivers first.
func (c *tcpCoalescer) offer(v *buffer.View, n int) (verdict int, prev *buffer.View) {
	s, ok := c.parseTCPSegment(v.AsSlice()[:n])
	if !ok {
		return coalesceNo, nil
	}
	if c.appendSegment(s) {
		c.framesMerged.Add(1)
		return coalesceMerged, nil
	}
	prev = c.take()
	v.CapLength(n)
	c.pending, c.merged = v, false
	c.next = s.tcp.SequenceNumber() + uint32(len(s.payload))
	c.sum = s.paySum
	c.odd = len(s.payload)%2 == 1
	return coalesceHeld, prev
}

// appendSegment adds s to the pending packet if it continues it.
func (c *tcpCoalescer) appendSegment(s tcpSegment) bool {
	if c.pending == nil || c.odd || s.tcp.SequenceNumber() != c.next {
		return false
	}
	p := c.pending.AsSlice()
	pip := header.IPv4(p[ipOff:]) // total length not updated while merging
	if !c.merged {
		pip = pip[:pip.TotalLength()]
	}
	ptcp := header.TCP(pip[header.IPv4MinimumSize:])
	off := int(s.tcp.DataOffset())
	if len(pip)+len(s.payload) > 0xffff || ipOff+len(pip)+len(s.payload) > buffer.MaxChunkSize ||
		!bytes.Equal(pip[12:20], s.ip[12:20]) || !bytes.Equal(ptcp[0:4], s.tcp[0:4]) ||
		!bytes.Equal(ptcp[8:12], s.tcp[8:12]) || int(ptcp.DataOffset()) != off ||
		!bytes.Equal(ptcp[header.TCPMinimumSize:off], s.tcp[header.TCPMinimumSize:off]) {
		return false
	}
	if !c.merged {
		v := buffer.NewView(buffer.MaxChunkSize)
		v.Write(p[:ipOff+len(pip)])
		c.pending.Release()
		c.pending, c.merged = v, true
	}
	c.pending.Write(s.payload)
	ptcp = header.TCP(c.pending.AsSlice()[tcpOff:])
	ptcp.SetFlags(uint8(ptcp.Flags() | s.tcp.Flags()))
	ptcp.SetWindowSize(s.tcp.WindowSize())
	c.next += uint32(len(s.payload))
	c.sum = checksum.Combine(c.sum, s.paySum)
	c.odd = len(s.payload)%2 == 1
	return true
}

// take returns the pending packet as a frame ready for the stack (nil if none) and clears it.
func (c *tcpCoalescer) take() *buffer.View {
	v := c.pending
	if v == nil {
		return nil
	}
	c.pending = nil
	if !c.merged {
		return v
	}
	ip := header.IPv4(v.AsSlice()[ipOff:])
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(ip[header.IPv4MinimumSize:])
	tcp.SetChecksum(0)
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Combine(checksum.Combine(ps, checksum.Checksum(tcp[:tcp.DataOffset()], 0)), c.sum))
	return v
}

// coalesceTCP makes the tap link merge TCP data frames (tcpCoalescer). Other links, and a tap
// link that cfg.WrapLink wraps (fault injection and tracing see frames as they came), are left
// alone.
func (st *Stack) coalesceTCP(cfg Config) {
	if st.tap != nil && cfg.WrapLink == nil {
		st.tap.co = &tcpCoalescer{mac: tcpip.LinkAddress(st.mac)}
	}
}

// framesMerged is how many received frames went into another frame's packet.
func (st *Stack) framesMerged() uint64 {
	if st.tap == nil || st.tap.co == nil {
		return 0
	}
	return st.tap.co.framesMerged.Load()
}
