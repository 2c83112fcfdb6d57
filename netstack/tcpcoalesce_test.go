package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// coalesceHarness drives a tcpCoalescer as the tap link's reader does and keeps copies of the
// IPv4 packets it would deliver; verified[i] is set for those that come from the coalescer (the
// tap link hands them to gVisor as checksum-validated).
type coalesceHarness struct {
	c        *tcpCoalescer
	packets  [][]byte
	verified []bool
}

var coalesceMAC = tcpip.LinkAddress("\x52\x54\x00\x12\x34\x56")

func newCoalesceHarness() *coalesceHarness {
	return &coalesceHarness{c: &tcpCoalescer{mac: coalesceMAC}}
}

// frame offers the IPv4 packet b in an Ethernet frame to dst, read into a buffer larger than
// the frame as the tap link's is.
func (h *coalesceHarness) frame(b []byte, dst tcpip.LinkAddress) {
	f := make([]byte, header.EthernetMinimumSize+len(b))
	header.Ethernet(f).Encode(&header.EthernetFields{DstAddr: dst, Type: header.IPv4ProtocolNumber})
	copy(f[header.EthernetMinimumSize:], b)
	h.offerFrame(f)
}

// offerFrame offers the Ethernet frame f, read into a buffer larger than the frame whose other
// bytes are not zero; a view the coalescer copied from is overwritten before it is released, as
// the tap link's next read would.
func (h *coalesceHarness) offerFrame(f []byte) {
	v := buffer.NewViewSize(len(f) + 64)
	copy(v.AsSlice(), f)
	poison := func(b byte) {
		for i := len(f); i < v.Size(); i++ {
			v.AsSlice()[i] = b
		}
	}
	poison(0xa5)
	switch res, prev := h.c.offer(v, len(f)); res {
	case offerKept:
		h.emit(prev, prev.Size() > 0)
		return
	case offerCopied:
		poison(0x5a)
		clear(v.AsSlice()[:len(f)])
		v.Release()
		return
	}
	h.flush()
	v.CapLength(len(f))
	h.emitAs(buffer.MakeWithView(v), false)
}

func (h *coalesceHarness) emit(b buffer.Buffer, ok bool) {
	if ok {
		h.emitAs(b, true)
	}
}

func (h *coalesceHarness) emitAs(b buffer.Buffer, verified bool) {
	h.packets = append(h.packets, b.Flatten()[header.EthernetMinimumSize:])
	h.verified = append(h.verified, verified)
	b.Release()
}

func (h *coalesceHarness) flush() { h.emit(h.c.take()) }

// segmentSpec describes one test frame.
type segmentSpec struct {
	seq     uint32
	payload []byte
	flags   header.TCPFlags
	ack     uint32
	badSum  bool // corrupt the TCP checksum
	proto   uint8
	dst     tcpip.LinkAddress // Ethernet destination; empty: ours
	options []byte            // TCP options, a multiple of 4 bytes
	sport   uint16            // source port; 0: 80
	window  uint16            // 0: 500
}

var (
	coalesceSrc = tcpip.AddrFrom4([4]byte{10, 0, 2, 2})
	coalesceDst = tcpip.AddrFrom4([4]byte{10, 0, 2, 15})
)

// tcpFrame builds an IPv4/TCP packet (no Ethernet header) with correct checksums unless asked.
func tcpFrame(s segmentSpec) []byte {
	if s.flags == 0 {
		s.flags = header.TCPFlagAck
	}
	if s.ack == 0 {
		s.ack = 7
	}
	if s.proto == 0 {
		s.proto = uint8(header.TCPProtocolNumber)
	}
	if s.sport == 0 {
		s.sport = 80
	}
	if s.window == 0 {
		s.window = 500
	}
	thl := header.TCPMinimumSize + len(s.options)
	b := make([]byte, header.IPv4MinimumSize+thl+len(s.payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: s.proto,
		SrcAddr: coalesceSrc, DstAddr: coalesceDst,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{
		SrcPort: s.sport, DstPort: 40000, SeqNum: s.seq, AckNum: s.ack,
		DataOffset: uint8(thl), Flags: s.flags, WindowSize: s.window,
	})
	copy(tcp[header.TCPMinimumSize:], s.options)
	copy(tcp[thl:], s.payload)
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, coalesceSrc, coalesceDst, uint16(len(tcp)))
	sum := ^checksum.Checksum(tcp, ps)
	if s.badSum {
		sum ^= 0x0100
	}
	tcp.SetChecksum(sum)
	return b
}

// tcpChecksumOK reports whether an IPv4/TCP packet's header and TCP checksums verify.
func tcpChecksumOK(b []byte) bool {
	ip := header.IPv4(b)
	tcp := header.TCP(b[header.IPv4MinimumSize:ip.TotalLength()])
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	return ip.IsChecksumValid() && checksum.Checksum(tcp, ps) == 0xffff
}

func payloadOf(t *testing.T, n, seed int) []byte {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed*7 + i>>8)
	}
	return b
}

// TestTCPCoalescer feeds bursts of frames through the decorator and checks which are merged, that
// merged packets carry the bytes in order with checksums that verify exactly when every merged
// segment's did, and that flush delivers what is pending.
func TestTCPCoalescer(t *testing.T) {
	p := func(seed int) []byte { return payloadOf(t, 1448, seed) }
	tests := []struct {
		name  string
		segs  []segmentSpec
		want  []int // frames per delivered packet, in order
		valid []bool
	}{
		{"in order: one packet", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2)}, {seq: 2996, payload: p(3), flags: header.TCPFlagAck | header.TCPFlagPsh}},
			[]int{3}, []bool{true}},
		{"single frame passes unchanged", []segmentSpec{{seq: 100, payload: p(1)}}, []int{1}, []bool{true}},
		{"gap starts a new packet", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2)}, {seq: 9999, payload: p(3)}, {seq: 11447, payload: p(4)}},
			[]int{2, 2}, []bool{true, true}},
		{"a bad checksum is not merged", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2), badSum: true}, {seq: 2996, payload: p(3)}},
			[]int{1, 1, 1}, []bool{true, false, true}},
		{"all-zero payloads", []segmentSpec{{seq: 0, payload: make([]byte, 1448)}, {seq: 1448, payload: make([]byte, 1448)}}, []int{2}, []bool{true}},
		{"FIN is not merged", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2), flags: header.TCPFlagAck | header.TCPFlagFin}},
			[]int{1, 1}, []bool{true, true}},
		{"other ACK number", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2), ack: 99}}, []int{1, 1}, []bool{true, true}},
		{"another station's frame", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2), dst: "\x52\x54\x00\x12\x34\x57"}}, []int{1, 1}, []bool{true, true}},
		{"pure ACK is not merged", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548}}, []int{1, 1}, []bool{true, true}},
		{"odd length ends a packet", []segmentSpec{{seq: 100, payload: p(1)[:1001]}, {seq: 1101, payload: p(2)}, {seq: 2549, payload: p(3)}},
			[]int{1, 2}, []bool{true, true}},
		{"not TCP", []segmentSpec{{seq: 100, payload: p(1)}, {seq: 1548, payload: p(2), proto: uint8(header.UDPProtocolNumber)}},
			[]int{1, 1}, []bool{true, false}},
		{"frame limit", func() []segmentSpec {
			var s []segmentSpec
			for i := 0; i < 50; i++ {
				s = append(s, segmentSpec{seq: uint32(i * 1448), payload: p(i)})
			}
			return s
		}(), []int{tcpMergeFrames, 50 - tcpMergeFrames}, []bool{true, true}},
		{"64 KiB limit (jumbo frames)", func() []segmentSpec {
			var s []segmentSpec
			for i := 0; i < 10; i++ {
				s = append(s, segmentSpec{seq: uint32(i * 8000), payload: payloadOf(t, 8000, i)})
			}
			return s
		}(), []int{8, 2}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCoalesceHarness()
			var frames [][]byte
			for _, s := range tt.segs {
				f := tcpFrame(s)
				frames = append(frames, f)
				dst := s.dst
				if dst == "" {
					dst = coalesceMAC
				}
				h.frame(f, dst)
			}
			h.flush()
			c, rec := h.c, h
			if len(rec.packets) != len(tt.want) {
				t.Fatalf("delivered %d packets, want %d", len(rec.packets), len(tt.want))
			}
			next := 0
			for i, got := range rec.packets {
				n := tt.want[i]
				if tt.segs[next].proto == 0 { // TCP
					if ok := tcpChecksumOK(got); ok != tt.valid[i] {
						t.Errorf("packet %d: checksums valid = %v, want %v", i, ok, tt.valid[i])
					}
				}
				if n == 1 {
					if !bytes.Equal(got, frames[next]) {
						t.Errorf("packet %d: a single frame was changed", i)
					}
					next++
					continue
				}
				want := append([]byte(nil), frames[next][:header.IPv4MinimumSize+header.TCPMinimumSize]...)
				for _, f := range frames[next : next+n] {
					want = append(want, f[header.IPv4MinimumSize+header.TCPMinimumSize:]...)
				}
				ip := header.IPv4(got)
				if int(ip.TotalLength()) != len(want) || len(got) != len(want) {
					t.Fatalf("packet %d: %d bytes, IP total length %d, want %d", i, len(got), ip.TotalLength(), len(want))
				}
				tcp := header.TCP(got[header.IPv4MinimumSize:])
				if tcp.SequenceNumber() != tt.segs[next].seq {
					t.Errorf("packet %d: seq %d, want %d", i, tcp.SequenceNumber(), tt.segs[next].seq)
				}
				if !bytes.Equal(got[header.IPv4MinimumSize+header.TCPMinimumSize:], want[header.IPv4MinimumSize+header.TCPMinimumSize:]) {
					t.Errorf("packet %d: payload is not the frames' payloads in order", i)
				}
				if last := tt.segs[next+n-1]; last.flags&header.TCPFlagPsh != 0 && tcp.Flags()&header.TCPFlagPsh == 0 {
					t.Errorf("packet %d: PSH of the last frame lost", i)
				}
				next += n
			}
			if got, want := c.framesMerged.Load(), uint64(len(tt.segs)-len(tt.want)); got != want {
				t.Errorf("framesMerged = %d, want %d", got, want)
			}
			if c.frames != 0 || c.pending.Size() != 0 {
				t.Errorf("something still pending after flush")
			}
		})
	}
}

// TestTCPCoalescerIgnoresBrokenIPv4 checks that frames with a bad IPv4 header checksum or length
// are passed on unmerged (gVisor then drops them) rather than merged.
func TestTCPCoalescerIgnoresBrokenIPv4(t *testing.T) {
	h := newCoalesceHarness()
	a := tcpFrame(segmentSpec{seq: 1, payload: payloadOf(t, 100, 1)})
	b := tcpFrame(segmentSpec{seq: 101, payload: payloadOf(t, 100, 2)})
	b[10] ^= 1 // IPv4 header checksum
	d := tcpFrame(segmentSpec{seq: 201, payload: payloadOf(t, 100, 3)})
	binary.BigEndian.PutUint16(d[2:], 2000) // total length beyond the frame
	for _, f := range [][]byte{a, b, d} {
		h.frame(f, coalesceMAC)
	}
	h.flush()
	if len(h.packets) != 3 || h.c.framesMerged.Load() != 0 {
		t.Fatalf("delivered %d packets with %d merged frames, want 3 unmerged", len(h.packets), h.c.framesMerged.Load())
	}
}
