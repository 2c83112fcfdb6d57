package netstack

import "testing"

// TestTCPCoalescerSmallMergeKeepsLittleMemory: gVisor accounts a queued segment by its bytes, not
// by the chunk under them, so a merged packet must not pin much more memory than it holds. A
// burst of two small segments was delivered in the coalescer's 64 KiB view: a peer sending such
// pairs behind a sequence hole made gVisor queue ~1200 of them (its receive buffer's worth of
// tiny segments), 80 MiB against 3.5 MiB without coalescing — most of a 128 MiB guest. The
// packet must sit in a view at most twice its size (the pools' power-of-two rounding), as a
// single frame's does; a full burst keeps its 64 KiB view.
func TestTCPCoalescerSmallMergeKeepsLittleMemory(t *testing.T) {
	tests := []struct {
		name string
		lens []int
	}{
		{"two tiny segments", []int{2, 1}},
		{"two full segments", []int{1448, 1448}},
		{"ten segments", []int{1448, 1448, 1448, 1448, 1448, 1448, 1448, 1448, 1448, 1448}},
		{"a full burst", func() []int {
			l := make([]int, tcpMergeFrames)
			for i := range l {
				l[i] = 1448
			}
			return l
		}()},
	}
	for _, tt := range tests {
		h := newCoalesceHarness()
		seq := uint32(1000)
		for i, n := range tt.lens {
			h.frame(tcpFrame(segmentSpec{seq: seq, payload: payloadOf(t, n, i)}), coalesceMAC)
			seq += uint32(n)
		}
		b, ok := h.c.take()
		if !ok {
			t.Fatalf("%s: nothing pending", tt.name)
		}
		size, capacity, views := int(b.Size()), 0, 0
		vl := b.AsViewList()
		for v := vl.Front(); v != nil; v = v.Next() {
			capacity += v.Capacity()
			views++
		}
		if !tcpChecksumOK(b.Flatten()[ipOff:]) {
			t.Errorf("%s: checksums do not verify", tt.name)
		}
		b.Release()
		if views != 1 || capacity > 2*size && capacity > 2048 {
			t.Errorf("%s: %d bytes in %d views of %d bytes' capacity, want one view of at most %d", tt.name, size, views, capacity, max(2*size, 2048))
		}
	}
}
