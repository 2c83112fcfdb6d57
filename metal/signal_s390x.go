package metal

import "netipl/metal/internal/phys"

type sigactionT struct {
	handler, flags, restorer, mask uint64
}

var sigactions [nSig + 1]sigactionT

func sysRtSigactionSig(sig, act, oact, size uint64) int64 {
	if size != 8 || sig < 1 || sig > nSig {
		return -eINVAL
	}
	if act != 0 && (sig == sigKILL || sig == sigSTOP) {
		return -eINVAL
	}
	sa := &sigactions[sig]
	if oact != 0 {
		if !writeU64(oact, sa.handler) || !writeU64(oact+8, sa.flags) ||
			!writeU64(oact+16, sa.restorer) || !writeU64(oact+24, sa.mask) {
			return -eFAULT
		}
	}
	if act != 0 {
		var n sigactionT
		var ok [4]bool
		n.handler, ok[0] = readU64(act)
		n.flags, ok[1] = readU64(act + 8)
		n.restorer, ok[2] = readU64(act + 16)
		n.mask, ok[3] = readU64(act + 24)
		if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
			return -eFAULT
		}
		*sa = n
	}
	return 0
}

const unblockable = 1<<(sigKILL-1) | 1<<(sigSTOP-1)

func sysRtSigprocmaskHow(t *tcb, how, set, oset, size uint64) int64 {
	if size != 8 {
		return -eINVAL
	}
	old := t.sigmask
	if set != 0 {
		m, ok := readU64(set)
		if !ok {
			return -eFAULT
		}
		switch how {
		case 0: // SIG_BLOCK
			t.sigmask |= m
		case 1: // SIG_UNBLOCK
			t.sigmask &^= m
		case 2: // SIG_SETMASK
			t.sigmask = m
		default:
			return -eINVAL
		}
		t.sigmask &^= unblockable
	}
	if oset != 0 && !writeU64(oset, old) {
		return -eFAULT
	}
	return 0
}

func onAltStack(t *tcb, sp uint64) bool {
	return t.altFlags&ssDisable == 0 && sp > t.altSP && sp <= t.altSP+t.altSize
}

// sysSigaltstackSS implements sigaltstack; stack_t is {ss_sp u64, ss_flags i32, pad, ss_size u64}.
func sysSigaltstackSS(t *tcb, ss, oss uint64) int64 {
	if oss != 0 {
		fl := uint64(t.altFlags)
		if onAltStack(t, t.gprs[15]) {
			fl = ssOnstack
		}
		var b [24]byte
		putBE64(b[0:], t.altSP)
		putBE64(b[8:], fl<<32)
		putBE64(b[16:], t.altSize)
		if !copyOut(oss, b[:]) {
			return -eFAULT
		}
	}
	if ss != 0 {
		var b [24]byte
		if !copyIn(b[:], ss) {
			return -eFAULT
		}
		if onAltStack(t, t.gprs[15]) {
			return -ePERM
		}
		sp, fl, size := be64(b[0:]), be64(b[8:])>>32, be64(b[16:])
		switch {
		case fl&ssDisable != 0:
			t.altSP, t.altSize, t.altFlags = 0, 0, ssDisable
		case fl != 0:
			return -eINVAL
		case size < minSigStk:
			return -eNOMEM
		default:
			t.altSP, t.altSize, t.altFlags = sp, size, 0
		}
	}
	return 0
}

func threadByTid(tid uint64) *tcb {
	for i := range threads {
		t := &threads[i]
		if t.state != threadFree && uint64(t.tid) == tid {
			return t
		}
	}
	return nil
}

func sysTgkillSig(tid, sig uint64) int64 {
	if sig > nSig {
		return -eINVAL
	}
	t := threadByTid(tid)
	if t == nil {
		return -eSRCH
	}
	if sig != 0 {
		t.pending |= sigBit(sig)
	}
	return 0
}

// raiseSync queues a synchronous fault signal on t (delivered before t runs again).
func raiseSync(t *tcb, sig uint64, code int32, addr uint64) {
	t.pending |= sigBit(sig)
	t.segvCode = code
	t.segvAddr = addr
}

// deliverSignals builds a frame for the lowest deliverable pending signal of t. It returns
// false when t no longer runs (killed).
func deliverSignals(t *tcb) bool {
	p := t.pending &^ t.sigmask
	sync := t.pending & (sigBit(sigSEGV) | sigBit(sigILL) | sigBit(sigFPE)) & t.sigmask
	if sync != 0 && t.segvCode > 0 {
		// A fault with its signal blocked: Linux kills the process.
		p = sync
	}
	if p == 0 {
		return true
	}
	sig := uint64(1)
	for p&1 == 0 {
		p >>= 1
		sig++
	}
	t.pending &^= sigBit(sig)
	sa := sigactions[sig]
	syncSig := sig == sigSEGV || sig == sigILL || sig == sigFPE
	code, addr := int32(-6), uint64(0) // SI_TKILL
	if syncSig && t.segvCode > 0 {
		code, addr = t.segvCode, t.segvAddr
		t.segvCode = 0
	}
	if t.sigmask&sigBit(sig) != 0 || sa.handler == sigDFL {
		if sa.handler == sigDFL && defaultIgnored(sig) {
			return true
		}
		fatalSignal(t, sig, code, addr)
	}
	if sa.handler == sigIGN {
		if syncSig && code > 0 {
			fatalSignal(t, sig, code, addr)
		}
		return true
	}
	if t.inHandler {
		// One live frame per thread: metal keeps the interrupted vector registers in one slot.
		// The Go runtime blocks every signal in its handler, so this means a fault in it.
		fatalSignal(t, sig, code, addr)
	}
	frame := signalFrame(t.gprs[15], t.altSP, t.altSize, sa.flags&saOnstack != 0 && t.altFlags&ssDisable == 0)
	var f [sfSize]byte
	putBE64(f[0:], t.gprs[15]) // backchain
	f[sfSVCInsn] = svcRtSigreturn >> 8
	f[sfSVCInsn+1] = svcRtSigreturn & 0xff
	i := f[sfInfo:]
	putBE32(i[siSigno:], uint32(sig))
	putBE32(i[siCode:], uint32(code))
	putBE64(i[siAddr:], addr)
	u := f[sfUcontext:]
	putBE64(u[ucStackSP:], t.altSP)
	putBE32(u[ucStackFl:], t.altFlags)
	putBE64(u[ucStackSz:], t.altSize)
	putBE64(u[ucPSWMask:], t.psw[0])
	putBE64(u[ucPSWAddr:], t.psw[1])
	for r := 0; r < 16; r++ {
		putBE64(u[ucGregs+8*r:], t.gprs[r])
		putBE64(u[ucFPRegs+8*r:], t.vrs[2*r])
	}
	putBE32(u[ucFPC:], t.fpc)
	putBE64(u[ucSigmask:], t.sigmask)
	if !copyOut(frame, f[:]) {
		fatalSignal(t, sigSEGV, segvMapErr, frame)
	}
	t.vrsSig = t.vrs
	t.inHandler = true
	if sa.flags&saNodefer == 0 {
		t.sigmask |= sigBit(sig)
	}
	t.sigmask |= sa.mask &^ unblockable
	if sa.flags&saResethand != 0 {
		sigactions[sig].handler = sigDFL
	}
	t.gprs[2] = sig
	t.gprs[3] = frame + sfInfo
	t.gprs[4] = frame + sfUcontext
	t.gprs[14] = vdsoBase + vdsoSigreturnOff // not frame+sfSVCInsn: no code on stack pages (vdso.go)
	if sa.flags&saRestorer != 0 {
		t.gprs[14] = sa.restorer
	}
	t.gprs[15] = frame
	t.psw[0] = pswUser
	t.psw[1] = sa.handler
	return true
}

func be32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func putBE32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// sysRtSigreturnFrame restores the context saved by deliverSignals (the frame is at R15).
func sysRtSigreturnFrame(t *tcb) int64 {
	frame := t.gprs[15]
	var u [ucSize]byte
	if !copyIn(u[:], frame+sfUcontext) {
		fatalSignal(t, sigSEGV, segvMapErr, frame)
	}
	mask := be64(u[ucPSWMask:])
	t.psw[0] = pswUser | mask&pswUserBits
	t.psw[1] = be64(u[ucPSWAddr:])
	if t.inHandler {
		t.vrs = t.vrsSig
	}
	for r := 0; r < 16; r++ {
		t.gprs[r] = be64(u[ucGregs+8*r:])
		t.vrs[2*r] = be64(u[ucFPRegs+8*r:])
	}
	t.fpc = be32(u[ucFPC:])
	t.sigmask = be64(u[ucSigmask:]) &^ unblockable
	t.inHandler = false
	return resultNone
}

// fatalSignal ends the machine because the loader dies of sig (no handler, blocked, or the
// frame could not be written). Never returns.
func fatalSignal(t *tcb, sig uint64, code int32, addr uint64) {
	kprint("metal: loader thread ")
	kprintDec(uint64(t.tid))
	kprint(" killed by signal ")
	kprintDec(sig)
	kprint(" (code ")
	kprintDec(uint64(uint32(code)))
	kprint(", address ")
	kprintHexShort(addr)
	kline(")")
	dumpTCB(t)
	kprint("metal: exit status ")
	kprintDec(128 + sig)
	kline("")
	disabledWait(waitFatalSignal)
}

// pgmTrap handles program interruptions of the loader: demand paging, or a signal.
func pgmTrap() {
	t := current()
	code := phys.Load16(lcPgmCode) & 0x7f // without PER (0x80)
	teid := phys.Load64(lcTEID)
	switch code {
	case pgmSegment, pgmPage, pgmRegionSecond, pgmRegionThird, pgmASCEType, pgmRegionFirst:
		// nullifying: the PSW points at the instruction, which runs again after the fix
		va := teid &^ 0xfff
		write := teid&0xc00 == 0x400
		switch fault(va, write) {
		case faultOK:
		case faultAccErr:
			raiseSync(t, sigSEGV, segvAccErr, va)
		case faultOOM:
			kprint("metal: out of memory: no free frame for loader address ")
			kprintHexShort(va)
			kprint(" (")
			kprintDec(ramSize >> 20)
			kline(" MiB of RAM)")
			dumpTCB(t)
			kline("metal: exit status 137")
			disabledWait(waitFatalSignal)
		default:
			raiseSync(t, sigSEGV, segvMapErr, va)
		}
	case pgmProtection:
		// the PSW was advanced; rewind to the faulting instruction. A write to a page the VMA
		// allows writing (an image page after mprotect) is resolved by copy-on-write and retried.
		t.psw[1] -= uint64(phys.Load16(lcPgmILC) & 0x6)
		va := teid &^ 0xfff
		if teid&0x4 == 0 || fault(va, true) != faultOK {
			raiseSync(t, sigSEGV, segvAccErr, va)
		}
	case pgmOperation, pgmPrivileged, pgmExecute, pgmSpecification:
		t.psw[1] -= uint64(phys.Load16(lcPgmILC) & 0x6)
		raiseSync(t, sigILL, illIllOpc, t.psw[1])
	case pgmFixedDivide:
		raiseSync(t, sigFPE, fpeIntDiv, t.psw[1])
	case pgmFixedOverflow:
		raiseSync(t, sigFPE, fpeIntOvf, t.psw[1])
	case pgmData:
		raiseSync(t, sigFPE, 0x7, t.psw[1]) // FPE_FLTINV-ish; DXC at lcDXC
	default:
		raiseSync(t, sigILL, illIllOpc, t.psw[1])
	}
	dispatch()
}
