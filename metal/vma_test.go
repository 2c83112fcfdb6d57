package metal

import (
	"fmt"
	"testing"
)

func (t *vmaTable) String() string {
	s := ""
	for i := 0; i < t.n; i++ {
		v := t.v[i]
		s += fmt.Sprintf("[%#x,%#x)p%d", v.start, v.end, v.prot)
		if v.kind == vmaImage {
			s += fmt.Sprintf("@%#x", v.phys)
		}
		s += " "
	}
	return s
}

func TestVMAInsertSplitMerge(t *testing.T) {
	var tb vmaTable
	tb.insert(vma{start: 0x10000, end: 0x20000, prot: 0})
	tb.insert(vma{start: 0x14000, end: 0x16000, prot: 3})
	if got, want := tb.String(), "[0x10000,0x14000)p0 [0x14000,0x16000)p3 [0x16000,0x20000)p0 "; got != want {
		t.Fatalf("after split: %s, want %s", got, want)
	}
	tb.insert(vma{start: 0x16000, end: 0x20000, prot: 3})
	if got, want := tb.String(), "[0x10000,0x14000)p0 [0x14000,0x20000)p3 "; got != want {
		t.Fatalf("after merge: %s, want %s", got, want)
	}
	tb.remove(0x12000, 0x15000)
	if got, want := tb.String(), "[0x10000,0x12000)p0 [0x15000,0x20000)p3 "; got != want {
		t.Fatalf("after remove: %s, want %s", got, want)
	}
	if tb.find(0x12000) != -1 || tb.find(0x15000) != 1 || tb.find(0x11fff) != 0 || tb.find(0x20000) != -1 {
		t.Fatalf("find wrong on %s", tb.String())
	}
	if tb.isFree(0x11000, 0x13000) || !tb.isFree(0x12000, 0x15000) {
		t.Fatalf("isFree wrong on %s", tb.String())
	}
}

func TestVMAImagePhys(t *testing.T) {
	var tb vmaTable
	tb.insert(vma{start: 0x10000, end: 0x30000, prot: 5, kind: vmaImage, phys: 0x4010000})
	tb.remove(0x18000, 0x19000)
	if got, want := tb.String(), "[0x10000,0x18000)p5@0x4010000 [0x19000,0x30000)p5@0x4019000 "; got != want {
		t.Fatalf("image split: %s, want %s", got, want)
	}
	tb.insert(vma{start: 0x18000, end: 0x19000, prot: 5, kind: vmaImage, phys: 0x4018000})
	if got, want := tb.String(), "[0x10000,0x30000)p5@0x4010000 "; got != want {
		t.Fatalf("image merge: %s, want %s", got, want)
	}
}

func TestVMAProtect(t *testing.T) {
	var tb vmaTable
	tb.insert(vma{start: 0x10000, end: 0x20000, prot: 3})
	if tb.protect(0x1f000, 0x21000, 0) {
		t.Fatal("protect over a hole succeeded")
	}
	if !tb.protect(0x11000, 0x12000, 0) {
		t.Fatal("protect failed")
	}
	if got, want := tb.String(), "[0x10000,0x11000)p3 [0x11000,0x12000)p0 [0x12000,0x20000)p3 "; got != want {
		t.Fatalf("protect: %s, want %s", got, want)
	}
	tb.protect(0x11000, 0x12000, 3)
	if got, want := tb.String(), "[0x10000,0x20000)p3 "; got != want {
		t.Fatalf("unprotect: %s, want %s", got, want)
	}
}

func TestVMAGapBelow(t *testing.T) {
	var tb vmaTable
	tb.insert(vma{start: 0x7000, end: 0x8000, prot: 3})
	tb.insert(vma{start: 0x9000, end: 0xa000, prot: 3})
	tests := []struct {
		n, floor, limit, want uint64
		ok                    bool
	}{
		{0x1000, 0x1000, 0xa000, 0x8000, true},
		{0x2000, 0x1000, 0xa000, 0x5000, true},
		{0x1000, 0x1000, 0xc000, 0xb000, true},
		{0x6000, 0x1000, 0x9000, 0x1000, true},
		{0x7000, 0x1000, 0x9000, 0, false},
		{0x1000, 0x1000, 0x7800, 0x6000, true},
	}
	for _, tt := range tests {
		got, ok := tb.gapBelow(tt.n, tt.floor, tt.limit)
		if got != tt.want || ok != tt.ok {
			t.Errorf("gapBelow(%#x, %#x, %#x) = %#x, %v, want %#x, %v", tt.n, tt.floor, tt.limit, got, ok, tt.want, tt.ok)
		}
	}
}

func TestVMAFull(t *testing.T) {
	var tb vmaTable
	for i := 0; i < maxVMAs; i++ {
		if !tb.insert(vma{start: uint64(i) * 0x2000, end: uint64(i)*0x2000 + 0x1000, prot: 3}) {
			t.Fatalf("insert %d failed", i)
		}
	}
	if tb.insert(vma{start: 0x10000000, end: 0x10001000, prot: 3}) {
		t.Fatal("insert into a full table succeeded")
	}
}
