package linker

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"netipl/metal"
)

func TestCheckMap(t *testing.T) {
	text := Segment{Addr: 0x4000000, FileSize: 0x80000, MemSize: 0x80000, Flags: elf.PF_R | elf.PF_X}
	data := Segment{Addr: 0x4080000, FileSize: 0x1000, MemSize: 0x20000, Flags: elf.PF_R | elf.PF_W}
	low := Segment{Addr: metal.LowEntryBase, FileSize: 0x400, MemSize: metal.LowEntrySize, Flags: elf.PF_R | elf.PF_X}
	tests := []struct {
		name    string
		entry   uint64
		segs    []Segment
		wantErr string
	}{
		{"ok", metal.LowEntryBase, []Segment{low, text, data}, ""},
		{"linux entry 0x10000", 0x10000, []Segment{{Addr: 0x10000, FileSize: 0x1000, MemSize: 0x1000, Flags: elf.PF_X}}, "as a Linux kernel"},
		{"linux entry 0x800", 0x800, []Segment{text}, "as a Linux kernel"},
		{"lowcore", metal.LowEntryBase, []Segment{low, text, {Addr: 0x1000, FileSize: 0x1000, MemSize: 0x1000}}, "overlaps the lowcore"},
		{"low entry in the lowcore", 0x1800, []Segment{{Addr: 0x1000, FileSize: 0x1000, MemSize: 0x1000, Flags: elf.PF_X}, text}, "overlaps the lowcore"},
		{"too big for 128 MiB", metal.LowEntryBase, []Segment{low, text, {Addr: 0x4100000, FileSize: 80 << 20, MemSize: 80 << 20}}, "too big"},
		{"overlap", metal.LowEntryBase, []Segment{low, text, {Addr: 0x4070000, FileSize: 0x20000, MemSize: 0x20000}}, "overlap"},
		{"low entry reaching into metal", 0x3ff8000, []Segment{{Addr: 0x3ff8000, FileSize: 0x400, MemSize: 0x10000, Flags: elf.PF_X}, text}, "ends above metal.LinkBase"},
		{"entry outside text", 0x4090000, []Segment{low, text, data}, "not in an executable segment"},
		{"entry in the low segment's zero fill", metal.LowEntryBase + 0x1000, []Segment{low, text}, "not in an executable segment"},
		{"entry in metal, not below it", 0x4001000, []Segment{low, text, data}, "ends above metal.LinkBase"},
	}
	for _, tt := range tests {
		err := CheckMap(tt.entry, tt.segs)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: CheckMap(%#x, %v) = %v, want nil", tt.name, tt.entry, tt.segs, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: CheckMap(%#x, %v) = %v, want error containing %q", tt.name, tt.entry, tt.segs, err, tt.wantErr)
		}
	}
}

func TestArgvEnv(t *testing.T) {
	old := DefaultEnv
	DefaultEnv = []string{"A=1"}
	defer func() { DefaultEnv = old }()
	got := ArgvEnv("loader", []string{"-x", "y"}, []string{"B=2"})
	want := "loader\x00-x\x00y\x00\x00A=1\x00B=2\x00\x00"
	if string(got) != want {
		t.Errorf("ArgvEnv = %q, want %q", got, want)
	}
}

// buildS390x builds a package for linux/s390x with GoBuild (cached by the go command) and
// returns the ELF.
func buildS390x(t *testing.T, out string, args ...string) []byte {
	t.Helper()
	if err := GoBuild(context.Background(), "go", "..", out, args...); err != nil {
		t.Fatalf("build %v: %v", args, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func realELFs(t *testing.T) (metalELF, loaderELF []byte) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	dir := t.TempDir()
	metalELF = buildS390x(t, filepath.Join(dir, "metal"), "-ldflags=-E netipl/metal.kentry -T 0x4001000", "./metal/cmd/metal")
	loaderELF = buildS390x(t, filepath.Join(dir, "loader"), "./loader")
	return metalELF, loaderELF
}

func TestAssembleLayout(t *testing.T) {
	mb, lb := realELFs(t)
	args := ArgvEnv("loader", []string{"-v"}, []string{"K=v"})
	img, err := Assemble(mb, lb, args)
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("image is not an ELF: %v", err)
	}
	if f.Entry != metal.LowEntryBase || f.Machine != elf.EM_S390 {
		t.Errorf("entry/machine = %#x/%v, want %#x (metal.LowEntryBase)/EM_S390", f.Entry, f.Machine, metal.LowEntryBase)
	}
	var loads []*elf.Prog
	var end uint64
	for _, p := range f.Progs {
		if p.Type == elf.PT_PHDR {
			t.Error("image still has a PT_PHDR")
		}
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
		}
	}
	for _, p := range loads[:len(loads)-1] {
		end = max(end, p.Paddr+p.Memsz)
	}
	pl := loads[len(loads)-1]
	if want := (end + metal.PayloadAlign - 1) &^ (metal.PayloadAlign - 1); pl.Paddr != want || pl.Vaddr != pl.Paddr {
		t.Errorf("payload at %#x (vaddr %#x), want %#x", pl.Paddr, pl.Vaddr, want)
	}
	data := make([]byte, pl.Filesz)
	if _, err := pl.ReadAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if string(data[:8]) != metal.PayloadMagic {
		t.Fatalf("payload magic %q", data[:8])
	}
	be := binary.BigEndian
	total, lo, ls, ao, as := be.Uint64(data[8:]), be.Uint64(data[16:]), be.Uint64(data[24:]), be.Uint64(data[32:]), be.Uint64(data[40:])
	if total != pl.Filesz || lo%metal.PayloadAlign != 0 {
		t.Errorf("total %d (segment %d), loader offset %#x", total, pl.Filesz, lo)
	}
	checkLoadedPart(t, data[lo:lo+ls], lb)
	if !bytes.Equal(data[ao:ao+as], args) {
		t.Errorf("argv/env block = %q, want %q", data[ao:ao+as], args)
	}
	so, ss := be.Uint64(data[48:]), be.Uint64(data[56:])
	if ss < 8 || be.Uint64(data[so:]) < 1000 {
		t.Errorf("symbol table of %d bytes with %d entries", ss, be.Uint64(data[so:]))
	}
	// the runtime panic entry points are armed as traps
	syms, _ := f.Symbols()
	armed := 0
	for _, s := range syms {
		if s.Name == "runtime.gopanic" || s.Name == "runtime.panicBounds" {
			for _, p := range loads {
				if s.Value >= p.Vaddr && s.Value < p.Vaddr+p.Filesz {
					if img[p.Off+s.Value-p.Vaddr] == 0 && img[p.Off+s.Value-p.Vaddr+1] == 0 {
						armed++
					}
				}
			}
		}
	}
	if armed != 2 {
		t.Errorf("%d of runtime.gopanic/panicBounds armed, want 2", armed)
	}
}

func TestAssembleRejects(t *testing.T) {
	mb, lb := realELFs(t)
	args := ArgvEnv("loader", nil, nil)
	wrongMachine := append([]byte{}, lb...)
	binary.BigEndian.PutUint16(wrongMachine[18:], uint16(elf.EM_X86_64))
	huge := growLastLoad(t, lb, 70<<20)
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		metal, loader []byte
		args          []byte
		wantErr       string
	}{
		{"non-ELF loader", mb, []byte("#!/bin/sh\necho hi\n"), args, "loader: not an ELF file"},
		{"wrong machine", mb, wrongMachine, args, "machine EM_X86_64"},
		{"host binary", mb, self, args, "loader"},
		{"too big for 128 MiB", mb, huge, args, "too big"},
		{"metal not ELF", []byte("nope"), lb, args, "metal"},
		{"bad argv block", mb, lb, []byte("a"), "NUL-terminated"},
	}
	for _, tt := range tests {
		_, err := Assemble(tt.metal, tt.loader, tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Assemble = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestBuildWritesImage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	out := filepath.Join(t.TempDir(), "x.img")
	if err := Build(context.Background(), Options{Loader: "./loader", Out: out, Dir: "..", Args: []string{"a"}}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil || len(b) < 1<<20 {
		t.Fatalf("image: %d bytes, %v", len(b), err)
	}
	if err := Build(context.Background(), Options{Loader: "./nonexistent", Out: out, Dir: ".."}); err == nil || !strings.Contains(err.Error(), "build loader ./nonexistent") {
		t.Errorf("Build(nonexistent loader) = %v", err)
	}
}

// checkLoadedPart checks the loader ELF embedded in the payload against the input: the same
// header and program headers, every segment's file bytes unchanged, and nothing after the last
// of them (no DWARF, symbols or section headers).
func checkLoadedPart(t *testing.T, got, in []byte) {
	t.Helper()
	gf, err := elf.NewFile(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("embedded loader is not an ELF: %v", err)
	}
	inf, err := elf.NewFile(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(gf.Sections) != 0 || len(got) >= len(in) {
		t.Errorf("embedded loader: %d sections, %d bytes (input %d): want no sections and fewer bytes", len(gf.Sections), len(got), len(in))
	}
	if gf.Entry != inf.Entry || len(gf.Progs) != len(inf.Progs) {
		t.Fatalf("embedded loader: entry %#x with %d program headers, input %#x with %d", gf.Entry, len(gf.Progs), inf.Entry, len(inf.Progs))
	}
	// the ELF header (inside the text segment) differs only in the section-header fields:
	// e_shoff (40..47), e_shnum (60..61), e_shstrndx (62..63)
	want := append([]byte{}, in...)
	copy(want[40:48], make([]byte, 8))
	copy(want[60:64], make([]byte, 4))
	end := uint64(0)
	for i, p := range gf.Progs {
		if p.ProgHeader != inf.Progs[i].ProgHeader {
			t.Errorf("program header %d = %+v, input %+v", i, p.ProgHeader, inf.Progs[i].ProgHeader)
		}
		if p.Filesz > 0 && !bytes.Equal(got[p.Off:p.Off+p.Filesz], want[p.Off:p.Off+p.Filesz]) {
			t.Errorf("segment %d (%#x) differs from the input", i, p.Vaddr)
		}
		end = max(end, p.Off+p.Filesz)
	}
	if uint64(len(got)) != end {
		t.Errorf("embedded loader has %d bytes, its segments end at %d", len(got), end)
	}
}

// growLastLoad returns a copy of the ELF b whose last PT_LOAD has n more bytes in the file and
// in memory (zeros appended to the file), so the loaded part itself grows by n.
func growLastLoad(t *testing.T, b []byte, n uint64) []byte {
	t.Helper()
	out := append(append([]byte{}, b...), make([]byte, n)...)
	be := binary.BigEndian
	phoff, phentsize, phnum := be.Uint64(out[32:]), uint64(be.Uint16(out[54:])), uint64(be.Uint16(out[56:]))
	last := -1
	for i := uint64(0); i < phnum; i++ {
		if elf.ProgType(be.Uint32(out[phoff+i*phentsize:])) == elf.PT_LOAD {
			last = int(i)
		}
	}
	if last < 0 {
		t.Fatal("loader has no PT_LOAD")
	}
	ph := out[phoff+uint64(last)*phentsize:]
	off, filesz := be.Uint64(ph[8:]), be.Uint64(ph[32:])
	// move the segment's bytes to the end of the file so that the n zeros follow them
	seg := append([]byte{}, out[off:off+filesz]...)
	newOff := alignUp(uint64(len(b)), 0x10000) + off%0x10000
	out = append(out[:len(b)], make([]byte, newOff-uint64(len(b)))...)
	out = append(append(out, seg...), make([]byte, n)...)
	ph = out[phoff+uint64(last)*phentsize:]
	be.PutUint64(ph[8:], newOff)
	be.PutUint64(ph[32:], filesz+n)
	be.PutUint64(ph[40:], be.Uint64(ph[40:])+n)
	return out
}
