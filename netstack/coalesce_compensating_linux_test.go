package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// TestTCPCoalescerCompensatingCorruption sends two in-order segments whose payloads were each
// corrupted in flight, by +0x0100 and -0x0100 in one 16-bit word: each fails its own TCP
// checksum, and gVisor without coalescing drops both and takes the clean resend. Merged, the
// errors would cancel in the merged packet's checksum (the sum of its segments' sums), so the
// coalescer must verify each segment before merging it.
func TestTCPCoalescerCompensatingCorruption(t *testing.T) {
	for _, co := range []bool{false, true} {
		r := newTCPRig(t, co)
		want := streamBytes(7, 2000)
		// Corrupt word 10 of each payload; keep the checksums of the clean data.
		bad := func(off int, delta int) []byte {
			f := r.frame(rigSegment{seq: r.irs + uint32(off), payload: want[off : off+1000]})
			p := f[len(f)-1000:]
			w := int(binary.BigEndian.Uint16(p[20:])) + delta
			binary.BigEndian.PutUint16(p[20:], uint16(w))
			return f
		}
		// The corrupted pair, five times over (each time most likely one burst): nothing may be
		// merged and nothing delivered, with or without coalescing.
		merged0 := r.st.framesMerged()
		for attempt := 0; attempt < 5; attempt++ {
			// A pure ACK first: the first frame of a wake-up is delivered alone.
			r.send(t, r.frame(rigSegment{seq: r.irs}), bad(0, 0x100), bad(1000, -0x100))
			if got := r.readStream(1, 50*time.Millisecond); len(got) != 0 {
				t.Fatalf("coalesce=%v: attempt %d: %d bytes of corrupted segments delivered", co, attempt, len(got))
			}
		}
		if m := r.st.framesMerged() - merged0; m != 0 {
			t.Errorf("coalesce=%v: %d corrupted segments merged", co, m)
		}
		r.send(t, r.inOrder(want, 1000)...)
		got := r.readStream(len(want), 3*time.Second)
		if !bytes.Equal(got, want) {
			t.Errorf("coalesce=%v: corrupted bytes delivered as good data (got %d bytes; first difference at %d)", co, len(got), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
