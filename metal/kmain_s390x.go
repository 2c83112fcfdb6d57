package metal

import (
	"unsafe"

	"netipl/metal/internal/phys"
)

var (
	kstack [kstackSize]byte
	fakeg  [8]uintptr // g.stack.lo, g.stack.hi, g.stackguard0, g.stackguard1, ...

	payloadAddr  uintptr
	payload      payloadHeader
	loaderELF    elfImage
	haveTRNG     bool
	rngState     uint64
	iplbArea     [2 * pageSize]byte
	iplbLoadparm [8]byte
	sysibArea    [2 * pageSize]byte
	facBuf       [4]uint64
	vdsoArea     [2 * pageSize]byte
	prnoQuery    [2]uint64
)

// imageEnd returns runtime·end, the end of metal's own memory image (entry_s390x.s).
func imageEnd() uintptr

// textEnd returns runtime·etext, the end of metal's code (entry_s390x.s).
func textEnd() uintptr

// kernelEnd is the end of metal's image and payload (page-aligned): frames start above it.
var kernelEnd uint64

func pageAligned(a *[2 * pageSize]byte) uintptr {
	return (uintptr(unsafe.Pointer(a)) + pageSize - 1) &^ (pageSize - 1)
}

// kmain runs once, from kentry, on the kernel stack with DAT off and interrupts masked.
func kmain() {
	bootTOD = stckf()
	curIdx = -1
	curTCB = tcbAddr(&idleTCB)
	sclpEnableConsole()

	ramSize = sclpReadInfo()
	facts.memTotal = ramSize
	if ramSize > maxRAM {
		ramSize = maxRAM // frames come from the first 16 GiB; MemTotal still reports all RAM
	}
	payloadAddr = (imageEnd() + PayloadAlign - 1) &^ (PayloadAlign - 1)
	if ramSize <= uint64(payloadAddr)+payloadHdrSize {
		tooLittleRAM(uint64(payloadAddr) + payloadHdrSize)
	}
	var code int
	payload, code = parsePayloadHeader(phys.Bytes(payloadAddr, payloadHdrSize), ramSize-uint64(payloadAddr))
	if code != payloadOK {
		kprint("metal: payload: ")
		kprint(payloadErrText[code])
		kprint(" at ")
		kprintHexShort(uint64(payloadAddr))
		kline("")
		disabledWait(waitBadPayload)
	}
	kend := pageUp(uint64(payloadAddr) + payload.total)
	kernelEnd = kend
	if need := kend + MinFreeRAM; ramSize < need {
		tooLittleRAM(need)
	}
	memInit(ramSize, LinkBase, kend)
	probeCPU()
	probeIPL()
	if !mmInit() {
		tooLittleRAM(kend + MinFreeRAM)
	}
	fdInit()
	selfTest()
	loadLoader()
}

func tooLittleRAM(need uint64) {
	kprint("metal: ")
	kprintDec(ramSize >> 20)
	kprint(" MiB of RAM is too little: netipl needs at least ")
	kprintDec((need + (1 << 20) - 1) >> 20)
	kline(" MiB")
	disabledWait(waitTooLittleRAM)
}

// probeCPU checks for the PRNO TRNG function (MSA extension 5, facility 57).
func probeCPU() {
	stfle(uintptr(unsafe.Pointer(&facBuf)))
	rngState = stckf() | 1
	if facBuf[0]&(1<<(63-57)) != 0 {
		prno(0, uintptr(unsafe.Pointer(&prnoQuery)), 0, 0)
		// function 114 (TRNG): bit 114 of the 128-bit query result
		haveTRNG = prnoQuery[1]&(1<<(127-114)) != 0
	}
}

// randomBytes fills b from the TRNG, or (without one) from a TOD-seeded xorshift generator.
func randomBytes(b []byte) {
	if haveTRNG && len(b) > 0 {
		prno(114, 0, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return
	}
	for i := range b {
		rngState ^= rngState << 13
		rngState ^= rngState >> 7
		rngState ^= rngState << 17
		b[i] = byte(rngState >> 32)
	}
}

// probeIPL reads the IPL parameter block (diag 308 subcode 6) and the VM UUID (STSI 3.2.2),
// and picks the loadparm (chooseLoadparm: the IPL block's, else Read SCP Info's).
func probeIPL() {
	const diag308Store = 6
	const iplTypeCCW = 2
	var fromIPLB, fromSCP *[8]byte
	iplb := pageAligned(&iplbArea)
	if diag308(diag308Store, iplb) == 1 && phys.Load8(iplb+12) == iplTypeCCW {
		facts.iplValid = true
		facts.ssid = phys.Load8(iplb+24+85) & 3
		facts.devno = phys.Load16(iplb + 24 + 86)
		copy(iplbLoadparm[:], phys.Bytes(iplb+16, 8))
		fromIPLB = &iplbLoadparm
	}
	if scpLoadparmValid {
		fromSCP = &scpLoadparm
	}
	chooseLoadparm(&facts.loadparm, fromIPLB, fromSCP)
	sysib := pageAligned(&sysibArea)
	// STSI cc 0: SYSIB stored; cc 3: level 3 (a hypervisor) not available, so no UUID
	if stsi(sysib, 3, 2, 2) == 0 && phys.Load8(sysib+31)&0xf > 0 {
		copy(facts.uuid[:], phys.Bytes(sysib+80, 16))
	}
}

// loadLoader maps the loader ELF of the payload, builds its initial stack and starts it.
func loadLoader() {
	elfAddr := payloadAddr + uintptr(payload.loaderOff)
	if code := parseELF(phys.Bytes(elfAddr, uintptr(payload.loaderSize)), &loaderELF); code != elfOK {
		kprint("metal: payload: loader ELF: ")
		kline(elfErrText[code])
		disabledWait(waitBadPayload)
	}
	for i := 0; i < loaderELF.n; i++ {
		l := &loaderELF.loads[i]
		start, end := pageDown(l.vaddr), pageUp(l.vaddr+l.memsz)
		prot := uint8(protRead)
		if l.flags&1 != 0 {
			prot |= protExec
		}
		if l.flags&elfPFW == 0 {
			// read-only: map the payload's own pages in place
			pa := uint64(elfAddr) + l.off - (l.vaddr - start)
			vmas.insert(vma{start: start, end: end, prot: prot, kind: vmaImage, phys: pa})
			if !mapImage(start, end, pa) {
				tooLittleRAM(ramSize + MinFreeRAM)
			}
			continue
		}
		vmas.insert(vma{start: start, end: end, prot: prot | protWrite, kind: vmaAnon})
		if !copyOut(l.vaddr, phys.Bytes(elfAddr+uintptr(l.off), uintptr(l.filesz))) {
			tooLittleRAM(ramSize + MinFreeRAM)
		}
	}
	vmas.insert(vma{start: stackTop - userStackSize, end: stackTop, prot: protRead | protWrite, kind: vmaAnon})
	vdso := pageAligned(&vdsoArea)
	buildVDSO(phys.Bytes(vdso, pageSize), bootTOD)
	vmas.insert(vma{start: vdsoBase, end: vdsoBase + pageSize, prot: protRead | protExec, kind: vmaImage, phys: uint64(vdso)})
	sp := buildStack()
	t := newThread()
	t.psw[0] = pswUser
	t.psw[1] = loaderELF.entry
	t.gprs[15] = sp
	dispatch()
}

// Auxiliary vector tags (include/uapi/linux/auxvec.h).
const (
	atNull    = 0
	atPagesz  = 6
	atHwcap   = 16
	atSecure  = 23
	atRandom  = 25
	atExecfn  = 31
	hwcapS390 = 0x2b3f // esan3 zarch stfle msa ldisp eimm dfp etf3eh highgprs vxrs ... (qemu-s390x's value)
)

// buildStack writes argc, argv, envp, auxv and their strings below stackTop (System V s390x
// ABI process start) and returns the initial stack pointer.
func buildStack() uint64 {
	block := phys.Bytes(payloadAddr+uintptr(payload.argsOff), uintptr(payload.argsSize))
	// strings: copy the whole argv/env block to the top of the stack
	strs := (stackTop - uint64(len(block)) - 64) &^ 15
	copyOut(strs, block)
	random := strs - 16
	var rnd [16]byte
	randomBytes(rnd[:])
	for rnd[0]|rnd[1]|rnd[2]|rnd[3]|rnd[4]|rnd[5]|rnd[6]|rnd[7] == 0 {
		randomBytes(rnd[:8])
	}
	for rnd[8]|rnd[9]|rnd[10]|rnd[11]|rnd[12]|rnd[13]|rnd[14]|rnd[15] == 0 {
		randomBytes(rnd[8:])
	}
	copyOut(random, rnd[:])
	// count argv and envp
	argc, envc := 0, 0
	i := 0
	for ; i < len(block) && block[i] != 0; argc++ {
		for block[i] != 0 {
			i++
		}
		i++
	}
	i++ // the extra NUL ending argv
	envStart := i
	for ; i < len(block) && block[i] != 0; envc++ {
		for i < len(block) && block[i] != 0 {
			i++
		}
		i++
	}
	words := uint64(1 + argc + 1 + envc + 1 + 2*6)
	sp := (random - words*8) &^ 15
	p := sp
	writeU64(p, uint64(argc))
	p += 8
	i = 0
	for k := 0; k < argc; k++ {
		writeU64(p, strs+uint64(i))
		p += 8
		for block[i] != 0 {
			i++
		}
		i++
	}
	writeU64(p, 0)
	p += 8
	i = envStart
	for k := 0; k < envc; k++ {
		writeU64(p, strs+uint64(i))
		p += 8
		for block[i] != 0 {
			i++
		}
		i++
	}
	writeU64(p, 0)
	p += 8
	aux := [...]uint64{atPagesz, pageSize, atHwcap, hwcapS390, atRandom, random, atSecure, 0, atSysinfoEhdr, vdsoBase, atNull, 0}
	for _, v := range aux {
		writeU64(p, v)
		p += 8
	}
	return sp
}
