package metal

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateKexec(t *testing.T) {
	const ram = 256 << 20
	seg := func(mem, memsz, bufsz uint64) kexecSegment {
		return kexecSegment{buf: 0x1000, bufsz: bufsz, mem: mem, memsz: memsz}
	}
	for _, tc := range []struct {
		name         string
		entry, flags uint64
		segs         []kexecSegment
		want         int64
	}{
		{"kernel at 0 and initrd", 0x10000, kexecArchS390, []kexecSegment{seg(0x500000, 0x100000, 0xfff00), seg(0, 0x2000, 0x2000), seg(0x2000, 0x4fe000, 0x4fe000)}, 0},
		{"entry 0, default arch", 0, kexecArchDefault, []kexecSegment{seg(0, 0x1000, 8)}, 0},
		{"entry elsewhere", 0x10008, kexecArchS390, []kexecSegment{seg(0, 0x1000, 8)}, -eINVAL},
		{"on-crash flag", 0x10000, kexecArchS390 | 1, []kexecSegment{seg(0, 0x1000, 8)}, -eINVAL},
		{"other architecture", 0x10000, 3 << 16, []kexecSegment{seg(0, 0x1000, 8)}, -eINVAL},
		{"unaligned mem", 0x10000, kexecArchS390, []kexecSegment{seg(0x800, 0x1000, 8)}, -eINVAL},
		{"unaligned memsz", 0x10000, kexecArchS390, []kexecSegment{seg(0, 0x1800, 8)}, -eINVAL},
		{"bufsz above memsz", 0x10000, kexecArchS390, []kexecSegment{seg(0, 0x1000, 0x1001)}, -eINVAL},
		{"ends beyond RAM", 0x10000, kexecArchS390, []kexecSegment{seg(ram-0x1000, 0x2000, 8)}, -eADDRNOTAVAIL},
		{"wraps around", 0x10000, kexecArchS390, []kexecSegment{seg(1<<63, 1<<63, 8)}, -eADDRNOTAVAIL},
		{"overlap", 0x10000, kexecArchS390, []kexecSegment{seg(0x3000, 0x2000, 8), seg(0x1000, 0x3000, 8)}, -eINVAL},
		{"touching is fine", 0x10000, kexecArchS390, []kexecSegment{seg(0x3000, 0x2000, 8), seg(0x1000, 0x2000, 8)}, 0},
		{"too many", 0x10000, kexecArchS390, make([]kexecSegment, kexecMaxSegments+1), -eINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validateKexec(tc.entry, tc.flags, tc.segs, ram); got != tc.want {
				t.Errorf("validateKexec = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSortSegmentsAndInDestination(t *testing.T) {
	var segs []kexecSegment
	for i := uint64(0); i < 1000; i++ {
		segs = append(segs, kexecSegment{mem: ((i * 7919) % 1000) * 0x3000, memsz: 0x2000})
	}
	if r := validateKexec(0x10000, kexecArchS390, segs, 1<<30); r != 0 {
		t.Fatalf("validateKexec = %d", r)
	}
	for i := range segs {
		if segs[i].mem != uint64(i)*0x3000 {
			t.Fatalf("segs[%d].mem = %#x after sorting", i, segs[i].mem)
		}
	}
	for _, tc := range []struct {
		pa, n uint64
		want  bool
	}{
		{0, 0x1000, true},
		{0x2000, 0x1000, false}, // the gap after segment 0
		{0x2fff, 2, true},
		{0x1000 + 999*0x3000, 0x1000, true},
		{999*0x3000 + 0x2000, 0x10000, false}, // after the last
		{0x2000, 0x1001, true},
	} {
		if got := inDestination(segs, tc.pa, tc.n); got != tc.want {
			t.Errorf("inDestination(%#x, %#x) = %v, want %v", tc.pa, tc.n, got, tc.want)
		}
	}
	if inDestination(nil, 0, 1<<40) {
		t.Error("no segments: something is a destination")
	}
}

// entries decodes a plan page.
func entries(p []byte) [][4]uint64 {
	n := binary.BigEndian.Uint64(p)
	var out [][4]uint64
	for i := uint64(0); i < n; i++ {
		e := p[planHeader+i*planEntry:]
		out = append(out, [4]uint64{binary.BigEndian.Uint64(e), binary.BigEndian.Uint64(e[8:]), binary.BigEndian.Uint64(e[16:]), binary.BigEndian.Uint64(e[24:])})
	}
	return out
}

func TestPlanAppend(t *testing.T) {
	p := make([]byte, pageSize)
	planAppend(p, 0x0, 0x1000, 0x9000, 0x1000)
	planAppend(p, 0x1000, 0x1000, 0xa000, 0x1000) // continues dst and src: merged
	planAppend(p, 0x2000, 0x1000, 0x8000, 0x1000) // src goes down (top-down frames): new entry
	planAppend(p, 0x3000, 0x800, 0x7000, 0x800)   // a short last page
	planAppend(p, 0x3800, 0x800, 0, 0)            // zero tail: not merged into a copy
	planAppend(p, 0x4000, 0x1000, 0, 0)           // continues the zero fill: merged
	want := [][4]uint64{
		{0, 0x2000, 0x9000, 0x2000},
		{0x2000, 0x1000, 0x8000, 0x1000},
		{0x3000, 0x800, 0x7000, 0x800},
		{0x3800, 0x1800, 0, 0},
	}
	got := entries(p)
	if len(got) != len(want) {
		t.Fatalf("plan = %#x, want %#x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %#x, want %#x", i, got[i], want[i])
		}
	}
	full := make([]byte, pageSize)
	for i := uint64(0); i < planPerPage; i++ {
		if !planAppend(full, i*0x2000, 0x1000, 0x100000-i*0x1000, 0x1000) {
			t.Fatalf("page full after %d entries, want %d", i, planPerPage)
		}
	}
	if planAppend(full, 1<<30, 0x1000, 0x1000, 0x1000) {
		t.Error("a full page took another entry")
	}
	if binary.BigEndian.Uint64(full[8:]) != 0 {
		t.Error("planAppend wrote the next-page link")
	}
}

func TestRenderIomem(t *testing.T) {
	const ram = 128 << 20
	f := newFrames(ram / pageSize)
	kend := uint64(LinkBase + 0x1000000)
	f.addFree(lowcoreSize/pageSize, LinkBase/pageSize)
	f.addFree(kend/pageSize, ram/pageSize)
	for i := 0; i < 16; i++ { // page tables and the loader's memory, top-down
		f.alloc()
	}
	if !f.claim(0x600000/pageSize, 0x700000/pageSize) { // a /dev/mem mapping
		t.Fatal("claim of a free range failed")
	}
	l := iomemLayout{ram: ram, codeEnd: LinkBase + 0x89e80, imageStart: LinkBase, imageEnd: kend}
	b := make([]byte, 4096)
	got := string(b[:renderIomem(b, &l, f)])
	want := "00000000-07ffffff : System RAM\n" +
		"  00000000-00001fff : Reserved\n" +
		"  00600000-006fffff : Reserved\n" +
		"  04000000-04089e7f : Kernel code\n" +
		"  04089e80-04ffffff : Kernel data\n" +
		"  07ff0000-07ffffff : Reserved\n"
	if got != want {
		t.Errorf("renderIomem:\n%s\nwant:\n%s", got, want)
	}
	// frames in use right below the image join neither Kernel code nor a wrong range
	f.claim(LinkBase/pageSize-1, LinkBase/pageSize)
	got = string(b[:renderIomem(b, &l, f)])
	if !strings.Contains(got, "  03fff000-03ffffff : Reserved\n  04000000-04089e7f : Kernel code\n") {
		t.Errorf("frame below the image:\n%s", got)
	}
	// a buffer too short for every range ends with one conservative range to the end of RAM
	g := newFrames(ram / pageSize)
	g.addFree(0, ram/pageSize)
	for p := uint64(0); p < ram/pageSize; p += 2 {
		g.claim(p, p+1)
	}
	small := make([]byte, 600)
	out := string(small[:renderIomem(small, &iomemLayout{ram: ram, imageStart: LinkBase, imageEnd: kend}, g)])
	if !strings.HasSuffix(out, "-07ffffff : Reserved\n") || len(out) > len(small) {
		t.Errorf("short buffer:\n%s", out)
	}
}

func TestFramesClaim(t *testing.T) {
	f := newFrames(100)
	f.addFree(10, 100)
	if f.claim(5, 20) {
		t.Error("claim over frames in use succeeded")
	}
	if f.free != 90 {
		t.Errorf("failed claim changed the free count: %d", f.free)
	}
	if !f.claim(20, 30) || f.free != 80 {
		t.Errorf("claim(20, 30): free %d, want 80", f.free)
	}
	if f.claim(25, 26) {
		t.Error("second claim of a claimed frame succeeded")
	}
	if f.claim(95, 101) {
		t.Error("claim beyond the bitmap succeeded")
	}
	lo, hi, ok := f.nextUsedRun(10)
	if !ok || lo != 20 || hi != 30 {
		t.Errorf("nextUsedRun(10) = %d, %d, %v, want 20, 30, true", lo, hi, ok)
	}
	if _, _, ok := f.nextUsedRun(30); ok {
		t.Error("nextUsedRun(30) found a run in free frames")
	}
	for i := uint64(20); i < 30; i++ {
		f.release(i)
	}
	if f.free != 90 {
		t.Errorf("after releasing the claim: free %d, want 90", f.free)
	}
	// allocBelow takes the highest free frame under the limit and keeps the top-down cursor
	p, ok := f.allocBelow(50)
	if !ok || p != 49 {
		t.Errorf("allocBelow(50) = %d, %v, want 49", p, ok)
	}
	if p, _ := f.alloc(); p != 99 {
		t.Errorf("alloc after allocBelow = %d, want 99", p)
	}
	if _, ok := f.allocBelow(10); ok {
		t.Error("allocBelow(10) found a frame in the in-use range")
	}
}

// TestTrampolineMatchesAssembler re-assembles the source in handoff.go's comment.
func TestTrampolineMatchesAssembler(t *testing.T) {
	bin := assembleComment(t, "handoff.go", ".Lpage:", nil)
	if !bytes.Equal(bin, trampolineCode[:]) {
		t.Errorf("assembled %x\ntrampolineCode %x", bin, trampolineCode[:])
	}
	// the stop PSW's address is the named wait code
	if got := binary.BigEndian.Uint64(trampolineCode[len(trampolineCode)-16:]); got != waitKexecReturned {
		t.Errorf("stop PSW address %#x, want waitKexecReturned %#x", got, waitKexecReturned)
	}
}

// assembleComment assembles, with GNU as for s390x, the listing in file's comment: the lines
// starting "//\t" from the one that starts "//\t"+label to the first that does not, without
// "//" remarks, each rewritten by edit when it is not nil. It returns the .text bytes, and
// skips the test without binutils-s390x-linux-gnu.
func assembleComment(t *testing.T, file, label string, edit func(string) string) []byte {
	t.Helper()
	as, err := exec.LookPath("s390x-linux-gnu-as")
	if err != nil {
		t.Skip("s390x-linux-gnu-as not installed (binutils-s390x-linux-gnu)")
	}
	objcopy, err := exec.LookPath("s390x-linux-gnu-objcopy")
	if err != nil {
		t.Skip("s390x-linux-gnu-objcopy not installed")
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "//\t"+label) {
			in = true
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(l, "//\t") {
			break
		}
		l = strings.TrimPrefix(l, "//\t")
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		if edit != nil {
			l = edit(l)
		}
		lines = append(lines, l)
	}
	dir := t.TempDir()
	s := filepath.Join(dir, "t.S")
	os.WriteFile(s, []byte("\t.text\n"+strings.Join(lines, "\n")+"\n"), 0o644)
	if out, err := exec.Command(as, "-o", filepath.Join(dir, "t.o"), s).CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", filepath.Join(dir, "t.o"), filepath.Join(dir, "t.bin")).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "t.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
