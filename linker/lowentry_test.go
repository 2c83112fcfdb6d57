package linker

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"netipl/metal"
)

// tooLittleLine is the too-little-RAM line as tests/metal expects it from kmain.
var tooLittleLine = regexp.MustCompile(`^metal: (\d+) MiB of RAM is too little: netipl needs at least (\d+) MiB$`)

// lowSegment returns the image's first PT_LOAD, which must be the low-memory entry.
func lowSegment(t *testing.T, img []byte) (*elf.File, *elf.Prog, []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("image is not an ELF: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			return f, p, b
		}
	}
	t.Fatal("image has no PT_LOAD")
	return nil, nil, nil
}

// render fills a lowentry message template the way the stub does.
func render(tmpl string, ramMiB, needMiB uint64) string {
	s := strings.ReplaceAll(tmpl, "\x01", fmt.Sprint(ramMiB))
	return strings.ReplaceAll(s, "\x02", fmt.Sprint(needMiB))
}

func TestAssembleLowEntry(t *testing.T) {
	mb, lb := realELFs(t)
	img, err := Assemble(mb, lb, ArgvEnv("loader", nil, nil))
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	f, low, seg := lowSegment(t, img)
	mf, _ := elf.NewFile(bytes.NewReader(mb))
	if f.Entry != metal.LowEntryBase || low.Paddr != metal.LowEntryBase || low.Vaddr != low.Paddr ||
		low.Memsz != metal.LowEntrySize || low.Flags != elf.PF_R|elf.PF_X || low.Filesz > metal.LowEntrySize/2 {
		t.Errorf("entry %#x, low segment paddr %#x vaddr %#x filesz %#x memsz %#x flags %v; want entry = paddr = vaddr = %#x, filesz ≤ one page, memsz %#x, R+X",
			f.Entry, low.Paddr, low.Vaddr, low.Filesz, low.Memsz, low.Flags, metal.LowEntryBase, metal.LowEntrySize)
	}
	// the raw-copy fallback of netboot_fw mode: stub bytes at file offset 0x10000, and a
	// program-new PSW pointing there in the file bytes that become the lowcore
	if low.Off != rawEntryOffset || !bytes.Equal(img[rawEntryOffset:rawEntryOffset+len(seg)], seg) {
		t.Errorf("low segment at file offset %#x, want %#x", low.Off, rawEntryOffset)
	}
	be := binary.BigEndian
	if m, a := be.Uint64(img[0x1d0:]), be.Uint64(img[0x1d8:]); m != 0x0000000180000000 || a != rawEntryOffset {
		t.Errorf("program-new PSW in the file's lowcore bytes = %#x %#x, want 0x180000000 %#x", m, a, rawEntryOffset)
	}

	// the code is metal's lowentry, the parameter block filled in
	var code []byte
	syms, _ := mf.Symbols()
	for _, s := range syms {
		if s.Name == LowEntrySymbol {
			off, _ := fileOffset(mf, s.Value)
			code = mb[off : off+s.Size]
		}
	}
	p := metal.LowEntryParamOff
	blockEnd := p + metal.LowEntryParamLen
	if len(code) == 0 || !bytes.Equal(seg[:p+8], code[:p+8]) || !bytes.Equal(seg[blockEnd:len(code)], code[blockEnd:]) {
		t.Fatalf("low segment does not start with %s's code (%d bytes)", LowEntrySymbol, len(code))
	}
	var imageEnd uint64
	for _, q := range f.Progs {
		if q.Type == elf.PT_LOAD {
			imageEnd = max(imageEnd, q.Paddr+q.Memsz)
		}
	}
	blk := seg[p:]
	wantNeed := alignUp(imageEnd, 4096) + metal.MinFreeRAM
	wantMiB := (wantNeed + (1 << 20) - 1) >> 20
	if k := be.Uint64(blk[metal.LowEntryKentry:]); k != mf.Entry {
		t.Errorf("kentry in the block = %#x, want metal's entry %#x", k, mf.Entry)
	}
	if n, m := be.Uint64(blk[metal.LowEntryNeed:]), be.Uint64(blk[metal.LowEntryNeedMiB:]); n != wantNeed || m != wantMiB {
		t.Errorf("need = %#x (%d MiB), want %#x (%d MiB): page-aligned image end %#x + metal.MinFreeRAM", n, m, wantNeed, wantMiB, imageEnd)
	}
	for _, tc := range []struct {
		field int
		want  string
	}{{metal.LowEntryMsg, metal.LowEntryTooLittle}, {metal.LowEntryFaultMsg, metal.LowEntryFault}} {
		off := int(be.Uint32(blk[tc.field:]))
		if off < len(code) || off+len(tc.want) >= len(seg) || string(seg[off:off+len(tc.want)+1]) != tc.want+"\x00" {
			t.Errorf("template at offset %d is not %q + NUL", off, tc.want)
		}
	}
	// the stub's line is kmain's line (tests/metal matches both with one pattern)
	if line := render(metal.LowEntryTooLittle, 16, wantMiB); !tooLittleLine.MatchString(strings.TrimSuffix(line, "\n")) || !strings.HasSuffix(line, "\n") {
		t.Errorf("rendered template %q does not match %v", line, tooLittleLine)
	}
	src, err := os.ReadFile("../metal/kmain_s390x.go")
	if err != nil {
		t.Fatal(err)
	}
	mid := strings.Split(metal.LowEntryTooLittle, "\x01")[1]
	mid = strings.Split(mid, "\x02")[0]
	if !bytes.Contains(src, []byte(fmt.Sprintf("kprint(%q)", mid))) {
		t.Errorf("metal/kmain_s390x.go no longer prints %q: the stub's and kmain's lines differ", mid)
	}

	// metal's sections moved with its segments: symbols and code still read back
	text, mtext := f.Section(".text"), mf.Section(".text")
	if text == nil || mtext == nil || text.Addr != mtext.Addr || text.Offset != mtext.Offset+metalShift {
		t.Fatalf(".text section not shifted by %#x", metalShift)
	}
	a, _ := text.Data()
	b, _ := mtext.Data()
	if k := mf.Entry - mtext.Addr; !bytes.Equal(a[k:k+64], b[k:k+64]) {
		t.Error("kentry's bytes read through the image's .text differ from metal's")
	}
}

// TestLowEntryPositionIndependent checks that lowentry, which runs at an address other than
// its link address, references no symbol (a LARL or literal-pool load would).
func TestLowEntryPositionIndependent(t *testing.T) {
	mb, _ := realELFs(t)
	bin := filepath.Join(t.TempDir(), "metal")
	if err := os.WriteFile(bin, mb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "objdump", "-s", `^netipl/metal\.lowentry`, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool objdump: %v\n%s", err, out)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "  ") {
			continue
		}
		n++
		if strings.Contains(l, "(SB)") {
			t.Errorf("lowentry references a symbol: %s", strings.TrimSpace(l))
		}
	}
	if n < 50 {
		t.Fatalf("objdump listed %d lowentry instructions; the check did not run:\n%s", n, out)
	}
}

func TestLowEntryRejects(t *testing.T) {
	mb, lb := realELFs(t)
	args := ArgvEnv("loader", nil, nil)
	noMagic := bytes.ReplaceAll(mb, []byte(metal.LowEntryMagic), []byte("XXXXXXXX"))
	renamed := bytes.ReplaceAll(mb, []byte("metal.lowentry.abi0"), []byte("metal.lowentrx.abi0"))
	for _, tc := range []struct {
		name  string
		metal []byte
		want  string
	}{
		{"no parameter block", noMagic, "parameter block"},
		{"no lowentry", renamed, "no " + LowEntrySymbol},
	} {
		if _, err := Assemble(tc.metal, lb, args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Assemble = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestLowEntryQEMU boots a hello image in 16 MiB, where RAM ends far below metal: the stub must
// print the too-little-RAM line and stop (QEMU rc 1) in both launch modes; with its SCLP Read
// SCP Info commands made invalid it must probe, take the program check and print its fault line.
func TestLowEntryQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no qemu-system-s390x runs")
	}
	if _, err := exec.LookPath("qemu-system-s390x"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("qemu-system-s390x not installed (required under CI=true)")
		}
		t.Skip("qemu-system-s390x not installed")
	}
	mb, _ := realELFs(t)
	dir := t.TempDir()
	lb := buildS390x(t, filepath.Join(dir, "hello"), "./tests/metal/hello")
	img, err := Assemble(mb, lb, ArgvEnv("hello", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, _, seg := lowSegment(t, img)
	needMiB := binary.BigEndian.Uint64(seg[metal.LowEntryParamOff+metal.LowEntryNeedMiB:])
	good := filepath.Join(dir, "hello.img")
	if err := os.WriteFile(good, img, 0o644); err != nil {
		t.Fatal(err)
	}
	// SCLP commands as the stub loads them (MOVW $cmd, R6 / R1: LGFI) → an invalid command
	noSCLP := append([]byte{}, img...)
	for _, op := range [][]byte{{0xc0, 0x61, 0x00, 0x12, 0x00, 0x01}, {0xc0, 0x11, 0x00, 0x02, 0x00, 0x01}} {
		i := bytes.Index(noSCLP[rawEntryOffset:rawEntryOffset+len(seg)], op)
		if i < 0 {
			t.Fatalf("Read SCP Info load %x not found in the stub", op)
		}
		noSCLP[rawEntryOffset+i+3] = 0xff
	}
	bad := filepath.Join(dir, "nosclp.img")
	if err := os.WriteFile(bad, noSCLP, 0o644); err != nil {
		t.Fatal(err)
	}
	nic := []string{"-netdev", "user,id=n0", "-device", "virtio-net-ccw,netdev=n0,bootindex=1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"kernel", []string{"-kernel", good}, render(metal.LowEntryTooLittle, 16, needMiB)},
		{"netboot_fw", append([]string{"-global", "s390-ipl.netboot_fw=" + good}, nic...), render(metal.LowEntryTooLittle, 16, needMiB)},
		{"no-sclp-info", []string{"-kernel", bad}, render(metal.LowEntryFault, 0, needMiB)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := append([]string{"-M", "s390-ccw-virtio", "-nographic", "-no-reboot", "-action", "panic=exit-failure", "-m", "16"}, tc.args...)
			cmd := exec.CommandContext(ctx, "qemu-system-s390x", args...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("qemu did not stop within 60 s:\n%s", out)
			}
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(out), "\r\n", "\n")
			if !strings.Contains(text, tc.want) || code != 1 {
				t.Errorf("qemu %v: rc %d, want 1 and the line %q:\n%s", tc.args, code, strings.TrimSpace(tc.want), out)
			}
		})
	}
}
