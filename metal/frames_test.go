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
