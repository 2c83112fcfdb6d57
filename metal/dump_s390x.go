package metal

import "netipl/metal/internal/phys"

// Crash dumps. Every path ends in a disabled wait: the machine stops, never hangs.

var dumping bool

func dumpRegs(r *[16]uint64) {
	for i := 0; i < 16; i++ {
		if i%4 == 0 {
			kprint("  ")
		}
		kprint("R")
		kprintDec(uint64(i))
		if i < 10 {
			kprint(" ")
		}
		kprint("=")
		kprintHex(r[i])
		if i%4 == 3 {
			kline("")
		} else {
			kprint(" ")
		}
	}
}

func dumpPSW(mask, addr uint64) {
	kprint("  PSW ")
	kprintHex(mask)
	kprint(" ")
	kprintHex(addr)
	kprintSymbol(addr)
	kline("")
}

// dumpTCB prints a loader thread's saved state.
func dumpTCB(t *tcb) {
	kprint("  thread ")
	kprintDec(uint64(t.tid))
	kline("")
	dumpPSW(t.psw[0], t.psw[1])
	dumpRegs(&t.gprs)
}

func dumpThreads() {
	for i := range threads {
		t := &threads[i]
		if t.state == threadFree {
			continue
		}
		kprint("  thread ")
		kprintDec(uint64(t.tid))
		kprint(" ")
		kprint(stateNames[t.state])
		if t.state == threadBlocked {
			kprint(" in ")
			kprint(waitNames[t.waitKind])
		}
		kprint(" at ")
		kprintHexShort(t.psw[1])
		kprintSymbol(t.psw[1])
		kline("")
	}
}

// kernelBug is entered from pgmEntry for a program check in supervisor state: a metal bug
// (including a Go panic or stack overflow, whose entry points kentry turned into traps).
func kernelBug() {
	if dumping {
		disabledWait(waitRecursiveTrap)
	}
	dumping = true
	var r [16]uint64
	copy(r[:], phys.Words(lcTrapGPRs, 16))
	code := phys.Load16(lcPgmCode)
	mask, addr := phys.Load64(lcPgmOldPSW), phys.Load64(lcPgmOldPSW+8)
	kflush()
	kprint("metal: kernel bug: program check ")
	kprintHexShort(uint64(code))
	kprint(" ILC ")
	kprintDec(uint64(phys.Load16(lcPgmILC) & 6))
	kprint(" TEID ")
	kprintHex(phys.Load64(lcTEID))
	kline("")
	dumpPSW(mask, addr)
	kprint("  at ")
	kprintHexShort(addr - uint64(phys.Load16(lcPgmILC)&6))
	kprintSymbol(addr - uint64(phys.Load16(lcPgmILC)&6))
	kprint(", called from (R14) ")
	kprintHexShort(r[14])
	kprintSymbol(r[14])
	kline("")
	dumpRegs(&r)
	if curIdx >= 0 {
		kline("  current loader thread:")
		dumpTCB(current())
	}
	disabledWait(waitKernelBug)
}

func machineCheck() {
	kline("metal: machine check")
	dumpPSW(phys.Load64(lcMcckOldPSW), phys.Load64(lcMcckOldPSW+8))
	disabledWait(waitKernelBug)
}

func restartInterrupt() {
	kline("metal: restart interruption (e.g. QEMU nmi): stopping")
	dumpPSW(phys.Load64(lcRestartOldPSW), phys.Load64(lcRestartOldPSW+8))
	if curIdx >= 0 {
		dumpTCB(current())
	}
	dumpThreads()
	disabledWait(waitKernelBug)
}

// kprintSymbol prints " <name+0xoff>" for addr when the payload's symbol table knows it.
func kprintSymbol(addr uint64) {
	if payload.symsSize == 0 {
		return
	}
	tab := phys.Bytes(payloadAddr+uintptr(payload.symsOff), uintptr(payload.symsSize))
	name, off, ok := lookupSymbol(tab, addr)
	if !ok || off > 1<<20 {
		return
	}
	kprint(" <")
	kprintBytes(name)
	kprint("+")
	kprintHexShort(off)
	kprint(">")
}

var stateNames = [...]string{threadFree: "free", threadRunnable: "runnable", threadBlocked: "blocked"}

var waitNames = [...]string{waitNone: "-", waitSleep: "nanosleep", waitFutex: "futex", waitEpoll: "epoll_pwait"}
