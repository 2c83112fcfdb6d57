package metal

import "netipl/metal/internal/phys"

// The kernel handoff (docs/abi.md "handoff contract"): /dev/mem mappings, /proc/iomem,
// kexec_load and reboot(LINUX_REBOOT_CMD_KEXEC). The pure parts are in handoff.go.

var (
	kexecSegs   [kexecMaxSegments]kexecSegment // the loaded set, sorted by destination
	kexecN      int
	kexecEntry  uint64
	kexecLoaded bool
)

// devMemMmap maps guest-physical [off, off+length) at a place chosen as for anonymous
// memory. EINVAL: not MAP_SHARED, unaligned, or beyond RAM; EBUSY: a frame of the range is in
// use (lowcore, metal's image, frames metal handed out, another /dev/mem mapping). The frames
// are reserved until their pages are unmapped.
func devMemMmap(addr, length uint64, prot uint8, flags, off uint64) int64 {
	if flags&mapShared == 0 || off%pageSize != 0 || length%pageSize != 0 {
		return -eINVAL
	}
	if off+length < off || off+length > ramSize {
		return -eINVAL
	}
	addr, r := mmapPlace(addr, length, flags)
	if r != 0 {
		return r
	}
	if !mem.claim(off/pageSize, (off+length)/pageSize) {
		return -eBUSY
	}
	unmapPages(addr, addr+length, false)
	if !vmas.insert(vma{start: addr, end: addr + length, prot: prot, kind: vmaDevMem, phys: off}) {
		devMemRelease(off, length)
		return -eNOMEM
	}
	pte := uint64(pteSwDevMem)
	switch {
	case prot&(protRead|protWrite|protExec) == 0:
		pte |= pteInvalid | pteSwParked
	case prot&protWrite == 0:
		pte |= pteProtect
	}
	for i := uint64(0); i < length; i += pageSize {
		e := walk(addr+i, true)
		if e == 0 { // out of frames for page tables: undo
			unmapPages(addr, addr+i, false)
			devMemRelease(off+i, length-i)
			vmas.remove(addr, addr+length)
			return -eNOMEM
		}
		phys.Store64(e, (off+i)|pte)
	}
	ptlb()
	return int64(addr)
}

func devMemRelease(off, length uint64) {
	for p := off / pageSize; p < (off+length)/pageSize; p++ {
		mem.release(p)
	}
}

// renderIomemNow renders /proc/iomem from the frame bitmap.
func renderIomemNow(b []byte) int {
	l := iomemLayout{ram: ramSize, codeEnd: uint64(textEnd()), imageStart: LinkBase, imageEnd: kernelEnd}
	return renderIomem(b, &l, &mem)
}

// sysKexecLoadSegs implements kexec_load(entry, nr_segments, segments, flags): it validates
// and records the set (nr_segments 0 unloads). Every source buffer must be readable (EFAULT).
// A failed call leaves nothing loaded.
func sysKexecLoadSegs(entry, nr, segs, flags uint64) int64 {
	kexecLoaded = false
	if nr > kexecMaxSegments {
		return -eINVAL
	}
	if nr == 0 {
		if flags != kexecArchS390 && flags != kexecArchDefault {
			return -eINVAL
		}
		return 0
	}
	var raw [32]byte
	for i := uint64(0); i < nr; i++ {
		if !copyIn(raw[:], segs+32*i) {
			return -eFAULT
		}
		kexecSegs[i] = kexecSegment{buf: be64(raw[0:]), bufsz: be64(raw[8:]), mem: be64(raw[16:]), memsz: be64(raw[24:])}
	}
	set := kexecSegs[:nr]
	if r := validateKexec(entry, flags, set, ramSize); r != 0 {
		return r
	}
	for i := range set {
		s := &set[i]
		for va := pageDown(s.buf); va < s.buf+s.bufsz; va += pageSize {
			if _, ok := userAddr(va, false); !ok {
				return -eFAULT
			}
		}
	}
	kexecN = int(nr)
	kexecEntry = entry
	kexecLoaded = true
	return 0
}

// allocOutside takes a free frame below limit that is outside every destination of the
// loaded set (frames it skips stay taken: metal never runs again after the handoff).
func allocOutside(limit uint64) uintptr {
	for {
		pfn, ok := mem.allocBelow(limit / pageSize)
		if !ok {
			return 0
		}
		if !inDestination(kexecSegs[:kexecN], pfn*pageSize, pageSize) {
			a := uintptr(pfn * pageSize)
			phys.Zero(a, pageSize)
			return a
		}
	}
}

// kexecStage builds the copy plan: every source page that is not already at its destination
// is copied to a staging frame outside all destinations, so the trampoline can overwrite
// anything (metal included) without destroying a source. It returns the first plan page, or
// 0 when memory ran out.
func kexecStage() uintptr {
	first := allocOutside(ramSize)
	if first == 0 {
		return 0
	}
	page := first
	for i := 0; i < kexecN; i++ {
		s := &kexecSegs[i]
		for off := uint64(0); off < s.bufsz; off += pageSize {
			n := min(pageSize, s.bufsz-off)
			if s.buf%pageSize == 0 {
				if e := walk(s.buf+off, false); e != 0 {
					p := phys.Load64(e)
					if p&pteInvalid == 0 && p&^0xfff == s.mem+off {
						continue // already in place (a /dev/mem mapping of the destination)
					}
				}
			}
			st := allocOutside(ramSize)
			if st == 0 || !copyIn(phys.Bytes(st, uintptr(n)), s.buf+off) || !planAdd(&page, s.mem+off, n, uint64(st), n) {
				return 0
			}
		}
		if s.memsz > s.bufsz && !planAdd(&page, s.mem+s.bufsz, s.memsz-s.bufsz, 0, 0) {
			return 0
		}
	}
	return first
}

// planAdd appends an entry to the plan page *page, chaining a new page when it is full.
func planAdd(page *uintptr, dst, dstLen, src, srcLen uint64) bool {
	if planAppend(phys.Bytes(*page, pageSize), dst, dstLen, src, srcLen) {
		return true
	}
	next := allocOutside(ramSize)
	if next == 0 {
		return false
	}
	phys.Store64(*page+8, uint64(next))
	*page = next
	return planAppend(phys.Bytes(next, pageSize), dst, dstLen, src, srcLen)
}

// kexecReboot implements reboot(LINUX_REBOOT_CMD_KEXEC): stage the loaded set, stop the NIC
// (no more DMA, its subchannel disabled), then run the trampoline from a frame below 2 GiB
// (its reset PSW holds a 31-bit address) outside every destination. The loader never runs
// again. Errors: EINVAL without a loaded set, ENOMEM when staging runs out of frames.
func kexecReboot() int64 {
	if !kexecLoaded {
		return -eINVAL
	}
	plan := kexecStage()
	tramp := allocOutside(2 << 30)
	if plan == 0 || tramp == 0 {
		return -eNOMEM
	}
	copy(phys.Bytes(tramp, uintptr(len(trampolineCode))), trampolineCode[:])
	schid := uint32(0)
	if nicState == nicUp {
		schid = nic.SubchannelWord()
	}
	nicReset()
	kflush()
	viaStub := uint64(0)
	if kexecEntry == kexecEntryS390EP {
		viaStub = 1
	}
	kexecJump(tramp, plan, schid, viaStub)
	return 0
}
