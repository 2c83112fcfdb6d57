package boot

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// image builds a kernel image of size bytes: S390EP when ep, the 8-byte psw at 0, maxCmd at 0x10430.
func image(size int, ep bool, psw, maxCmd uint64) []byte {
	b := make([]byte, size)
	if size >= 8 {
		binary.BigEndian.PutUint64(b, psw)
	}
	if ep && size >= offS390EP+8 {
		copy(b[offS390EP:], "S390EP\x00\x01")
	}
	if size >= OffMaxCmdline+8 {
		binary.BigEndian.PutUint64(b[OffMaxCmdline:], maxCmd)
	}
	return b
}

const debianPSW = 0x0008000080000200 // the Debian 6.1 s390x vmlinuz's first 8 bytes

func TestParseKernel(t *testing.T) {
	tests := []struct {
		name    string
		img     []byte
		entry   uint64
		maxCmd  uint64
		parm    bool
		wantErr string
	}{
		{"S390EP, max 4096", image(5<<20, true, debianPSW, 4096), EntryS390EP, 4096, true, ""},
		{"S390EP, max 0 is 896", image(0x20000, true, 0, 0), EntryS390EP, 896, true, ""},
		{"IPL PSW only", image(0x20000, false, debianPSW, 0), EntryIPLPSW, 896, true, ""},
		{"IPL PSW, tiny image", image(0x400, false, 0x0008000080000100, 0), EntryIPLPSW, 896, false, ""},
		{"parmarea cut short", image(OffCmdline+100, true, 0, 0), EntryS390EP, 896, false, ""},
		{"zeros", image(0x20000, false, 0, 0), 0, 0, false, `no "S390EP" at 0x10008 and no IPL PSW at 0 (zeros)`},
		{"PSW without short bit", image(0x20000, false, 0x0000000080000200, 0), 0, 0, false, "no valid IPL PSW at 0 (0x0000000080000200)"},
		{"PSW address outside image", image(0x400, false, 0x0008000080001000, 0), 0, 0, false, "no valid IPL PSW"},
		{"PSW address zero", image(0x400, false, 0x0008000080000000, 0), 0, 0, false, "no valid IPL PSW"},
		{"PSW odd address", image(0x400, false, 0x0008000080000101, 0), 0, 0, false, "no valid IPL PSW"},
		{"text file", []byte("hello world\n"), 0, 0, false, "not an s390x kernel"},
		{"too small", []byte("abc"), 0, 0, false, "kernel image of 3 bytes is too small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKernel(tt.img, uint64(len(tt.img)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKernel(%s) = %+v, %v; want error containing %q", tt.name, k, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKernel(%s): %v", tt.name, err)
			}
			if k.Entry != tt.entry || k.MaxCmdline != tt.maxCmd || k.HasParmArea != tt.parm || k.Size != uint64(len(tt.img)) {
				t.Errorf("ParseKernel(%s) = %+v, want entry %#x max %d parmarea %v", tt.name, k, tt.entry, tt.maxCmd, tt.parm)
			}
		})
	}
	if _, err := ParseKernel(make([]byte, 100), 1<<20); err == nil || !strings.Contains(err.Error(), "100 bytes given") {
		t.Errorf("ParseKernel(short head) = %v, want a header-size error", err)
	}
}

func TestLayout(t *testing.T) {
	l := Layout{RAM: 128 << 20}
	if _, err := l.PlaceInitrd("x", 1); err == nil {
		t.Fatal("PlaceInitrd before PlaceKernel succeeded")
	}
	k, err := l.PlaceKernel(5066752)
	if err != nil || k != (Range{0, 5066752}) {
		t.Fatalf("PlaceKernel = %v, %v", k, err)
	}
	if got := l.NextInitrd(); got != 0x4d5000 {
		t.Errorf("NextInitrd = %#x, want 0x4d5000", got)
	}
	a, _ := l.PlaceInitrd("a", 1049423)
	b, _ := l.PlaceInitrd("b", 4096)
	c, _ := l.PlaceInitrd("c", 10)
	want := []Range{{0x4d5000, 1049423}, {0x5d6000, 4096}, {0x5d7000, 10}}
	if a != want[0] || b != want[1] || c != want[2] {
		t.Errorf("PlaceInitrd = %v %v %v, want %v", a, b, c, want)
	}
	if got := l.Initrd(); got != (Range{0x4d5000, 0x5d700a - 0x4d5000}) {
		t.Errorf("Initrd() = %v", got)
	}
	if _, err := l.PlaceInitrd("big", l.Room()+1); err == nil || !strings.Contains(err.Error(), `initrd "big"`) {
		t.Errorf("PlaceInitrd(too big) = %v", err)
	}
	if _, err := l.PlaceInitrd("fits", l.Room()); err != nil {
		t.Errorf("PlaceInitrd(exactly Room) = %v", err)
	}
	d := Layout{RAM: 64 << 20}
	d.PlaceKernel(0x20000)
	if err := d.DeclareInitrdSize(5); err == nil {
		t.Errorf("DeclareInitrdSize without an initrd succeeded")
	}
	d.PlaceInitrd("a", 1000)
	if err := d.DeclareInitrdSize(1001); err == nil || !strings.Contains(err.Error(), "larger than the 1000 bytes loaded") {
		t.Errorf("DeclareInitrdSize(1001) = %v", err)
	}
	if err := d.DeclareInitrdSize(600); err != nil || d.Initrd() != (Range{0x20000, 600}) {
		t.Errorf("DeclareInitrdSize(600) = %v, Initrd %v", err, d.Initrd())
	}
	if _, err := (&Layout{RAM: 1 << 20}).PlaceKernel(2 << 20); err == nil || !strings.Contains(err.Error(), "does not fit in 1.0 MiB of RAM") {
		t.Errorf("PlaceKernel(too big) = %v", err)
	}
	// A kernel smaller than the lowcore: initrds still start after it.
	small := Layout{RAM: 1 << 20}
	small.PlaceKernel(100)
	if got := small.NextInitrd(); got != LowcoreSize {
		t.Errorf("NextInitrd after a 100-byte kernel = %#x, want %#x", got, LowcoreSize)
	}
}

// plan builds a layout and a plan for a kernel image and initrd sizes.
func plan(img []byte, ram uint64, initrds []uint64, cmdline string, has bool) (*Plan, error) {
	k, err := ParseKernel(img, uint64(len(img)))
	if err != nil {
		return nil, err
	}
	l := Layout{RAM: ram}
	if _, err := l.PlaceKernel(k.Size); err != nil {
		return nil, err
	}
	for i, n := range initrds {
		if _, err := l.PlaceInitrd(fmt.Sprint(i), n); err != nil {
			return nil, err
		}
	}
	return NewPlan(k, l, cmdline, has)
}

func TestPlan(t *testing.T) {
	long := strings.Repeat("x", 895)
	tests := []struct {
		name    string
		img     []byte
		initrds []uint64
		cmdline string
		has     bool
		wantErr string
	}{
		{"kernel + initrd + cmdline", image(0x20000, true, 0, 4096), []uint64{1000}, "console=ttysclp0", true, ""},
		{"bare kernel", image(0x20000, true, 0, 0), nil, "", false, ""},
		{"895 bytes on a legacy kernel", image(0x20000, true, 0, 0), nil, long, true, ""},
		{"896 bytes on a legacy kernel", image(0x20000, true, 0, 0), nil, long + "y", true, "command line of 896 bytes is longer than the kernel accepts (896 bytes with the NUL"},
		{"3000 bytes on a 4096 kernel", image(0x20000, true, 0, 4096), nil, strings.Repeat("z", 3000), true, ""},
		{"NUL in cmdline", image(0x20000, true, 0, 0), nil, "a\x00b", true, "NUL"},
		{"initrd into a tiny IPL image", image(0x400, false, 0x0008000080000100, 0), []uint64{10}, "", false, "does not contain the parmarea"},
		{"tiny IPL image alone", image(0x400, false, 0x0008000080000100, 0), nil, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := plan(tt.img, 64<<20, tt.initrds, tt.cmdline, tt.has)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewPlan(%s) = %v; want error containing %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPlan(%s): %v", tt.name, err)
			}
		})
	}
}

func TestPatches(t *testing.T) {
	p, err := plan(image(0x20000, true, 0, 4096), 64<<20, []uint64{1000, 5000}, "console=ttysclp0 quiet", true)
	if err != nil {
		t.Fatal(err)
	}
	ps := p.Patches()
	if len(ps) != 3 {
		t.Fatalf("Patches() = %d patches, want 3", len(ps))
	}
	if ps[0].Addr != 0x10408 || binary.BigEndian.Uint64(ps[0].Data) != 0x20000 {
		t.Errorf("INITRD_START patch = %#x %x", ps[0].Addr, ps[0].Data)
	}
	if ps[1].Addr != 0x10410 || binary.BigEndian.Uint64(ps[1].Data) != 0x21000+5000-0x20000 {
		t.Errorf("INITRD_SIZE patch = %#x %x", ps[1].Addr, ps[1].Data)
	}
	if ps[2].Addr != 0x10480 || len(ps[2].Data) != 4096 || string(ps[2].Data[:23]) != "console=ttysclp0 quiet\x00" {
		t.Errorf("COMMAND_LINE patch = %#x %q…", ps[2].Addr, ps[2].Data[:30])
	}
	bare, _ := plan(image(0x20000, true, 0, 0), 64<<20, nil, "", false)
	if got := bare.Patches(); len(got) != 0 {
		t.Errorf("bare kernel Patches() = %v, want none", got)
	}
	lines := strings.Join(p.Lines(), "\n")
	for _, want := range []string{"kernel [0x0, 0x20000) (131072 bytes), entry 0x10000: \"S390EP\" at 0x10008",
		"initrd 2 [0x21000, 0x22388)", "INITRD_START 0x20000 INITRD_SIZE 0x2388", "command line (23 of 4096 bytes): console=ttysclp0 quiet"} {
		if !strings.Contains(lines, want) {
			t.Errorf("Lines() lacks %q:\n%s", want, lines)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	m, err := ParseMeminfo([]byte("MemTotal:         131072 kB\nMemFree:          125000 kB\nMemAvailable: 1 kB\n"))
	if err != nil || m.Total != 128<<20 || m.Free != 125000<<10 {
		t.Errorf("ParseMeminfo = %+v, %v", m, err)
	}
	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: x kB\n", "MemTotal: 5 MB\n"} {
		if _, err := ParseMeminfo([]byte(bad)); err == nil {
			t.Errorf("ParseMeminfo(%q) succeeded", bad)
		}
	}
}

func TestParseIOMem(t *testing.T) {
	in := "00000000-07ffffff : System RAM\n  04000000-040fffff : Kernel code\n  04100000-0427ffff : Kernel data\n  07f00000-07ffffff : Reserved\n"
	m, err := ParseIOMem([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.RAMEnd() != 128<<20 || len(m.Used) != 3 || m.Used[1].Name != "Kernel data" || m.Used[1].Range != (Range{0x4100000, 0x180000}) {
		t.Errorf("ParseIOMem = %+v", m)
	}
	for _, bad := range []string{"0-1 System RAM\n", "zz-1 : x\n", "5-4 : x\n"} {
		if _, err := ParseIOMem([]byte(bad)); err == nil {
			t.Errorf("ParseIOMem(%q) succeeded", bad)
		}
	}
}

func TestRange(t *testing.T) {
	r := Range{0x10000, 0x290000}
	if r.String() != "[0x10000, 0x2a0000)" || !r.Overlaps(Range{0x29ffff, 1}) || r.Overlaps(Range{0x2a0000, 5}) ||
		r.Overlaps(Range{0x10000, 0}) || !r.Contains(Range{0x10000, 0x290000}) || r.Contains(Range{0xffff, 2}) {
		t.Errorf("Range methods wrong for %v", r)
	}
	if got := r.Intersect(Range{0, 0x20000}); got != (Range{0x10000, 0x10000}) {
		t.Errorf("Intersect = %v", got)
	}
}

func TestKexecSegmentLayout(t *testing.T) {
	var s kexecSegment
	if unsafe.Sizeof(s) != 32 || unsafe.Offsetof(s.bufsz) != 8 || unsafe.Offsetof(s.mem) != 16 || unsafe.Offsetof(s.memsz) != 24 {
		t.Errorf("kexec_segment layout: size %d, offsets %d %d %d; want 32, 8 16 24",
			unsafe.Sizeof(s), unsafe.Offsetof(s.bufsz), unsafe.Offsetof(s.mem), unsafe.Offsetof(s.memsz))
	}
}

// fakeMapper maps from a byte slice standing in for RAM and refuses busy ranges with ErrBusy.
type fakeMapper struct {
	ram    []byte
	busy   []Range
	maps   int
	unmaps int
}

func (f *fakeMapper) Map(r Range) ([]byte, error) {
	for _, b := range f.busy {
		if b.Overlaps(r) {
			return nil, fmt.Errorf("fake mmap %s: %w", r, ErrBusy)
		}
	}
	f.maps++
	return f.ram[r.Start:r.End():r.End()], nil
}

func (f *fakeMapper) Unmap([]byte) error { f.unmaps++; return nil }

func TestMem(t *testing.T) {
	ram := make([]byte, 8<<20)
	fm := &fakeMapper{ram: ram, busy: []Range{{5 << 20, 1 << 20}}}
	metal := Range{3<<20 + 0x3000, 0x2000} // "Kernel code", not page-chunk aligned
	m := NewMem(fm, uint64(len(ram)), []Range{metal}, 4<<20)
	data := make([]byte, 7<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	if _, err := m.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(data))
	if _, err := m.ReadAt(back, 0); err != nil || string(back) != string(data) {
		t.Fatalf("ReadAt after WriteAt: %v, equal %v", err, string(back) == string(data))
	}
	segs := m.Segments()
	var total uint64
	for i, s := range segs {
		total += s.Mem.Size
		if s.Mem.Start%PageSize != 0 || s.Mem.Size%PageSize != 0 || uint64(len(s.Buf)) != s.Mem.Size {
			t.Errorf("segment %v not page-aligned or buffer %d bytes", s, len(s.Buf))
		}
		if i > 0 && segs[i-1].Mem.End() > s.Mem.Start {
			t.Errorf("segments %v and %v overlap or are out of order", segs[i-1], s)
		}
		if s.InPlace && (s.Mem.Overlaps(Range{0, LowcoreSize}) || s.Mem.Overlaps(metal) || s.Mem.Overlaps(fm.busy[0])) {
			t.Errorf("segment %v in place over a reserved range", s)
		}
		if s.InPlace && &s.Buf[0] != &ram[s.Mem.Start] {
			t.Errorf("in-place segment %v is not the mapping of its destination", s)
		}
		if !s.InPlace && string(s.Buf) != string(data[s.Mem.Start:s.Mem.End()]) {
			t.Errorf("buffered segment %v holds other bytes", s)
		}
	}
	if total != 7<<20 {
		t.Errorf("segments cover %d bytes, want %d", total, 7<<20)
	}
	st := m.Stats()
	if st.Fallbacks != 1 || st.Buffered != LowcoreSize+0x2000+1<<20 || st.Mapped != 8<<20-st.Buffered {
		t.Errorf("Stats = %+v", st)
	}
	// The mapped parts are really in "RAM".
	if string(ram[1<<20:2<<20]) != string(data[1<<20:2<<20]) || ram[0] != 0 {
		t.Errorf("mapped bytes not in RAM, or the lowcore written in place")
	}
	if _, err := m.WriteAt([]byte{1}, int64(len(ram))); err == nil || !strings.Contains(err.Error(), "beyond the end of RAM") {
		t.Errorf("WriteAt past RAM = %v", err)
	}
	if _, err := NewMem(nil, 64<<20, nil, 1<<20).ReadAt(make([]byte, 1), 7<<20+5); err == nil {
		t.Errorf("ReadAt of an untouched chunk succeeded")
	}
	if err := m.Close(); err != nil || fm.unmaps != fm.maps {
		t.Errorf("Close = %v, %d unmaps for %d maps", err, fm.unmaps, fm.maps)
	}
}

func TestMemBudget(t *testing.T) {
	m := NewMem(nil, 16<<20, nil, 2<<20) // nothing mapped: everything is buffered
	if _, err := m.WriteAt(make([]byte, 2<<20), 0); err != nil {
		t.Fatalf("2 MiB within a 2 MiB budget: %v", err)
	}
	if _, err := m.WriteAt([]byte{1}, 2<<20); err == nil || !strings.Contains(err.Error(), "loader memory") {
		t.Errorf("write past the budget = %v", err)
	}
	if got := NewMem(nil, 64<<20, []Range{{4 << 20, 3 << 20}}, 0).BufferEstimate(Range{3 << 20, 10 << 20}); got != 3<<20 {
		t.Errorf("BufferEstimate = %d, want %d", got, 3<<20)
	}
}

func TestMemPartialWrite(t *testing.T) {
	// Only the written pages become segments; a chunk's unwritten parts are not copied.
	m := NewMem(nil, 8<<20, nil, 8<<20)
	m.WriteAt([]byte("kernel"), 0)
	m.WriteAt([]byte("initrd"), 0x5000+10)
	segs := m.Segments()
	if len(segs) != 2 || segs[0].Mem != (Range{0, 0x1000}) || segs[1].Mem != (Range{0x5000, 0x1000}) {
		t.Errorf("Segments = %v, want [0x0, 0x1000) and [0x5000, 0x6000)", segs)
	}
	if err := m.Zero(Range{0x6000, 0x3000}); err != nil {
		t.Fatal(err)
	}
	if segs = m.Segments(); len(segs) != 2 || segs[1].Mem != (Range{0x5000, 0x4000}) {
		t.Errorf("after Zero: %v", segs)
	}
}

func TestDevMemFile(t *testing.T) {
	// A regular file stands in for RAM: what Mem maps lands in the file at the physical offset.
	path := filepath.Join(t.TempDir(), "ram")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 4<<20); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDevMem(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := NewMem(d, 4<<20, nil, 1<<20)
	m.WriteAt([]byte("LOWCORE"), 0)
	m.WriteAt([]byte("INITRD"), 3<<20+5)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got[3<<20+5:3<<20+11]) != "INITRD" {
		t.Errorf("file at 3 MiB+5 = %q, want INITRD", got[3<<20+5:3<<20+11])
	}
	if got[0] != 0 {
		t.Errorf("the lowcore went to the file; it must stay buffered")
	}
	if _, err := OpenDevMem(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Errorf("OpenDevMem(missing) succeeded")
	}
}

func TestMemWritableAt(t *testing.T) {
	ram := make([]byte, 8<<20)
	metal := Range{3<<20 + 0x3000, 0x2000} // buffered: never mapped
	m := NewMem(&fakeMapper{ram: ram}, uint64(len(ram)), []Range{metal}, 0x2000)

	// Mapped memory is lent up to the end of its piece, capacity cut to the length.
	off := int64(3<<20 + 0x1000)
	lent := m.WritableAt(off, 1<<20)
	if len(lent) != 0x2000 || cap(lent) != len(lent) || &lent[0] != &ram[off] {
		t.Fatalf("WritableAt(%#x, 1 MiB) = %d bytes (cap %d), want the 0x2000 mapped bytes up to metal's range", off, len(lent), cap(lent))
	}
	copy(lent, "in place")
	if segs := m.Segments(); len(segs) != 0 {
		t.Errorf("uncommitted lent bytes became segments: %v", segs)
	}
	if _, err := m.WriteAt(lent[:100], off); err != nil {
		t.Fatal(err)
	}
	if segs := m.Segments(); len(segs) != 1 || segs[0].Mem != (Range{uint64(off), PageSize}) || !segs[0].InPlace || string(ram[off:off+8]) != "in place" {
		t.Errorf("after commit: segments %v, RAM %q", segs, ram[off:off+8])
	}

	// Buffered memory (metal's range) is lent too, within the budget, and committed the same way.
	buf := m.WritableAt(int64(metal.Start), 1<<20)
	if len(buf) != int(metal.Size) || cap(buf) != len(buf) {
		t.Fatalf("WritableAt(metal's range) = %d bytes (cap %d), want %d", len(buf), cap(buf), metal.Size)
	}
	copy(buf, "buffered")
	if _, err := m.WriteAt(buf[:8], int64(metal.Start)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 8)
	if _, err := m.ReadAt(back, int64(metal.Start)); err != nil || string(back) != "buffered" || ram[metal.Start] != 0 {
		t.Errorf("buffered commit: ReadAt %q, %v; RAM under metal's range %#x", back, err, ram[metal.Start])
	}

	// A commit that overlaps its source without aliasing it still moves the bytes.
	copy(lent, "abcdefgh")
	if _, err := m.WriteAt(lent[1:5], off); err != nil || string(ram[off:off+8]) != "bcdeefgh" {
		t.Errorf("overlapping WriteAt: RAM %q, %v", ram[off:off+8], err)
	}

	// Nothing is lent beyond RAM, for a bad request, or past the budget (the lowcore needs a buffer).
	for _, tc := range []struct {
		off int64
		n   int
	}{{int64(len(ram)), 1}, {-1, 1}, {off, 0}, {off, -5}, {0, 1}} {
		if b := m.WritableAt(tc.off, tc.n); b != nil {
			t.Errorf("WritableAt(%#x, %d) = %d bytes, want nil", tc.off, tc.n, len(b))
		}
	}
	// The last byte of RAM can be lent, only it.
	if b := m.WritableAt(int64(len(ram))-1, 10); len(b) != 1 || &b[0] != &ram[len(ram)-1] {
		t.Errorf("WritableAt(last byte, 10) = %d bytes", len(b))
	}
}
