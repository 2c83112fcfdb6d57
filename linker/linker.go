// Package linker assembles netipl.img: the freestanding kernel metal plus one embedded loader
// program (any GOOS=linux GOARCH=s390x static main package) with its argv and environment,
// in the format of docs/image.md, and checks the memory map QEMU will load it into.
package linker

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"netipl/metal"
)

// Options describe one image build.
type Options struct {
	Loader string   // Go package path or directory of the loader's main package, e.g. "./loader"
	Args   []string // extra argv after argv[0]
	Env    []string // environment, "KEY=value"; DefaultEnv is prepended
	Out    string   // output file, e.g. build/netipl.img
	Dir    string   // module root to build in ("" = current directory)
	Go     string   // go command ("" = "go")
}

// DefaultEnv is the environment every loader gets before Options.Env.
var DefaultEnv = []string{}

// Build compiles the loader and metal for linux/s390x and writes the image to o.Out.
func Build(ctx context.Context, o Options) error {
	if o.Loader == "" || o.Out == "" {
		return errors.New("linker: build: Loader and Out are required")
	}
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	tmp, err := os.MkdirTemp("", "netipl-link-")
	if err != nil {
		return fmt.Errorf("linker: build: %w", err)
	}
	defer os.RemoveAll(tmp)
	loaderOut := filepath.Join(tmp, "loader.elf")
	metalOut := filepath.Join(tmp, "metal.elf")
	if err := GoBuild(ctx, goCmd, o.Dir, loaderOut, o.Loader); err != nil {
		return fmt.Errorf("linker: build loader %s: %w", o.Loader, err)
	}
	ld := fmt.Sprintf("-E netipl/metal.kentry -T %#x", metal.LinkBase+0x1000)
	if err := GoBuild(ctx, goCmd, o.Dir, metalOut, "-ldflags="+ld, "netipl/metal/cmd/metal"); err != nil {
		return fmt.Errorf("linker: build metal: %w", err)
	}
	mb, err := os.ReadFile(metalOut)
	if err != nil {
		return fmt.Errorf("linker: build: %w", err)
	}
	lb, err := os.ReadFile(loaderOut)
	if err != nil {
		return fmt.Errorf("linker: build: %w", err)
	}
	img, err := Assemble(mb, lb, ArgvEnv(filepath.Base(strings.TrimSuffix(o.Loader, "/")), o.Args, o.Env))
	if err != nil {
		return err
	}
	if dir := filepath.Dir(o.Out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("linker: write %s: %w", o.Out, err)
		}
	}
	if err := os.WriteFile(o.Out, img, 0o644); err != nil {
		return fmt.Errorf("linker: write %s: %w", o.Out, err)
	}
	return nil
}

// GoBuild runs goCmd build -trimpath -o out args... in dir for linux/s390x with cgo off, the
// way Build compiles metal and the loader (tests build their own s390x programs with it too).
// The error carries the go command's stderr.
func GoBuild(ctx context.Context, goCmd, dir, out string, args ...string) error {
	a := append([]string{"build", "-trimpath", "-o", out}, args...)
	cmd := exec.CommandContext(ctx, goCmd, a...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=s390x", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ArgvEnv returns the argv/env block of docs/image.md: argv[0]=name, then args, each
// NUL-terminated, an extra NUL; then DefaultEnv and env likewise.
func ArgvEnv(name string, args, env []string) []byte {
	var b []byte
	for _, s := range append([]string{name}, args...) {
		b = append(append(b, s...), 0)
	}
	b = append(b, 0)
	for _, s := range append(append([]string{}, DefaultEnv...), env...) {
		b = append(append(b, s...), 0)
	}
	return append(b, 0)
}

// Segment is one PT_LOAD of the image as QEMU loads it.
type Segment struct {
	Addr, FileSize, MemSize uint64
	Flags                   elf.ProgFlag
}

// End returns the first address after the segment in memory.
func (s Segment) End() uint64 { return s.Addr + s.MemSize }

func (s Segment) String() string { return fmt.Sprintf("[%#x, %#x)", s.Addr, s.End()) }

// CheckMap checks the memory map of an image: entry must not be one QEMU treats as a Linux
// kernel (0x10000, 0x800), no segment may touch the lowcore, segments must not overlap, the
// image must end below metal.ImageLimit (QEMU's BIOS copy in a 128 MiB guest), and the entry
// must lie in an executable segment that ends at or below metal.LinkBase (the low-memory
// entry), so that a guest whose RAM ends below metal still runs it and hears why it stops.
func CheckMap(entry uint64, segs []Segment) error {
	if entry == 0x10000 || entry == 0x800 {
		return fmt.Errorf("linker: memory map: entry %#x makes QEMU start the image as a Linux kernel", entry)
	}
	inside := false
	for i, s := range segs {
		if s.Addr < 0x2000 {
			return fmt.Errorf("linker: memory map: segment %v overlaps the lowcore [0x0, 0x2000)", s)
		}
		if s.End() > metal.ImageLimit {
			return fmt.Errorf("linker: memory map: segment %v ends above %#x (QEMU's BIOS in a 128 MiB guest): image %d MiB too big",
				s, metal.ImageLimit, (s.End()-metal.ImageLimit+(1<<20)-1)>>20)
		}
		for _, t := range segs[:i] {
			if s.Addr < t.End() && t.Addr < s.End() {
				return fmt.Errorf("linker: memory map: segments %v and %v overlap", t, s)
			}
		}
		if executable(entry, segs[i:i+1]) {
			if s.End() > metal.LinkBase {
				return fmt.Errorf("linker: memory map: entry %#x is in segment %v, which ends above metal.LinkBase %#x: a guest whose RAM ends below the image could not run it",
					entry, s, metal.LinkBase)
			}
			inside = true
		}
	}
	if !inside {
		return fmt.Errorf("linker: memory map: entry %#x is not in an executable segment", entry)
	}
	return nil
}

// executable reports whether addr lies in the file part of an executable segment.
func executable(addr uint64, segs []Segment) bool {
	for _, s := range segs {
		if addr >= s.Addr && addr < s.Addr+s.FileSize && s.Flags&elf.PF_X != 0 {
			return true
		}
	}
	return false
}

// LowEntrySymbol is metal's position-independent low-memory entry routine (lowentry_s390x.s),
// which Assemble copies to metal.LowEntryBase and makes the image's entry.
const LowEntrySymbol = "netipl/metal.lowentry.abi0"

const lowPage = metal.LowEntrySize / 2 // the stub's first page: code and message templates

// rawEntryOffset is where the image file holds the low-memory entry's bytes (its PT_LOAD maps
// them to metal.LowEntryBase): 0x10000, where QEMU's netboot_fw loader starts a file it copied
// raw to address 0 because an ELF segment did not fit in RAM, so a guest whose RAM ends below
// metal reaches the stub in that launch mode too. metalShift is where metal's own file starts
// (a multiple of 64 KiB: every p_offset stays congruent to its p_vaddr).
const (
	rawEntryOffset   = 0x10000
	metalShift       = 0x20000
	rawProgramNewPSW = 0x1d0              // lowcore program-new PSW
	pswKernel        = 0x0000000180000000 // 64-bit, DAT off, interruptions masked, supervisor
)

// lowEntry returns the file part of the low-memory entry segment: lowentry's code with its
// parameter block filled in (kentry = metal's ELF entry; RAM needed = page-aligned imageEnd +
// metal.MinFreeRAM, as kmain computes it), followed by the NUL-terminated message templates.
func lowEntry(mf *elf.File, metalELF []byte, imageEnd uint64) ([]byte, error) {
	syms, err := mf.Symbols()
	if err != nil {
		return nil, fmt.Errorf("linker: metal: symbol table: %w", err)
	}
	var code []byte
	for _, s := range syms {
		if s.Name != LowEntrySymbol || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
			continue
		}
		off, ok := fileOffset(mf, s.Value)
		if !ok || s.Size == 0 || off+s.Size > uint64(len(metalELF)) {
			return nil, fmt.Errorf("linker: metal: %s at %#x (%d bytes) is not in a loaded segment", s.Name, s.Value, s.Size)
		}
		code = append([]byte{}, metalELF[off:off+s.Size]...)
	}
	if code == nil {
		return nil, fmt.Errorf("linker: metal: no %s (the low-memory entry) in its symbol table", LowEntrySymbol)
	}
	p := metal.LowEntryParamOff
	if len(code) < p+metal.LowEntryParamLen || string(code[p:p+8]) != metal.LowEntryMagic ||
		bytes.Count(code, []byte(metal.LowEntryMagic)) != 1 {
		return nil, fmt.Errorf("linker: metal: %s: parameter block %q not found once at offset %d", LowEntrySymbol, metal.LowEntryMagic, p)
	}
	seg := append(code, make([]byte, alignUp(uint64(len(code)), 8)-uint64(len(code)))...)
	msg := len(seg)
	seg = append(append(seg, metal.LowEntryTooLittle...), 0)
	fault := len(seg)
	seg = append(append(seg, metal.LowEntryFault...), 0)
	if len(seg) > lowPage {
		return nil, fmt.Errorf("linker: metal: %s: code and messages take %d bytes, more than its page (%d)", LowEntrySymbol, len(seg), lowPage)
	}
	need := alignUp(imageEnd, lowPage) + metal.MinFreeRAM
	be := binary.BigEndian
	be.PutUint64(seg[p+metal.LowEntryKentry:], mf.Entry)
	be.PutUint64(seg[p+metal.LowEntryNeed:], need)
	be.PutUint64(seg[p+metal.LowEntryNeedMiB:], (need+(1<<20)-1)>>20)
	be.PutUint32(seg[p+metal.LowEntryMsg:], uint32(msg))
	be.PutUint32(seg[p+metal.LowEntryFaultMsg:], uint32(fault))
	return seg, nil
}

func checkS390(f *elf.File, what string) error {
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2MSB {
		return fmt.Errorf("linker: %s: not an ELF64 big-endian file", what)
	}
	if f.Machine != elf.EM_S390 {
		return fmt.Errorf("linker: %s: machine %v, want EM_S390 (build with GOARCH=s390x)", what, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return fmt.Errorf("linker: %s: type %v, want a static executable (ET_EXEC)", what, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("linker: %s: dynamically linked (build with CGO_ENABLED=0)", what)
		}
	}
	return nil
}

// Assemble returns the image: metal's ELF with one extra PT_LOAD holding the payload
// (header, the loaded part of the loader ELF, argv/env block, symbol table) and one at metal.LowEntryBase holding
// the low-memory entry (lowEntry), which becomes e_entry.
func Assemble(metalELF, loaderELF, argvEnv []byte) ([]byte, error) {
	mf, err := elf.NewFile(bytes.NewReader(metalELF))
	if err != nil {
		return nil, fmt.Errorf("linker: metal: %w", err)
	}
	if err := checkS390(mf, "metal"); err != nil {
		return nil, err
	}
	lf, err := elf.NewFile(bytes.NewReader(loaderELF))
	if err != nil {
		return nil, fmt.Errorf("linker: loader: not an ELF file: %w", err)
	}
	if err := checkS390(lf, "loader"); err != nil {
		return nil, err
	}
	for _, p := range lf.Progs {
		if p.Type == elf.PT_LOAD && p.Vaddr < 0x10000 {
			return nil, fmt.Errorf("linker: loader: segment at %#x is below 0x10000 (the nil guard)", p.Vaddr)
		}
	}
	if len(argvEnv) < 2 || argvEnv[len(argvEnv)-1] != 0 {
		return nil, errors.New("linker: argv/env block not NUL-terminated")
	}
	var segs []Segment
	var end uint64
	for _, p := range mf.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		segs = append(segs, Segment{Addr: p.Paddr, FileSize: p.Filesz, MemSize: p.Memsz, Flags: p.Flags})
		end = max(end, p.Paddr+p.Memsz)
	}
	payloadAddr := alignUp(end, metal.PayloadAlign)
	syms := symbolTable(mf, lf)
	loaderELF, err = loadedPart(lf, loaderELF)
	if err != nil {
		return nil, err
	}

	// payload: header | pad | loader ELF (64 KiB aligned) | argv/env | symbols
	loaderOff := uint64(metal.PayloadAlign)
	argsOff := loaderOff + uint64(len(loaderELF))
	symsOff := alignUp(argsOff+uint64(len(argvEnv)), 8)
	total := symsOff + uint64(len(syms))
	payload := make([]byte, total)
	copy(payload, metal.PayloadMagic)
	be := binary.BigEndian
	for i, v := range []uint64{total, loaderOff, uint64(len(loaderELF)), argsOff, uint64(len(argvEnv)), symsOff, uint64(len(syms))} {
		be.PutUint64(payload[8+8*i:], v)
	}
	copy(payload[loaderOff:], loaderELF)
	copy(payload[argsOff:], argvEnv)
	copy(payload[symsOff:], syms)
	segs = append(segs, Segment{Addr: payloadAddr, FileSize: total, MemSize: total, Flags: elf.PF_R})
	if !executable(mf.Entry, segs) {
		return nil, fmt.Errorf("linker: metal: entry (kentry) %#x is not in an executable segment", mf.Entry)
	}
	low, err := lowEntry(mf, metalELF, payloadAddr+total)
	if err != nil {
		return nil, err
	}
	segs = append([]Segment{{Addr: metal.LowEntryBase, FileSize: uint64(len(low)), MemSize: metal.LowEntrySize, Flags: elf.PF_R | elf.PF_X}}, segs...)
	if err := CheckMap(metal.LowEntryBase, segs); err != nil {
		return nil, err
	}

	body := append([]byte{}, metalELF...)
	if err := armTraps(mf, body); err != nil {
		return nil, err
	}
	// file: ELF header | the low-memory entry at rawEntryOffset | metal's file at metalShift
	// (section headers moved along) | payload | program headers
	out := make([]byte, metalShift)
	copy(out, metalELF[:64])
	copy(out[rawEntryOffset:], low)
	// In the raw copy the file's first 8 KiB become the lowcore: a program-new PSW there sends
	// the first program check to the stub, e.g. when the copy overwrote s390-ccw.img itself
	// (file larger than RAM − 2 MiB) and the CPU starts in garbage.
	be.PutUint64(out[rawProgramNewPSW:], pswKernel)
	be.PutUint64(out[rawProgramNewPSW+8:], rawEntryOffset)
	out = append(out, body...)
	shoff := be.Uint64(metalELF[40:])
	shentsize := uint64(be.Uint16(metalELF[58:]))
	for i := uint64(0); i < uint64(be.Uint16(metalELF[60:])); i++ {
		sh := out[metalShift+shoff+i*shentsize:]
		if elf.SectionType(be.Uint32(sh[4:])) != elf.SHT_NULL {
			be.PutUint64(sh[24:], be.Uint64(sh[24:])+metalShift)
		}
	}
	be.PutUint64(out[40:], shoff+metalShift)
	fileOff := alignUp(uint64(len(out)), metal.PayloadAlign)
	out = append(out, make([]byte, fileOff-uint64(len(out)))...)
	out = append(out, payload...)
	out = append(out, make([]byte, alignUp(uint64(len(out)), 8)-uint64(len(out)))...)

	// new program header table: the low-memory entry, then metal's (minus PT_PHDR, which no
	// longer describes it), then the payload; PT_LOADs stay in address order
	phoff := be.Uint64(metalELF[32:])
	phentsize := uint64(be.Uint16(metalELF[54:]))
	phnum := uint64(be.Uint16(metalELF[56:]))
	newPhoff := uint64(len(out))
	n := 0
	lowPH := make([]byte, 56)
	be.PutUint32(lowPH[0:], uint32(elf.PT_LOAD))
	be.PutUint32(lowPH[4:], uint32(elf.PF_R|elf.PF_X))
	be.PutUint64(lowPH[8:], rawEntryOffset)
	be.PutUint64(lowPH[16:], metal.LowEntryBase)
	be.PutUint64(lowPH[24:], metal.LowEntryBase)
	be.PutUint64(lowPH[32:], uint64(len(low)))
	be.PutUint64(lowPH[40:], metal.LowEntrySize)
	be.PutUint64(lowPH[48:], lowPage)
	for i := uint64(0); i < phnum; i++ {
		ph := metalELF[phoff+i*phentsize : phoff+(i+1)*phentsize]
		switch elf.ProgType(be.Uint32(ph)) {
		case elf.PT_PHDR:
			continue
		case elf.PT_LOAD:
			if lowPH != nil {
				out = append(out, lowPH...)
				lowPH = nil
				n++
			}
		}
		out = append(out, ph...)
		if be.Uint64(ph[8:]) != 0 || be.Uint64(ph[32:]) != 0 { // not an empty GNU_STACK
			be.PutUint64(out[len(out)-56+8:], be.Uint64(ph[8:])+metalShift)
		}
		n++
	}
	ph := make([]byte, 56)
	be.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	be.PutUint32(ph[4:], uint32(elf.PF_R))
	be.PutUint64(ph[8:], fileOff)
	be.PutUint64(ph[16:], payloadAddr)
	be.PutUint64(ph[24:], payloadAddr)
	be.PutUint64(ph[32:], total)
	be.PutUint64(ph[40:], total)
	be.PutUint64(ph[48:], metal.PayloadAlign)
	out = append(out, ph...)
	n++
	be.PutUint64(out[24:], metal.LowEntryBase) // e_entry
	be.PutUint64(out[32:], newPhoff)
	be.PutUint16(out[56:], uint16(n))
	return out, nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// loadedPart returns the part of the loader ELF that is loaded or read at run time: the ELF
// header, the program headers and the file bytes of every segment, without what follows the
// last of them (DWARF, the symbol and string tables, the section headers: about a third of a Go
// binary). The section-header fields are cleared, as strip leaves no sections behind either;
// metal reads program headers only, and the crash-dump symbols are already in the payload's
// own table (symbolTable). Every byte QEMU copies into guest RAM costs start-up time (about
// 0.2 ms per MiB before the BIOS prints LOADPARM, measured with a padded image).
func loadedPart(lf *elf.File, b []byte) ([]byte, error) {
	be := binary.BigEndian
	end := uint64(64)
	phoff, phentsize, phnum := be.Uint64(b[32:]), uint64(be.Uint16(b[54:])), uint64(be.Uint16(b[56:]))
	end = max(end, phoff+phentsize*phnum)
	for _, p := range lf.Progs {
		if p.Filesz > 0 {
			end = max(end, p.Off+p.Filesz)
		}
	}
	if end > uint64(len(b)) {
		return nil, fmt.Errorf("linker: loader: segments end at file offset %#x, beyond the file (%d bytes)", end, len(b))
	}
	out := append([]byte{}, b[:end]...)
	be.PutUint64(out[40:], 0) // e_shoff
	be.PutUint16(out[60:], 0) // e_shnum
	be.PutUint16(out[62:], 0) // e_shstrndx
	return out, nil
}

// symbolTable builds the crash-dump symbol table of docs/image.md from the function symbols
// of both ELFs (absent symbol tables give an empty table).
func symbolTable(files ...*elf.File) []byte {
	type sym struct {
		addr uint64
		name string
	}
	var all []sym
	for _, f := range files {
		ss, err := f.Symbols()
		if err != nil {
			continue
		}
		for _, s := range ss {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
				all = append(all, sym{s.Value, s.Name})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].addr < all[j].addr })
	var b, names []byte
	b = binary.BigEndian.AppendUint64(b, uint64(len(all)))
	for _, s := range all {
		b = binary.BigEndian.AppendUint64(b, s.addr)
		b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
		b = binary.BigEndian.AppendUint32(b, uint32(len(s.name)))
		names = append(names, s.name...)
	}
	return append(b, names...)
}

// TrapSymbols are the runtime entry points metal's compiled code can reach only through a
// kernel bug: a failed bounds or nil check, a division by zero, a stack overflow (morestack)
// or a panic. metal never starts its Go runtime, so instead of running them the linker
// overwrites the first halfword of each with 0x0000, an invalid opcode: the CPU raises an
// operation exception in supervisor state and metal prints its kernel-bug dump, naming the
// caller (R14). restrict_test.go checks that these, memmove/memclr/memequal are the only
// runtime functions metal's code calls.
var TrapSymbols = []string{
	"runtime.gopanic", "runtime.throw", "runtime.morestack", "runtime.morestack_noctxt.abi0",
	"runtime.panicBounds", "runtime.panicExtend", "runtime.panicdivide", "runtime.panicshift",
	"runtime.panicmem", "runtime.panicmemAddr", "runtime.panicunsafeslicelen",
	"runtime.panicunsafeslicenilptr", "runtime.panicunsafestringlen", "runtime.panicunsafestringnilptr",
	"runtime.panicoverflow", "runtime.panicnildottype", "runtime.panicdottypeE", "runtime.panicdottypeI",
	"runtime.goPanicIndex", "runtime.goPanicSliceAlen", "runtime.panicwrap",
}

// armTraps writes the trap opcode over each TrapSymbols function present in metal's image.
func armTraps(mf *elf.File, out []byte) error {
	syms, err := mf.Symbols()
	if err != nil {
		return fmt.Errorf("linker: metal: symbol table: %w", err)
	}
	want := map[string]bool{}
	for _, s := range TrapSymbols {
		want[s] = true
	}
	found := 0
	for _, s := range syms {
		if !want[s.Name] || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
			continue
		}
		off, ok := fileOffset(mf, s.Value)
		if !ok {
			return fmt.Errorf("linker: metal: %s at %#x is not in a loaded segment", s.Name, s.Value)
		}
		out[off], out[off+1] = 0, 0
		found++
	}
	if found == 0 {
		return errors.New("linker: metal: none of the runtime trap symbols found (stripped binary?)")
	}
	return nil
}

func fileOffset(f *elf.File, addr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr+2 <= p.Vaddr+p.Filesz {
			return p.Off + addr - p.Vaddr, true
		}
	}
	return 0, false
}
