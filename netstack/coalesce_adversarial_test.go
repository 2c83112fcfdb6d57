package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// flowFrame is tcpFrame with the destination port set to dport and mutate applied to the IPv4
// packet before the TCP checksum is computed.
func flowFrame(s segmentSpec, dport uint16, mutate func(ip []byte)) []byte {
	b := tcpFrame(s)
	binary.BigEndian.PutUint16(b[header.IPv4MinimumSize+2:], dport)
	if mutate != nil {
		mutate(b)
	}
	ip := header.IPv4(b)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[header.IPv4MinimumSize:ip.TotalLength()])
	tcp.SetChecksum(0)
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, ps))
	return b
}

// TestTCPCoalescerKeepsFlowsApart interleaves two flows and segments that differ from their
// predecessor in one header field each: only a segment that continues the pending one exactly
// (same flow, next sequence number, same ACK and options) is merged, every packet verifies,
// and the payload bytes of each flow come out in the order they went in.
func TestTCPCoalescerKeepsFlowsApart(t *testing.T) {
	p := func(seed int) []byte { return payloadOf(t, 1000, seed) }
	a := func(i int, mutate func([]byte)) []byte {
		return flowFrame(segmentSpec{seq: uint32(1000 * i), payload: p(i)}, 40000, mutate)
	}
	b := func(i int) []byte {
		return flowFrame(segmentSpec{seq: uint32(1000 * i), payload: p(100 + i)}, 40001, nil)
	}
	tests := []struct {
		name   string
		frames [][]byte
		want   []int // frames per delivered packet
	}{
		{"interleaved flows", [][]byte{a(0, nil), b(0), a(1, nil), b(1)}, []int{1, 1, 1, 1}},
		{"flow after flow", [][]byte{a(0, nil), a(1, nil), b(0), b(1)}, []int{2, 2}},
		{"other source address", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[15]++ })}, []int{1, 1}},
		{"other destination address", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[19]++ })}, []int{1, 1}},
		{"other source port", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[21]++ })}, []int{1, 1}},
		{"retransmission of the same segment", [][]byte{a(0, nil), a(0, nil)}, []int{1, 1}},
		{"overlap (sequence one byte early)", [][]byte{a(0, nil), a(1, func(ip []byte) {
			tcp := header.TCP(ip[header.IPv4MinimumSize:])
			tcp.SetSequenceNumber(tcp.SequenceNumber() - 1)
		})}, []int{1, 1}},
		{"window change merges, last window kept", [][]byte{a(0, nil), a(1, func(ip []byte) {
			header.TCP(ip[header.IPv4MinimumSize:]).SetWindowSize(123)
		})}, []int{2}},
		{"TTL and IP ID differ: merged", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[8] = 3; ip[5]++ })}, []int{2}},
		{"URG flag", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[33] |= byte(header.TCPFlagUrg) })}, []int{1, 1}},
		{"SYN flag", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[33] |= byte(header.TCPFlagSyn) })}, []int{1, 1}},
		{"RST flag", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[33] |= byte(header.TCPFlagRst) })}, []int{1, 1}},
		{"ECE flag", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[33] |= byte(header.TCPFlagEce) })}, []int{1, 1}},
		{"DF set on one: merged", [][]byte{a(0, nil), a(1, func(ip []byte) { ip[6] |= 0x40 })}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCoalesceHarness()
			for _, f := range tt.frames {
				h.frame(f, coalesceMAC)
			}
			h.flush()
			if len(h.packets) != len(tt.want) {
				t.Fatalf("delivered %d packets, want %d", len(h.packets), len(tt.want))
			}
			next := 0
			for i, got := range h.packets {
				if !tcpChecksumOK(got) {
					t.Errorf("packet %d does not verify", i)
				}
				var want []byte
				for _, f := range tt.frames[next : next+tt.want[i]] {
					want = append(want, f[header.IPv4MinimumSize+header.TCPMinimumSize:]...)
				}
				if pay := got[header.IPv4MinimumSize+header.TCPMinimumSize:]; !bytes.Equal(pay, want) {
					t.Errorf("packet %d: payload is not its frames' payloads in order", i)
				}
				last := tt.frames[next+tt.want[i]-1]
				if w := header.TCP(got[header.IPv4MinimumSize:]).WindowSize(); w != header.TCP(last[header.IPv4MinimumSize:]).WindowSize() {
					t.Errorf("packet %d: window %d, want the last frame's", i, w)
				}
				next += tt.want[i]
			}
		})
	}
}

// TestTCPCoalescerDropsEthernetPadding offers short segments in frames padded to Ethernet's
// minimum with non-zero bytes: the merged packet carries the payloads only, and verifies.
func TestTCPCoalescerDropsEthernetPadding(t *testing.T) {
	c := &tcpCoalescer{mac: coalesceMAC}
	var want []byte
	var out [][]byte
	for i := 0; i < 4; i++ {
		pay := payloadOf(t, 2+2*i, i) // even lengths, so all four may merge
		want = append(want, pay...)
		ip := tcpFrame(segmentSpec{seq: uint32(len(want) - len(pay)), payload: pay})
		n := header.EthernetMinimumSize + len(ip)
		padded := max(n, 60)
		v := buffer.NewViewSize(padded + 32)
		b := v.AsSlice()
		header.Ethernet(b).Encode(&header.EthernetFields{DstAddr: coalesceMAC, Type: header.IPv4ProtocolNumber})
		copy(b[header.EthernetMinimumSize:], ip)
		for k := n; k < len(b); k++ {
			b[k] = 0xee
		}
		res, prev := c.offer(v, padded)
		if res == offerRefused {
			t.Fatalf("segment %d not taken", i)
		}
		if prev.Size() > 0 {
			out = append(out, prev.Flatten())
			prev.Release()
		}
	}
	if b, ok := c.take(); ok {
		out = append(out, b.Flatten())
		b.Release()
	}
	if len(out) != 1 {
		t.Fatalf("delivered %d packets, want 1 merged", len(out))
	}
	got := out[0][header.EthernetMinimumSize:]
	if !tcpChecksumOK(got) || len(got) != header.IPv4MinimumSize+header.TCPMinimumSize+len(want) ||
		!bytes.Equal(got[header.IPv4MinimumSize+header.TCPMinimumSize:], want) {
		t.Fatalf("merged packet: %d bytes, checksum ok %v, payload %x; want payload %x",
			len(got), tcpChecksumOK(got), got[min(len(got), header.IPv4MinimumSize+header.TCPMinimumSize):], want)
	}
}
