package netstack

import (
	"testing"
	"time"
)

// TestTCPCoalescerStatsAsGVisor: Stats counts the frames and bytes the NIC received whether or
// not the coalescer merged them (the UDP fast path's rule, udpRig.counters): the same segments
// — full ones, odd and tiny ones with Ethernet padding, a bad checksum — give the same RxPackets
// and RxBytes with and without coalescing.
func TestTCPCoalescerStatsAsGVisor(t *testing.T) {
	var got [2]Stats
	for i, co := range []bool{false, true} {
		r := newTCPRig(t, co)
		want := streamBytes(7, 20000)
		var frames [][]byte
		for off := 0; off < len(want); {
			n := 1448
			switch off / 1448 % 5 {
			case 1:
				n = 3 // a padded frame (60 bytes on the wire)
			case 3:
				n = 1001
			}
			n = min(n, len(want)-off)
			f := r.frame(rigSegment{seq: r.irs + uint32(off), payload: want[off : off+n]})
			if len(f) < 60 {
				f = append(f, make([]byte, 60-len(f))...)
			}
			frames = append(frames, f)
			off += n
		}
		frames = append(frames[:4], append([][]byte{r.frame(rigSegment{seq: r.irs, payload: want[:100], sumDelta: 5})}, frames[4:]...)...)
		r.send(t, frames...)
		if b := r.readStream(len(want), 5*time.Second); len(b) != len(want) {
			t.Fatalf("coalesce=%v: %d of %d bytes", co, len(b), len(want))
		}
		got[i] = r.st.Stats()
		if co && r.st.framesMerged() == 0 {
			t.Fatal("nothing merged: the comparison does not exercise the coalescer")
		}
	}
	if got[0].RxPackets != got[1].RxPackets || got[0].RxBytes != got[1].RxBytes {
		t.Errorf("RxPackets/RxBytes = %d/%d with coalescing, %d/%d without", got[1].RxPackets, got[1].RxBytes, got[0].RxPackets, got[0].RxBytes)
	}
}
