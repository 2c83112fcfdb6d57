package metal

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
	"testing"
)

func TestVDSOImage(t *testing.T) {
	page := make([]byte, pageSize)
	buildVDSO(page, 0x1122334455667788)
	f, err := elf.NewFile(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("vDSO is not an ELF: %v", err)
	}
	if f.Type != elf.ET_DYN || f.Machine != elf.EM_S390 || f.ByteOrder.String() != "BigEndian" {
		t.Errorf("type/machine/order = %v/%v/%v", f.Type, f.Machine, f.ByteOrder)
	}
	var load, dyn bool
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			load = p.Off == 0 && p.Vaddr == 0 && p.Flags&elf.PF_X != 0
		case elf.PT_DYNAMIC:
			dyn = p.Off == vdsoDynOff
		}
	}
	if !load || !dyn {
		t.Errorf("PT_LOAD ok %v, PT_DYNAMIC ok %v", load, dyn)
	}
	// What the Go runtime's vdsoInitFromSysinfoEhdr/vdsoParseSymbols read:
	be := f.ByteOrder
	tags := map[uint64]uint64{}
	for i := 0; ; i++ {
		tag, val := be.Uint64(page[vdsoDynOff+16*i:]), be.Uint64(page[vdsoDynOff+16*i+8:])
		if tag == 0 {
			break
		}
		tags[tag] = val
	}
	hash, str, sym := tags[4], tags[5], tags[6]
	if hash != vdsoHashOff || str != vdsoStrOff || sym != vdsoSymOff {
		t.Fatalf("DT_HASH/STRTAB/SYMTAB = %d/%d/%d", hash, str, sym)
	}
	nbucket := be.Uint32(page[hash:])
	idx := be.Uint32(page[hash+8:]) // bucket[symHash % nbucket], nbucket == 1
	if nbucket != 1 || idx != 1 {
		t.Fatalf("hash table: nbucket %d, bucket[0] %d", nbucket, idx)
	}
	s := page[sym+24*uint64(idx):]
	name := page[str+uint64(be.Uint32(s)):]
	name = name[:bytes.IndexByte(name, 0)]
	if string(name) != "__kernel_clock_gettime" || s[4] != 0x12 || be.Uint16(s[6:]) == 0 {
		t.Errorf("symbol %d: name %q info %#x shndx %d", idx, name, s[4], be.Uint16(s[6:]))
	}
	if v := be.Uint64(s[8:]); v != vdsoCodeOff || !bytes.Equal(page[v:v+uint64(len(vdsoCode))], vdsoCode[:]) {
		t.Errorf("symbol value %#x does not point at the code", v)
	}
	// version definition 2 is LINUX_2.6.29 with the hash the runtime expects; symbol 1 uses it
	vd := page[tags[0x6ffffffc]:]
	vd2 := vd[be.Uint32(vd[16:]):]
	aux := vd2[be.Uint32(vd2[12:]):]
	vname := page[str+uint64(be.Uint32(aux)):]
	vname = vname[:bytes.IndexByte(vname, 0)]
	if be.Uint16(vd[2:])&1 == 0 || be.Uint16(vd2[4:]) != 2 || be.Uint32(vd2[8:]) != elfHash("LINUX_2.6.29") || string(vname) != "LINUX_2.6.29" || be.Uint32(vd2[16:]) != 0 {
		t.Errorf("verdef: base flags %#x, ndx %d, hash %#x, name %q", be.Uint16(vd[2:]), be.Uint16(vd2[4:]), be.Uint32(vd2[8:]), vname)
	}
	if got := be.Uint16(page[tags[0x6ffffff0]+2*uint64(idx):]); got != 2 {
		t.Errorf("versym[%d] = %d, want 2", idx, got)
	}
	if be.Uint64(page[vdsoDataOff:]) != 0x1122334455667788 || be.Uint64(page[vdsoDataOff+8:]) != todEpoch1970 {
		t.Error("data words wrong")
	}
	if vdsoDataOff%8 != 0 || vdsoDataOff+16 > pageSize {
		t.Errorf("data at %d", vdsoDataOff)
	}
}

// TestVDSOCodeMatchesAssembler re-assembles the source in vdso.go's comment with GNU as and
// compares the bytes.
func TestVDSOCodeMatchesAssembler(t *testing.T) {
	bin := assembleComment(t, "vdso.go", "__kernel_clock_gettime:", func(l string) string {
		return strings.ReplaceAll(l, "boot_tod, tod_epoch_1970", "0, 0")
	})
	want := append(vdsoCode[:], make([]byte, 16)...)
	if !bytes.Equal(bin, want) {
		t.Errorf("assembled %x\nvdsoCode  %x", bin, want)
	}
}

// elfHash is the System V ABI symbol hash (what runtime/vdso_linux_s390x.go precomputes).
func elfHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = h<<4 + uint32(s[i])
		g := h & 0xf0000000
		if g != 0 {
			h ^= g >> 24
		}
		h &^= g
	}
	return h
}

func TestELFHashMatchesRuntime(t *testing.T) {
	if got := elfHash("LINUX_2.6.29"); got != vdsoVerHash {
		t.Errorf("elfHash(LINUX_2.6.29) = %#x, want %#x", got, vdsoVerHash)
	}
	if got := elfHash("__kernel_clock_gettime"); got != 0xb0cd725 {
		t.Errorf("elfHash(__kernel_clock_gettime) = %#x, want 0xb0cd725", got)
	}
}

// TestVDSOSigreturnTrampoline: signal handlers without SA_RESTORER return to "svc 173" in the vDSO
// page (never to code in the signal frame on the stack), inside the page's R+X PT_LOAD.
func TestVDSOSigreturnTrampoline(t *testing.T) {
	page := make([]byte, pageSize)
	buildVDSO(page, 0)
	if got := binary.BigEndian.Uint16(page[vdsoSigreturnOff:]); got != 0x0aad {
		t.Fatalf("vDSO at %#x holds %#04x, want svc 173 (0x0aad)", vdsoSigreturnOff, got)
	}
	if vdsoSigreturnOff < vdsoDataOff+16 || vdsoSigreturnOff+2 > pageSize {
		t.Fatalf("trampoline at %#x overlaps the data (ends %#x) or leaves the page", vdsoSigreturnOff, vdsoDataOff+16)
	}
}
