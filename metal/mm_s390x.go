package metal

import (
	"unsafe"

	"netipl/internal/movelong"
	"netipl/metal/internal/phys"
)

// Memory management: frames, DAT tables (region-second ASCE, 4 KiB pages), demand-zero faults
// and access to the loader's memory from the kernel (which runs with DAT off).
//
// DAT formats, PoP 3.11.4: region and segment tables are 2048 entries (16 KiB), page tables
// 256 entries (2 KiB; metal gives each its own 4 KiB frame).

const (
	maxRAM        = 16 << 30 // largest guest metal manages (frame bitmap size)
	maxFrameWords = maxRAM / pageSize / 64

	entInvalid  = 0x20  // region/segment entry invalid bit
	ttRegion2   = 0x08  // TT of entries in a region-second table
	ttRegion3   = 0x04  // TT of entries in a region-third table
	tlFull      = 0x03  // table length: 4 units of 4 KiB
	dtRegion2   = 0x08  // ASCE designation type: region-second table
	pteInvalid  = 0x400 // page-table entry invalid
	pteProtect  = 0x200 // page-table entry write-protected
	pteSwImage  = 0x001 // software: frame belongs to the image (never freed)
	pteSwParked = 0x002 // software: frame kept but access removed (PROT_NONE)
	pteSwDevMem = 0x004 // software: a /dev/mem page (its frame is reserved while mapped)
)

var (
	frameBits [maxFrameWords]uint64
	mem       frames
	vmas      vmaTable
	r2Table   uintptr // origin of the region-second table (the ASCE's table)
	ramSize   uint64
)

func memInit(ram, kernelStart, kernelEnd uint64) {
	mem.init(uintptr(unsafe.Pointer(&frameBits)), ram/pageSize)
	mem.addFree(lowcoreSize/pageSize, kernelStart/pageSize)
	mem.addFree(kernelEnd/pageSize, ram/pageSize)
	// The low-memory entry ran from these pages; a Linux kernel loaded at 0 covers them, and it
	// arrives through /dev/mem copies (MVC), which would leave QEMU's translations of the entry
	// in place (docs/memory.md). Frames get scrubbed when handed out; these two never are.
	phys.Scrub(LowEntryBase, LowEntrySize)
}

// allocZeroed returns a zeroed frame's address, or 0 when memory is exhausted. Frames that
// leave metal are cleared with phys.Scrub, not phys.Zero: a frame may hold code that ran before
// (QEMU's BIOS at RAM end − 2 MiB is where the top-down allocator starts), and only ordinary
// stores rid QEMU TCG of its translations (docs/memory.md).
func allocZeroed() uintptr {
	pfn, ok := mem.alloc()
	if !ok {
		return 0
	}
	a := uintptr(pfn * pageSize)
	phys.Scrub(a, pageSize)
	return a
}

// allocTable returns a 16 KiB table with every entry set to fill, or 0.
func allocTable(fill uint64) uintptr {
	pfn, ok := mem.allocRun(4)
	if !ok {
		return 0
	}
	a := uintptr(pfn * pageSize)
	w := phys.Words(a, 2048)
	for i := range w {
		w[i] = fill
	}
	return a
}

func freeFrame(a uint64) { mem.release(a / pageSize) }

// mmInit builds the empty address space and loads the ASCE into CR1/CR7/CR13.
func mmInit() bool {
	r2Table = allocTable(entInvalid | ttRegion2)
	if r2Table == 0 {
		return false
	}
	loadASCE(uint64(r2Table) | dtRegion2 | tlFull)
	return true
}

// walk returns the address of the page-table entry for va, building missing tables when
// create is set; 0 when absent (or out of memory).
func walk(va uint64, create bool) uintptr {
	if va >= userEnd {
		return 0
	}
	e := r2Table + uintptr((va>>42)&0x7ff)*8
	v := phys.Load64(e)
	if v&entInvalid != 0 {
		if !create {
			return 0
		}
		t := allocTable(entInvalid | ttRegion3)
		if t == 0 {
			return 0
		}
		v = uint64(t) | ttRegion2 | tlFull
		phys.Store64(e, v)
	}
	e = uintptr(v&^0xfff) + uintptr((va>>31)&0x7ff)*8
	v = phys.Load64(e)
	if v&entInvalid != 0 {
		if !create {
			return 0
		}
		t := allocTable(entInvalid)
		if t == 0 {
			return 0
		}
		v = uint64(t) | ttRegion3 | tlFull
		phys.Store64(e, v)
	}
	e = uintptr(v&^0xfff) + uintptr((va>>20)&0x7ff)*8
	v = phys.Load64(e)
	if v&entInvalid != 0 {
		if !create {
			return 0
		}
		pt, ok := mem.alloc()
		if !ok {
			return 0
		}
		a := uintptr(pt * pageSize)
		phys.Scrub(a, pageSize) // the table fills half the frame; no stale code in the other
		w := phys.Words(a, 256)
		for i := range w {
			w[i] = pteInvalid
		}
		v = uint64(a)
		phys.Store64(e, v)
	}
	return uintptr(v&^0x7ff) + uintptr((va>>12)&0xff)*8
}

// mapImage maps [start, end) (page-aligned) read-only onto the payload's pages from pa, as the
// first read of each page would (fault, vmaImage), all at load time: the loader touches about
// a thousand of its code and read-only data pages before DHCP is done, and one program
// interruption per page cost more under TCG than these PTE stores. It reports false when the
// page tables cannot be allocated.
func mapImage(start, end, pa uint64) bool {
	for va := start; va < end; {
		pte := walk(va, true)
		if pte == 0 {
			return false
		}
		// the rest of this page table: PTEs are contiguous up to the next 1 MiB boundary
		stop := min(end, (va+(1<<20))&^(1<<20-1))
		for ; va < stop; va, pa, pte = va+pageSize, pa+pageSize, pte+8 {
			phys.Store64(pte, pa|pteSwImage|pteProtect)
		}
	}
	return true
}

// Results of fault handling.
const (
	faultOK     = iota
	faultMapErr // no VMA: SIGSEGV SEGV_MAPERR
	faultAccErr // VMA forbids the access: SIGSEGV SEGV_ACCERR
	faultOOM    // out of frames
)

// fault makes va accessible according to its VMA (demand-zero, image pages in place, or a
// page parked by mprotect).
func fault(va uint64, write bool) int {
	i := vmas.find(va)
	if i < 0 {
		return faultMapErr
	}
	v := &vmas.v[i]
	if v.prot&(protRead|protWrite|protExec) == 0 || (write && v.prot&protWrite == 0) {
		return faultAccErr
	}
	pte := walk(va, true)
	if pte == 0 {
		return faultOOM
	}
	e := phys.Load64(pte)
	prot := uint64(0)
	if v.prot&protWrite == 0 {
		prot = pteProtect
	}
	switch {
	case e&pteInvalid == 0 && e&pteSwImage != 0 && write:
		// a write to an image page made writable by mprotect: private copy-on-write
		if !copyOnWrite(pte, e&^0xfff) {
			return faultOOM
		}
	case e&pteInvalid == 0: // already valid: a stale TLB entry or a protection change
		if e&pteSwImage != 0 {
			prot = pteProtect
		}
		phys.Store64(pte, e&^pteProtect|prot)
		ptlb()
	case e&pteSwParked != 0:
		if e&pteSwImage != 0 {
			prot = pteProtect
		}
		phys.Store64(pte, e&^(pteInvalid|pteSwParked|pteProtect)|prot)
		if write && e&pteSwImage != 0 && !copyOnWrite(pte, e&^0xfff) {
			return faultOOM
		}
	case v.kind == vmaDevMem: // populated at mmap; only reached if a PTE went missing
		phys.Store64(pte, (v.phys+pageDown(va)-v.start)|pteSwDevMem|prot)
	case v.kind == vmaImage:
		pa := v.phys + pageDown(va) - v.start
		phys.Store64(pte, pa|pteSwImage|pteProtect)
		if write && !copyOnWrite(pte, pa) {
			return faultOOM
		}
	default:
		a := allocZeroed()
		if a == 0 {
			return faultOOM
		}
		phys.Store64(pte, uint64(a)|prot)
	}
	return faultOK
}

// copyOnWrite replaces the image page pa mapped at pte by a private writable copy (the
// payload itself is never written).
func copyOnWrite(pte uintptr, pa uint64) bool {
	pfn, ok := mem.alloc()
	if !ok {
		return false
	}
	a := uintptr(pfn * pageSize)
	phys.Scrub(a, pageSize) // stale code translations out first: Copy is MVC (see allocZeroed)
	phys.Copy(a, uintptr(pa), pageSize)
	phys.Store64(pte, uint64(a))
	ptlb()
	return true
}

// userAddr translates va for a kernel access, faulting the page in as the loader would.
func userAddr(va uint64, write bool) (uintptr, bool) {
	for try := 0; try < 2; try++ {
		pte := walk(va, false)
		if pte != 0 {
			e := phys.Load64(pte)
			if e&pteInvalid == 0 && (!write || e&pteProtect == 0) {
				return uintptr(e&^0xfff) + uintptr(va&0xfff), true
			}
		}
		if fault(va, write) != faultOK {
			return 0, false
		}
	}
	return 0, false
}

// copyOut copies src to the loader's memory at va.
func copyOut(va uint64, src []byte) bool {
	for len(src) > 0 {
		pa, ok := userAddr(va, true)
		if !ok {
			return false
		}
		n := movelong.Copy(phys.Bytes(pa, uintptr(pageSize-va%pageSize)), src)
		src = src[n:]
		va += uint64(n)
	}
	return true
}

// copyIn copies the loader's memory at va into dst.
func copyIn(dst []byte, va uint64) bool {
	for len(dst) > 0 {
		pa, ok := userAddr(va, false)
		if !ok {
			return false
		}
		n := movelong.Copy(dst, phys.Bytes(pa, uintptr(pageSize-va%pageSize)))
		dst = dst[n:]
		va += uint64(n)
	}
	return true
}

func readU64(va uint64) (uint64, bool) {
	if va%8 != 0 {
		var b [8]byte
		if !copyIn(b[:], va) {
			return 0, false
		}
		return be64(b[:]), true
	}
	pa, ok := userAddr(va, false)
	if !ok {
		return 0, false
	}
	return phys.Load64(pa), true
}

func readU32(va uint64) (uint32, bool) {
	if va%4 != 0 {
		return 0, false
	}
	pa, ok := userAddr(va, false)
	if !ok {
		return 0, false
	}
	return phys.Load32(pa), true
}

func writeU64(va, v uint64) bool {
	if va%8 != 0 {
		var b [8]byte
		putBE64(b[:], v)
		return copyOut(va, b[:])
	}
	pa, ok := userAddr(va, true)
	if !ok {
		return false
	}
	phys.Store64(pa, v)
	return true
}

// unmapPages drops the translations of [start, end): frames are freed (image pages are not),
// or, with park, kept but made inaccessible (mprotect PROT_NONE).
func unmapPages(start, end uint64, park bool) {
	changed := false
	for va := start; va < end && va < userEnd; {
		e := phys.Load64(r2Table + uintptr((va>>42)&0x7ff)*8)
		if e&entInvalid != 0 {
			va = (va>>42 + 1) << 42
			continue
		}
		e = phys.Load64(uintptr(e&^0xfff) + uintptr((va>>31)&0x7ff)*8)
		if e&entInvalid != 0 {
			va = (va>>31 + 1) << 31
			continue
		}
		e = phys.Load64(uintptr(e&^0xfff) + uintptr((va>>20)&0x7ff)*8)
		if e&entInvalid != 0 {
			va = (va>>20 + 1) << 20
			continue
		}
		pte := uintptr(e&^0x7ff) + uintptr((va>>12)&0xff)*8
		p := phys.Load64(pte)
		if p&pteInvalid == 0 || p&pteSwParked != 0 {
			switch {
			case park:
				phys.Store64(pte, p|pteInvalid|pteSwParked)
			default:
				if p&pteSwImage == 0 {
					freeFrame(p &^ 0xfff)
				}
				phys.Store64(pte, pteInvalid)
			}
			changed = true
		}
		va += pageSize
	}
	if changed {
		ptlb()
	}
}

// protectPages applies prot to the present pages of [start, end).
func protectPages(start, end uint64, prot uint8) {
	if prot&(protRead|protWrite|protExec) == 0 {
		unmapPages(start, end, true)
		return
	}
	for va := start; va < end; va += pageSize {
		pte := walk(va, false)
		if pte == 0 {
			continue
		}
		p := phys.Load64(pte)
		if p&pteInvalid != 0 && p&pteSwParked == 0 {
			continue
		}
		p &^= pteInvalid | pteSwParked | pteProtect
		if prot&protWrite == 0 || p&pteSwImage != 0 {
			p |= pteProtect
		}
		phys.Store64(pte, p)
	}
	ptlb()
}

// Linux mmap flags and madvise advice (include/uapi/asm-generic/mman*.h).
const (
	mapShared         = 0x01
	mapPrivate        = 0x02
	mapFixed          = 0x10
	mapAnonymous      = 0x20
	mapFixedNoReplace = 0x100000
	madvDontneed      = 4
	madvFree          = 8
	madvRemove        = 9
)

// doMmap implements old_mmap (s390x SYS_mmap = 90): args points at {addr,len,prot,flags,fd,off}.
func doMmap(args uint64) int64 {
	var a [6]uint64
	for i := range a {
		v, ok := readU64(args + uint64(i)*8)
		if !ok {
			return -eFAULT
		}
		a[i] = v
	}
	addr, length, prot, flags := a[0], a[1], uint8(a[2]&7), a[3]
	if length == 0 || length > userEnd {
		return -eINVAL
	}
	if flags&(mapShared|mapPrivate) == 0 {
		return -eINVAL
	}
	if flags&mapAnonymous == 0 {
		d := fdGet(int64(int32(a[4])))
		if d == nil {
			return -eBADF
		}
		if d.kind != fdDevMem {
			return -eNODEV // only /dev/mem can be mapped
		}
		return devMemMmap(addr, length, prot, flags, a[5])
	}
	n := pageUp(length)
	addr, r := mmapPlace(addr, n, flags)
	if r != 0 {
		return r
	}
	unmapPages(addr, addr+n, false)
	if !vmas.insert(vma{start: addr, end: addr + n, prot: prot, kind: vmaAnon}) {
		return -eNOMEM
	}
	return int64(addr)
}

// mmapPlace chooses the address of an n-byte mapping as Linux does: MAP_FIXED(_NOREPLACE)
// at addr, else the hint when free, else top-down below mmapBase. r is 0 or a negative errno.
func mmapPlace(addr, n, flags uint64) (uint64, int64) {
	switch {
	case flags&(mapFixed|mapFixedNoReplace) != 0:
		if addr%pageSize != 0 || addr < mmapMin || addr+n > userEnd || addr+n < addr {
			return 0, -eINVAL
		}
		if flags&mapFixedNoReplace != 0 && !vmas.isFree(addr, addr+n) {
			return 0, -eEXIST
		}
	case addr != 0 && pageDown(addr) >= mmapMin && pageDown(addr)+n <= userEnd &&
		vmas.isFree(pageDown(addr), pageDown(addr)+n):
		addr = pageDown(addr)
	default:
		var ok bool
		addr, ok = vmas.gapBelow(n, mmapMin, mmapBase)
		if !ok {
			return 0, -eNOMEM
		}
	}
	return addr, 0
}

func doMunmap(addr, length uint64) int64 {
	if addr%pageSize != 0 || length == 0 || addr+length < addr {
		return -eINVAL
	}
	end := pageUp(addr + length)
	if end > userEnd {
		end = userEnd
	}
	unmapPages(addr, end, false)
	if !vmas.remove(addr, end) {
		return -eNOMEM
	}
	return 0
}

func doMprotect(addr, length, prot uint64) int64 {
	if addr%pageSize != 0 || addr+length < addr {
		return -eINVAL
	}
	end := pageUp(addr + length)
	if !vmas.protect(addr, end, uint8(prot&7)) {
		return -eNOMEM
	}
	protectPages(addr, end, uint8(prot&7))
	return 0
}

func doMadvise(addr, length, advice uint64) int64 {
	if addr%pageSize != 0 || addr+length < addr {
		return -eINVAL
	}
	switch advice {
	case madvDontneed, madvFree, madvRemove:
		// Linux semantics the Go runtime relies on: later reads see zero-filled pages.
		end := pageUp(addr + length)
		for a := addr; a < end; {
			i := vmas.find(a)
			if i < 0 {
				return -eNOMEM
			}
			if vmas.v[i].kind == vmaDevMem {
				return -eINVAL // as Linux for VM_PFNMAP mappings: /dev/mem contents stay
			}
			a = vmas.v[i].end
		}
		unmapPages(addr, end, false)
	}
	return 0
}
