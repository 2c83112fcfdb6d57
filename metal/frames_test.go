package metal

import (
	"testing"
	"unsafe"
)

var keep [][]uint64

func newFrames(n uint64) *frames {
	f := &frames{}
	bits := make([]uint64, (n+63)/64)
	keep = append(keep, bits)
	f.init(uintptr(unsafe.Pointer(&bits[0])), n)
	return f
}

func TestFramesTopDown(t *testing.T) {
	f := newFrames(200)
	f.addFree(10, 150)
	if f.free != 140 {
		t.Fatalf("free = %d, want 140", f.free)
	}
	for want := uint64(149); want >= 140; want-- {
		got, ok := f.alloc()
		if !ok || got != want {
			t.Fatalf("alloc() = %d, %v, want %d, true", got, ok, want)
		}
	}
	if !f.release(145) {
		t.Fatal("release(145) = false")
	}
	if f.release(145) {
		t.Fatal("double release(145) = true")
	}
	if got, _ := f.alloc(); got != 145 {
		t.Fatalf("alloc() after release = %d, want 145", got)
	}
	if got, _ := f.alloc(); got != 139 {
		t.Fatalf("alloc() = %d, want 139", got)
	}
}

func TestFramesExhaust(t *testing.T) {
	f := newFrames(130)
	f.addFree(1, 130)
	for i := 0; i < 129; i++ {
		if _, ok := f.alloc(); !ok {
			t.Fatalf("alloc %d failed early", i)
		}
	}
	if got, ok := f.alloc(); ok {
		t.Fatalf("alloc() on empty = %d, true", got)
	}
	if f.free != 0 || f.low != 0 {
		t.Fatalf("free, low = %d, %d", f.free, f.low)
	}
	f.release(0) // never added, but release of a used frame below the range is allowed
	if got, ok := f.alloc(); !ok || got != 0 {
		t.Fatalf("alloc() = %d, %v, want 0", got, ok)
	}
}

func TestFramesRun(t *testing.T) {
	f := newFrames(64)
	f.addFree(0, 64)
	f.alloc() // 63
	got, ok := f.allocRun(4)
	if !ok || got != 56 {
		t.Fatalf("allocRun(4) = %d, %v, want 56", got, ok)
	}
	f.release(50)
	f.alloc() // takes 62
	got, ok = f.allocRun(4)
	if !ok || got != 52 {
		t.Fatalf("allocRun(4) = %d, %v, want 52", got, ok)
	}
	for i := uint64(0); i < 64; i++ {
		f.release(i)
	}
	if f.free != 64 {
		t.Fatalf("free = %d after releasing all", f.free)
	}
	// Fragment: only odd frames free -> no run of 2.
	for i := uint64(0); i < 64; i += 2 {
		f.bits()[i/64] &^= 1 << (i % 64)
	}
	if got, ok := f.allocRun(2); ok {
		t.Fatalf("allocRun(2) on fragmented = %d, true", got)
	}
}

// TestFramesRangesMatchModel drives addFree, claim, alloc, release and nextUsedRun (which work a
// bitmap word at a time) with random ranges, including ones that start and end inside words and
// cross the bitmap's end, against a one-bool-per-frame model.
func TestFramesRangesMatchModel(t *testing.T) {
	rng := uint64(0x9e3779b97f4a7c15)
	next := func(n uint64) uint64 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng % n
	}
	for _, n := range []uint64{1, 63, 64, 65, 127, 128, 200, 1000} {
		f := newFrames(n)
		model := make([]bool, n)
		check := func(op string) {
			t.Helper()
			var free uint64
			for i, v := range model {
				if f.isFree(uint64(i)) != v {
					t.Fatalf("n=%d after %s: frame %d free=%v, model %v", n, op, i, !v, v)
				}
				if v {
					free++
					if uint64(i) >= f.cursor {
						t.Fatalf("n=%d after %s: frame %d is free but the cursor is %d", n, op, i, f.cursor)
					}
				}
			}
			if f.free != free {
				t.Fatalf("n=%d after %s: free = %d, model %d", n, op, f.free, free)
			}
			for i := f.n; i < uint64(len(f.bits()))*64; i++ {
				if f.bits()[i/64]&(1<<(i%64)) != 0 {
					t.Fatalf("n=%d after %s: bit %d beyond the last frame is set", n, op, i)
				}
			}
			// the used runs the model sees, from every starting point
			for from := uint64(0); from <= n; from += 1 + next(7) {
				i := from
				for i < n && model[i] {
					i++
				}
				lo, hi, ok := f.nextUsedRun(from)
				if i >= n {
					if ok {
						t.Fatalf("n=%d after %s: nextUsedRun(%d) = [%d, %d), want none", n, op, from, lo, hi)
					}
					continue
				}
				j := i
				for j < n && !model[j] {
					j++
				}
				if !ok || lo != i || hi != j {
					t.Fatalf("n=%d after %s: nextUsedRun(%d) = [%d, %d) %v, want [%d, %d)", n, op, from, lo, hi, ok, i, j)
				}
			}
		}
		check("init")
		for step := 0; step < 300; step++ {
			lo := next(n + 1)
			hi := lo + next(n+8-lo)
			switch next(4) {
			case 0:
				f.addFree(lo, hi)
				for i := lo; i < min(hi, n); i++ {
					model[i] = true
				}
				check("addFree")
			case 1:
				all := hi <= n
				for i := lo; all && i < hi; i++ {
					all = model[i]
				}
				if got := f.claim(lo, hi); got != all {
					t.Fatalf("n=%d: claim(%d, %d) = %v, model says %v", n, lo, hi, got, all)
				}
				if all {
					for i := lo; i < hi; i++ {
						model[i] = false
					}
				}
				check("claim")
			case 2:
				want, wantOK := uint64(0), false
				for i := int(n) - 1; i >= 0; i-- {
					if model[i] {
						want, wantOK = uint64(i), true
						break
					}
				}
				got, ok := f.alloc()
				if ok != wantOK || got != want {
					t.Fatalf("n=%d: alloc() = %d, %v, want %d, %v", n, got, ok, want, wantOK)
				}
				if ok {
					model[got] = false
				}
				check("alloc")
			case 3:
				if lo < n {
					if got := f.release(lo); got == model[lo] {
						t.Fatalf("n=%d: release(%d) = %v with the frame free=%v", n, lo, got, model[lo])
					}
					model[lo] = true
				}
				check("release")
			}
		}
	}
}
