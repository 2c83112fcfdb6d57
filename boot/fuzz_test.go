package boot

import (
	"encoding/binary"
	"testing"
)

// FuzzPlan places a fuzzed kernel header and initrd sizes, then writes the plan through Mem
// with fuzzed busy ranges, and checks the invariants: the plan's ranges are disjoint and in RAM,
// only the kernel touches the lowcore, the parmarea patches lie inside the kernel, and the kexec
// segments are page-aligned, disjoint, in RAM, never in place over the lowcore or a busy range,
// and hold exactly what was written.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{0, 8, 0, 0, 0x80, 0, 2, 0}, uint32(0x20000), true, uint16(4096), uint32(3000), uint32(5000), uint16(100), uint32(0x400000), uint32(0x100000))
	f.Add([]byte{0, 8, 0, 0, 0x80, 0, 1, 0}, uint32(0x400), false, uint16(0), uint32(0), uint32(0), uint16(0), uint32(0), uint32(0))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, uint32(0x30000), true, uint16(0), uint32(1), uint32(1), uint16(900), uint32(0x1000), uint32(0x1000))
	const ram = 8 << 20
	backing := make([]byte, ram)
	f.Fuzz(func(t *testing.T, psw []byte, ksize uint32, ep bool, maxCmd uint16, i1, i2 uint32, cmdLen uint16, busyAt, busyLen uint32) {
		ks := uint64(ksize % (4 << 20))
		if ks < 8 || len(psw) < 8 {
			return
		}
		head := image(int(min(ks, HeaderSize)), ep, binary.BigEndian.Uint64(psw), uint64(maxCmd))
		k, err := ParseKernel(head, ks)
		if err != nil {
			return
		}
		if k.Entry != EntryS390EP && k.Entry != EntryIPLPSW {
			t.Fatalf("ParseKernel accepted entry %#x", k.Entry)
		}
		l := Layout{RAM: ram}
		if _, err := l.PlaceKernel(ks); err != nil {
			return
		}
		for _, n := range []uint32{i1 % (3 << 20), i2 % (3 << 20)} {
			if n == 0 {
				continue
			}
			if _, err := l.PlaceInitrd("i", uint64(n)); err != nil {
				break
			}
		}
		cmd := make([]byte, int(cmdLen)%5000)
		for i := range cmd {
			cmd[i] = 'c'
		}
		p, err := NewPlan(k, l, string(cmd), len(cmd) > 0)
		if err != nil {
			return
		}
		ranges := append([]Range{l.Kernel}, l.Initrds...)
		for i, r := range ranges {
			if r.End() > ram {
				t.Fatalf("range %v beyond RAM", r)
			}
			if i > 0 && r.Overlaps(Range{0, LowcoreSize}) {
				t.Fatalf("initrd %v in the lowcore", r)
			}
			for _, o := range ranges[:i] {
				if r.Overlaps(o) {
					t.Fatalf("ranges %v and %v overlap", r, o)
				}
			}
		}
		for _, pt := range p.Patches() {
			if !l.Kernel.Contains(Range{pt.Addr, uint64(len(pt.Data))}) {
				t.Fatalf("patch %s %v outside the kernel %v", pt.What, Range{pt.Addr, uint64(len(pt.Data))}, l.Kernel)
			}
		}
		busy := Range{uint64(busyAt) % ram, uint64(busyLen) % (2 << 20)}
		fm := &fakeMapper{ram: backing, busy: []Range{busy}}
		m := NewMem(fm, ram, nil, ram)
		fill := func(r Range, v byte) {
			b := make([]byte, r.Size)
			for i := range b {
				b[i] = v
			}
			if _, err := m.WriteAt(b, int64(r.Start)); err != nil {
				t.Fatalf("WriteAt %v: %v", r, err)
			}
		}
		for i, r := range ranges {
			fill(r, byte(i+1))
		}
		for _, pt := range p.Patches() {
			m.WriteAt(pt.Data, int64(pt.Addr))
		}
		segs := m.Segments()
		for i, s := range segs {
			if s.Mem.Start%PageSize != 0 || s.Mem.Size%PageSize != 0 || s.Mem.End() > ram || uint64(len(s.Buf)) != s.Mem.Size {
				t.Fatalf("segment %v: not page-aligned, beyond RAM or wrong buffer (%d)", s, len(s.Buf))
			}
			if i > 0 && segs[i-1].Mem.End() > s.Mem.Start {
				t.Fatalf("segments %v and %v overlap", segs[i-1], s)
			}
			if s.InPlace && (s.Mem.Overlaps(Range{0, LowcoreSize}) || s.Mem.Overlaps(busy)) {
				t.Fatalf("segment %v in place over the lowcore or busy %v", s, busy)
			}
			if s.Mem.Overlaps(Range{0, LowcoreSize}) && !pageRange(l.Kernel).Contains(s.Mem.Intersect(Range{0, LowcoreSize})) {
				t.Fatalf("segment %v puts more than the kernel into the lowcore", s)
			}
		}
		for i, r := range ranges {
			got := make([]byte, r.Size)
			if _, err := m.ReadAt(got, int64(r.Start)); err != nil {
				t.Fatal(err)
			}
			for j, c := range got {
				a := r.Start + uint64(j)
				if c != byte(i+1) && !(i == 0 && a >= ParmArea && a < OffCmdline+k.MaxCmdline) {
					t.Fatalf("byte at %#x = %d, want %d", a, c, i+1)
				}
			}
		}
		m.Close()
	})
}
