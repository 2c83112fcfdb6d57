package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// runCoalescer offers frames (Ethernet) to a coalescer as the tap link's reader does, with a take
// after every frame whose index is in flushAt (the end of a burst), and returns what the reader
// would deliver, in order.
func runCoalescer(frames [][]byte, flushAt map[int]bool) *coalesceHarness {
	h := newCoalesceHarness()
	for i, f := range frames {
		h.offerFrame(f)
		if flushAt[i] {
			h.flush()
		}
	}
	h.flush()
	return h
}

// validSegment reports whether the IPv4 packet p (an Ethernet frame's payload, padding allowed)
// is a TCP segment whose IPv4 header and TCP checksums verify, and returns it cut to its total
// length.
func validSegment(p []byte) ([]byte, bool) {
	if len(p) < header.IPv4MinimumSize || p[0]>>4 != 4 {
		return nil, false
	}
	ip := header.IPv4(p)
	hl, total := int(ip.HeaderLength()), int(ip.TotalLength())
	if hl < header.IPv4MinimumSize || total < hl+header.TCPMinimumSize || total > len(p) || ip.Protocol() != uint8(header.TCPProtocolNumber) ||
		checksum.Checksum(p[:hl], 0) != 0xffff {
		return nil, false
	}
	tcp := p[hl:total]
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	return p[:total], checksum.Checksum(tcp, ps) == 0xffff
}

// checkCoalescerOutput matches out against the frames offered: each output packet is either the
// next frame unchanged (refused; a frame the coalescer delivers alone is cut to its IPv4 total
// length), or the merge of the next k ≥ 2 frames: the first one's headers with total length,
// checksums, flags (ORed) and window (the last one's) updated and their payloads in order. Every
// packet the coalescer delivers (verified) must have checksums that verify, and every frame it
// merged or delivered must have been a valid segment for our MAC.
func checkCoalescerOutput(t *testing.T, frames [][]byte, h *coalesceHarness) {
	t.Helper()
	i := 0
	for k, ip := range h.packets {
		if i >= len(frames) {
			t.Fatalf("packet %d: more packets than frames", k)
		}
		first := frames[i][header.EthernetMinimumSize:]
		if !h.verified[k] {
			if !bytes.Equal(ip, first) {
				t.Fatalf("packet %d: refused frame %d changed", k, i)
			}
			i++
			continue
		}
		if string(frames[i][:6]) != string(coalesceMAC) {
			t.Fatalf("packet %d: frame %d for another MAC delivered as verified", k, i)
		}
		got, ok := validSegment(ip)
		if !ok || len(got) != len(ip) {
			t.Fatalf("packet %d (frames from %d): checksums do not verify (valid %v, %d of %d bytes)", k, i, ok, len(got), len(ip))
		}
		if len(ip)+header.EthernetMinimumSize > mergeCap {
			t.Fatalf("packet %d: %d bytes, more than mergeCap", k, len(ip))
		}
		seg0, ok := validSegment(first)
		if !ok {
			t.Fatalf("packet %d: frame %d has bad checksums but was delivered as verified", k, i)
		}
		if bytes.Equal(got, seg0) {
			i++
			continue
		}
		// A merge: consume frames while the payload matches.
		hlen := header.IPv4MinimumSize + int(header.TCP(seg0[header.IPv4MinimumSize:]).DataOffset())
		payload := got[hlen:]
		flags, window := uint8(0), uint16(0)
		n := 0
		for len(payload) > 0 {
			if i+n >= len(frames) {
				t.Fatalf("packet %d: payload longer than the frames left", k)
			}
			seg, ok := validSegment(frames[i+n][header.EthernetMinimumSize:])
			if !ok || string(frames[i+n][:6]) != string(coalesceMAC) {
				t.Fatalf("packet %d: frame %d (bad checksum or another MAC) merged", k, i+n)
			}
			tcp := header.TCP(seg[header.IPv4MinimumSize:])
			if !bytes.Equal(seg[12:20], got[12:20]) || !bytes.Equal(tcp[0:4], got[20:24]) || !bytes.Equal(tcp[8:12], got[28:32]) ||
				tcp.SequenceNumber() != header.TCP(got[20:]).SequenceNumber()+uint32(len(got)-hlen-len(payload)) {
				t.Fatalf("packet %d: frame %d does not continue the flow or sequence", k, i+n)
			}
			p := seg[header.IPv4MinimumSize+int(tcp.DataOffset()):]
			if len(p) > len(payload) || !bytes.Equal(p, payload[:len(p)]) {
				t.Fatalf("packet %d: frame %d's payload is not next in the merged packet", k, i+n)
			}
			if n > 0 && len(p)%2 == 1 && len(payload) > len(p) {
				t.Fatalf("packet %d: odd payload of frame %d followed by more", k, i+n)
			}
			payload = payload[len(p):]
			flags |= uint8(tcp.Flags())
			window = tcp.WindowSize()
			n++
		}
		gtcp := header.TCP(got[20:])
		if n < 2 || n > tcpMergeFrames || uint8(gtcp.Flags()) != flags || gtcp.WindowSize() != window {
			t.Fatalf("packet %d: %d frames merged, flags %#x want %#x, window %d want %d", k, n, gtcp.Flags(), flags, gtcp.WindowSize(), window)
		}
		i += n
	}
	if i != len(frames) {
		t.Fatalf("%d packets cover %d of %d frames", len(h.packets), i, len(frames))
	}
}

// fuzzFrames turns fuzz bytes into frames, 5 bytes each (kind, length high/low, two parameters):
// mostly in-order segments of one flow with lengths up to 4 KiB (odd ones too, so jumbo frames
// reach the 64 KiB limit), and segments with a bad TCP or IPv4 checksum, a corrupted payload,
// IPv4 options, a fragment, Ethernet padding, another MAC, another ACK number or port, PSH, URG,
// FIN, a timestamp option, a sequence gap, a pure ACK, a new window; kind ≥ 200 ends a burst.
func fuzzFrames(ops []byte) ([][]byte, map[int]bool) {
	var frames [][]byte
	flushAt := map[int]bool{}
	seq := uint32(0xfffff000)
	for i := 0; i+5 <= len(ops) && len(frames) < 300; i += 5 {
		kind, n, a, b := ops[i], int(binary.BigEndian.Uint16(ops[i+1:]))%4097, ops[i+3], ops[i+4]
		if kind >= 200 {
			if len(frames) > 0 {
				flushAt[len(frames)-1] = true
			}
			continue
		}
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(j*13) ^ a ^ byte(seq)
		}
		s := segmentSpec{seq: seq, payload: payload, ack: 7}
		var opts []byte
		dst := coalesceMAC
		ihl, frag, pad, ipBad, corrupt := 0, false, 0, false, false
		switch kind % 20 {
		case 1:
			s.badSum = true
		case 2:
			ipBad = true
		case 3:
			corrupt = n > 0
		case 4:
			ihl = 4 // IPv4 options (four NOPs)
		case 5:
			frag = true
		case 6:
			pad = int(a%40) + 1
		case 7:
			dst = tcpip.LinkAddress("\x52\x54\x00\x00\x00\x01")
		case 8:
			s.ack = 8
		case 9:
			s.flags = header.TCPFlagAck | header.TCPFlagPsh
		case 10:
			s.flags = header.TCPFlagAck | header.TCPFlagUrg
		case 11:
			s.flags = header.TCPFlagAck | header.TCPFlagFin
		case 12:
			opts = []byte{1, 1, 8, 10, 0, 0, 0, b, 0, 0, 0, 0}
		case 13:
			s.seq += uint32(b) + 1
		case 14:
			s.payload = nil
		case 15:
			s.seq -= uint32(b)
		}
		s.options = opts
		if kind%20 == 16 {
			s.sport, s.window = 81, uint16(a)<<8|uint16(b)
		}
		p := tcpFrame(s)
		if ihl > 0 {
			p = withIPv4Options(p)
		}
		if frag {
			header.IPv4(p).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
			header.IPv4(p).SetChecksum(0)
			header.IPv4(p).SetChecksum(^header.IPv4(p).CalculateChecksum())
		}
		if ipBad {
			p[8]++ // TTL changed, header checksum not
		}
		if corrupt {
			p[len(p)-1-int(b)%len(s.payload)] ^= 1 << (a % 8)
		}
		f := make([]byte, header.EthernetMinimumSize+len(p)+pad)
		header.Ethernet(f).Encode(&header.EthernetFields{DstAddr: dst, Type: header.IPv4ProtocolNumber})
		copy(f[header.EthernetMinimumSize:], p)
		for j := header.EthernetMinimumSize + len(p); j < len(f); j++ {
			f[j] = b ^ byte(j)
		}
		frames = append(frames, f)
		if kind%20 == 0 || kind%20 == 9 {
			seq = s.seq + uint32(len(s.payload))
		}
	}
	return frames, flushAt
}

// withIPv4Options inserts four NOP options into the IPv4 header of p (IHL 6).
func withIPv4Options(p []byte) []byte {
	q := make([]byte, len(p)+4)
	copy(q, p[:header.IPv4MinimumSize])
	copy(q[header.IPv4MinimumSize:], []byte{1, 1, 1, 1})
	copy(q[header.IPv4MinimumSize+4:], p[header.IPv4MinimumSize:])
	ip := header.IPv4(q)
	ip.SetHeaderLength(header.IPv4MinimumSize + 4)
	ip.SetTotalLength(uint16(len(q)))
	ip.SetChecksum(0)
	ip.SetChecksum(^checksum.Checksum(q[:header.IPv4MinimumSize+4], 0))
	return q
}

// FuzzTCPCoalescer checks the coalescer on its own against checkCoalescerOutput's model: what
// the tap link hands gVisor as checksum-validated must be exactly the valid segments it was
// given, merged only where they continue each other, with checksums that verify.
func FuzzTCPCoalescer(f *testing.F) {
	inorder := func(n int, lens ...uint16) []byte {
		var b []byte
		for i := 0; i < n; i++ {
			for _, l := range lens {
				b = append(b, 0, byte(l>>8), byte(l), byte(i), 3)
			}
		}
		return b
	}
	f.Add(inorder(50, 1448))
	f.Add(inorder(20, 4000, 3999))                     // jumbo frames: the 64 KiB limit, odd lengths
	f.Add(inorder(10, 1448, 1, 1448, 0, 100))          // odd and empty
	f.Add(append(inorder(16, 4000), 0, 5, 0xd2, 0, 0)) // 4054 + 15·4000 + 1490: past mergeCap, within 0xffff
	f.Add(append(inorder(3, 1448), 1, 5, 0xa8, 1, 2, 0, 5, 0xa8, 0, 0, 3, 5, 0xa8, 7, 9, 200, 0, 0, 0, 0, 4, 5, 0xa8, 0, 0))
	f.Add([]byte{0, 5, 0xa8, 0, 0, 6, 5, 0xa8, 9, 0, 0, 5, 0xa8, 0, 0, 12, 5, 0xa8, 0, 1, 12, 5, 0xa8, 0, 1, 16, 5, 0xa8, 1, 1, 0, 5, 0xa8, 0, 0})
	f.Add([]byte{0, 5, 0xa8, 0, 0, 9, 5, 0xa8, 0, 0, 10, 5, 0xa8, 0, 0, 0, 5, 0xa8, 0, 0, 11, 5, 0xa8, 0, 0, 13, 5, 0xa8, 0, 3, 15, 5, 0xa8, 0, 3, 14, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		frames, flushAt := fuzzFrames(ops)
		checkCoalescerOutput(t, frames, runCoalescer(frames, flushAt))
	})
}
