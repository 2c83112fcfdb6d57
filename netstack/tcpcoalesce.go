package netstack

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"netipl/internal/movelong"
)

// tcpCoalescer merges the in-order TCP data segments of one burst (the frames the tap link reads
// in one wake-up, at most tcpMergeFrames) into one IPv4 packet of up to 64 KiB before gVisor sees them:
// a software GRO in the tap link's reader. gVisor then builds one packet buffer and runs IPv4
// input, the TCP demultiplexer, segment processing, the receive queue and the reader's wake-up
// once per burst instead of once per 1460-byte frame. The packet is one view: the first frame,
// then each further segment's payload copied after it (offer says why a copy beats chaining views);
// a merge of at most half that view moves to a view of its size when it is delivered (take).
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
// built from the payload sums of its segments, each of which was verified against its own
// checksum before it was merged (a segment that fails is delivered alone, for gVisor to drop);
// the tap link hands such packets to gVisor as checksum-validated (deliverVerified). A burst of
// one frame is delivered unchanged. The tap link takes the pending packet at the end of each
// burst (before it yields, and when the device queue is empty), so nothing waits.
//
// The coalescer is used by the reader goroutine only.
type tcpCoalescer struct {
	mac tcpip.LinkAddress

	// pending is the packet being built: the first frame's own view while it is alone, then one
	// view of mergeCap bytes holding the first frame and the payloads copied after it; hdr is the
	// first frame's Ethernet, IPv4 and TCP headers inside it. nil when nothing is pending.
	pending *buffer.View
	hdr     []byte
	frames  int
	next    uint32 // sequence number that continues the pending segment
	sum     uint16 // one's complement sum of the pending payload
	odd     bool   // the pending payload has odd length (nothing may follow: byte lanes)

	// framesMerged counts frames whose payload went into another frame's packet (Stats adds them
	// to RxPackets, which counts frames).
	framesMerged atomic.Uint64
	// bytesDropped counts the received bytes that the delivered packets no longer hold: merged
	// frames' headers and kept frames' Ethernet padding (Stats adds them to RxBytes, which
	// counts frames as the NIC would have seen them).
	bytesDropped atomic.Uint64
}

// tcpMergeFrames is the most frames merged into one packet, and so how many segments of a bulk
// download gVisor acknowledges at once. Slirp offers no window scaling: the window is 64 KiB, 45
// segments of 1440 bytes. One ACK per 44 of them (slirp sends the next 44 within microseconds, while
// the guest is still on the last one) beat one per 32: HTTP 60 MB initrd 79.6 -> 94.2 and 77.7 ->
// 99.6 MB/s, QEMU CPU 13.7 -> 11.6 and 14.0 -> 10.9 ms/MB (bench/httpab.sh, two sets of 20 rounds).
const tcpMergeFrames = 44

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
	// Each segment's checksum is verified here, over its own data: a merged packet's checksum
	// is only the sum of its segments' sums, so two corrupted segments whose errors cancel
	// would pass gVisor's check of the merged packet (TestTCPCoalescerCompensatingCorruption).
	// A segment that fails is not merged: it goes to gVisor alone, which drops and counts it.
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, s.ip.SourceAddress(), s.ip.DestinationAddress(), uint16(len(s.tcp)))
	s.paySum = checksum.Checksum(s.payload, 0)
	if checksum.Combine(checksum.Combine(ps, checksum.Checksum(s.tcp[:off], 0)), s.paySum) != 0xffff {
		return s, false
	}
	return s, true
}

// offerResult says what offer did with a frame.
type offerResult uint8

const (
	// offerRefused: the frame is not mergeable; the caller delivers take() first, then the frame.
	offerRefused offerResult = iota
	// offerKept: the frame starts a new pending packet and the coalescer keeps its view; prev, if
	// not empty, is the packet it replaced, which the caller delivers first.
	offerKept
	// offerCopied: the frame's payload was copied into the pending packet; the view is the
	// caller's again (the tap link reads the next frame into it).
	offerCopied
)

// mergeCap is the size of the view a merged packet is built in: gVisor's largest pooled chunk, so
// that getting it costs no allocation. It holds tcpMergeFrames segments of a 1500-byte MTU.
const mergeCap = buffer.MaxChunkSize

// offer looks at the frame in v's first n bytes and merges it, keeps it or refuses it.
//
// Merged payloads are copied into one view (mergeCap bytes) rather than chained as views: a copy
// of 1.4 KiB costs the guest less than what a view per frame costs at each step (getting and
// releasing a view and its chunk from gVisor's pools, clearing the chunk's 2 KiB, gVisor walking
// a packet of up to 44 views), and the tap link reuses the view for its next read.
func (c *tcpCoalescer) offer(v *buffer.View, n int) (offerResult, buffer.Buffer) {
	s, ok := c.parseTCPSegment(v.AsSlice()[:n])
	if !ok {
		return offerRefused, buffer.Buffer{}
	}
	if c.continues(s) {
		if c.frames == 1 { // the second segment: move the first frame into a view with room
			c.movePending(mergeCap)
			c.hdr = c.pending.AsSlice()[:len(c.hdr)]
		}
		appendBytes(c.pending, s.payload)
		ptcp := header.TCP(c.hdr[tcpOff:])
		ptcp.SetFlags(uint8(ptcp.Flags() | s.tcp.Flags()))
		ptcp.SetWindowSize(s.tcp.WindowSize())
		c.frames++
		c.next += uint32(len(s.payload))
		c.sum = checksum.Combine(c.sum, s.paySum)
		c.odd = len(s.payload)%2 == 1
		c.framesMerged.Add(1)
		c.bytesDropped.Add(uint64(n - ipOff - len(s.payload)))
		return offerCopied, buffer.Buffer{}
	}
	prev, _ := c.take()
	c.bytesDropped.Add(uint64(n - ipOff - len(s.ip)))
	v.CapLength(ipOff + len(s.ip))
	c.hdr = v.AsSlice()[:tcpOff+int(s.tcp.DataOffset())]
	c.pending = v
	c.frames = 1
	c.next = s.tcp.SequenceNumber() + uint32(len(s.payload))
	c.sum = s.paySum
	c.odd = len(s.payload)%2 == 1
	return offerKept, prev
}

// appendBytes appends b to v, which has room for it (continues checks mergeCap), with
// movelong.Copy: under TCG a copy of a segment's payload by MVCLE costs a fifth of copy()'s.
func appendBytes(v *buffer.View, b []byte) {
	n := v.Size()
	v.Grow(len(b))
	movelong.Copy(v.AsSlice()[n:], b)
}

// movePending copies the pending packet into a new view of capacity bytes, which replaces it
// (c.hdr still points into the old one).
func (c *tcpCoalescer) movePending(capacity int) {
	v := buffer.NewView(capacity)
	appendBytes(v, c.pending.AsSlice())
	c.pending.Release()
	c.pending = v
}

// continues reports whether s may be appended to the pending packet.
func (c *tcpCoalescer) continues(s tcpSegment) bool {
	if c.frames == 0 || c.odd || s.tcp.SequenceNumber() != c.next {
		return false
	}
	size := c.pending.Size() // the frame so far
	pip, ptcp := header.IPv4(c.hdr[ipOff:]), header.TCP(c.hdr[tcpOff:])
	off := int(s.tcp.DataOffset())
	return c.frames < tcpMergeFrames && size+len(s.payload) <= min(ipOff+0xffff, mergeCap) && len(c.hdr) == tcpOff+off &&
		bytes.Equal(pip[12:20], s.ip[12:20]) && bytes.Equal(ptcp[0:4], s.tcp[0:4]) &&
		bytes.Equal(ptcp[8:12], s.tcp[8:12]) && bytes.Equal(ptcp[header.TCPMinimumSize:off], s.tcp[header.TCPMinimumSize:off])
}

// holds reports whether a packet is pending (false for a nil coalescer).
func (c *tcpCoalescer) holds() bool { return c != nil && c.frames > 0 }

// full reports whether the pending packet has tcpMergeFrames frames (false for a nil coalescer).
func (c *tcpCoalescer) full() bool { return c != nil && c.frames >= tcpMergeFrames }

// take returns the pending packet as a frame ready for the stack and clears it; false if none.
func (c *tcpCoalescer) take() (buffer.Buffer, bool) {
	if c.frames == 0 {
		return buffer.Buffer{}, false
	}
	if c.frames > 1 {
		size := c.pending.Size()
		ip := header.IPv4(c.hdr[ipOff:])
		ip.SetTotalLength(uint16(size - ipOff))
		ip.SetChecksum(0)
		ip.SetChecksum(^checksum.Checksum(ip[:header.IPv4MinimumSize], 0))
		tcp := header.TCP(c.hdr[tcpOff:])
		tcp.SetChecksum(0)
		ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(),
			uint16(size-tcpOff))
		tcp.SetChecksum(^checksum.Combine(checksum.Combine(ps, checksum.Checksum(tcp, 0)), c.sum))
		if size <= mergeCap/2 {
			// gVisor accounts a queued segment by its bytes, not by its chunk: a small merge
			// left in the mergeCap view let a peer pin 64 KiB per pair of tiny segments
			// (TestTCPCoalescerSmallMergeKeepsLittleMemory). It moves to a view of its size;
			// a full burst (the bulk case) keeps its view and costs no second copy.
			c.movePending(size)
		}
	}
	b := buffer.MakeWithView(c.pending)
	c.pending, c.hdr, c.frames = nil, nil, 0
	return b, true
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

// bytesDropped is how many received bytes the coalescer's packets no longer hold.
func (st *Stack) bytesDropped() uint64 {
	if st.tap == nil || st.tap.co == nil {
		return 0
	}
	return st.tap.co.bytesDropped.Load()
}
