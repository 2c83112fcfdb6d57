package metal

import "netipl/metal/internal/phys"

// System-call numbers of linux/s390x (arch/s390/kernel/syscalls/syscall.tbl).
const (
	sysExit             = 1
	sysRead             = 3
	sysWrite            = 4
	sysOpen             = 5
	sysClose            = 6
	sysLseek            = 19
	sysGetpid           = 20
	sysKill             = 37
	sysIoctl            = 54
	sysFcntl            = 55
	sysGetppid          = 64
	sysReboot           = 88
	sysMmap             = 90
	sysMunmap           = 91
	sysFstat            = 108
	sysClone            = 120
	sysUname            = 122
	sysMprotect         = 125
	sysReadv            = 145
	sysWritev           = 146
	sysSchedYield       = 158
	sysNanosleep        = 162
	sysPrctl            = 172
	sysRtSigreturn      = 173
	sysRtSigaction      = 174
	sysRtSigprocmask    = 175
	sysPread64          = 180
	sysSigaltstack      = 186
	sysGetuid           = 199
	sysGetgid           = 200
	sysGeteuid          = 201
	sysGetegid          = 202
	sysMadvise          = 219
	sysGettid           = 236
	sysFutex            = 238
	sysSchedGetaffinity = 240
	sysTgkill           = 241
	sysExitGroup        = 248
	sysEpollCtl         = 250
	sysEpollWait        = 251
	sysClockGettime     = 260
	sysClockGetres      = 261
	sysKexecLoad        = 277
	sysOpenat           = 288
	sysNewfstatat       = 293
	sysEpollPwait       = 312
	sysEventfd2         = 323
	sysEpollCreate1     = 327
	sysPrlimit64        = 334
	sysGetrandom        = 349
	sysRecvmmsg         = 357 // the tap only (nic_s390x.go): a batch of frames per call
)

// resultNone tells svcTrap not to store a result: the call blocked (the waker stores it) or
// it replaced the registers (rt_sigreturn, exit).
const resultNone = -1 << 62

var (
	unknownLogged [8]uint64 // syscall numbers < 512 already logged as unimplemented
	syscallCount  uint64
)

// svcTrap handles SVC interruptions from the loader. Called from entry_s390x.s.
func svcTrap() {
	t := current()
	nr := uint64(phys.Load16(lcSVCCode))
	if nr == 0 {
		nr = t.gprs[1] & 0xffff
	}
	syscallCount++
	r := syscall(t, nr, t.gprs[2], t.gprs[3], t.gprs[4], t.gprs[5], t.gprs[6], t.gprs[7])
	if r != resultNone {
		t.gprs[2] = uint64(r)
	}
	dispatch()
}

func syscall(t *tcb, nr, a1, a2, a3, a4, a5, a6 uint64) int64 {
	if r, ok := tapSyscall(t, nr, a1, a2, a3, a4, a5); ok {
		return r
	}
	switch nr {
	case sysRead:
		return sysReadFD(int64(int32(a1)), a2, a3, ^uint64(0))
	case sysPread64:
		return sysReadFD(int64(int32(a1)), a2, a3, a4)
	case sysWrite:
		return sysWriteFD(int64(int32(a1)), a2, a3)
	case sysWritev:
		return sysWritevFD(int64(int32(a1)), a2, a3)
	case sysReadv:
		return sysReadvFD(int64(int32(a1)), a2, a3)
	case sysOpen:
		return sysOpenPath(a1, a2)
	case sysOpenat:
		return sysOpenPath(a2, a3)
	case sysClose:
		return sysCloseFD(int64(int32(a1)))
	case sysLseek:
		return sysLseekFD(int64(int32(a1)), int64(a2), a3)
	case sysFstat:
		return sysFstatFD(int64(int32(a1)), a2)
	case sysNewfstatat:
		const atEmptyPath = 0x1000
		if a4&atEmptyPath != 0 {
			return sysFstatFD(int64(int32(a1)), a3)
		}
		return -eNOENT
	case sysFcntl:
		return sysFcntlFD(int64(int32(a1)), a2, a3)
	case sysIoctl:
		if fdGet(int64(int32(a1))) == nil {
			return -eBADF
		}
		return -eNOTTY
	case sysMmap:
		return doMmap(a1)
	case sysMunmap:
		return doMunmap(a1, a2)
	case sysMprotect:
		return doMprotect(a1, a2, a3)
	case sysMadvise:
		return doMadvise(a1, a2, a3)
	case sysClone:
		return sysCloneThread(t, a2, a1)
	case sysExit:
		exitThread(t, a1)
		return resultNone
	case sysExitGroup:
		exitGroup(int64(int32(a1)))
	case sysGetpid:
		return 1
	case sysGetppid:
		return 0
	case sysGettid:
		return int64(t.tid)
	case sysGetuid, sysGetgid, sysGeteuid, sysGetegid:
		return 0
	case sysSchedYield:
		rotate = true
		return 0
	case sysSchedGetaffinity:
		if a2 < 8 {
			return -eINVAL
		}
		if !writeU64(a3, 1) { // CPU 0: bit 0 of the first unsigned long
			return -eFAULT
		}
		return 8
	case sysNanosleep:
		return sysNanosleepRel(t, a1)
	case sysFutex:
		return sysFutexOp(t, a1, a2, a3, a4)
	case sysClockGettime:
		return sysClockGettimeID(a1, a2)
	case sysClockGetres:
		if a2 != 0 && (!writeU64(a2, 0) || !writeU64(a2+8, 1)) {
			return -eFAULT
		}
		return 0
	case sysGetrandom:
		return sysGetrandomBuf(a1, a2)
	case sysRtSigaction:
		return sysRtSigactionSig(a1, a2, a3, a4)
	case sysRtSigprocmask:
		return sysRtSigprocmaskHow(t, a1, a2, a3, a4)
	case sysSigaltstack:
		return sysSigaltstackSS(t, a1, a2)
	case sysRtSigreturn:
		return sysRtSigreturnFrame(t)
	case sysTgkill:
		return sysTgkillSig(a2, a3)
	case sysKill:
		if a1 != 1 && a1 != 0 {
			return -eSRCH
		}
		return sysTgkillSig(1, a2)
	case sysPrctl:
		return -eINVAL // PR_SET_VMA and friends: the Go runtime stops asking
	case sysEpollCreate1:
		return sysEpollCreate(a1)
	case sysEpollCtl:
		return sysEpollCtlOp(int64(int32(a1)), a2, int64(int32(a3)), a4)
	case sysEpollPwait, sysEpollWait:
		return sysEpollWaitFD(t, int64(int32(a1)), a2, int64(int32(a3)), int64(int32(a4)))
	case sysEventfd2:
		return sysEventfdCreate(a1, a2)
	case sysUname:
		return sysUnameBuf(a1)
	case sysReboot:
		return sysRebootCmd(a1, a2, a3)
	case sysKexecLoad:
		return sysKexecLoadSegs(a1, a2, a3, a4)
	case sysPrlimit64:
		return -eNOSYS // the syscall package ignores it; Linux semantics (RLIMIT_NOFILE raise) are not needed
	}
	if nr < 512 && unknownLogged[nr/64]&(1<<(nr%64)) == 0 {
		unknownLogged[nr/64] |= 1 << (nr % 64)
		kprint("metal: unimplemented syscall ")
		kprintDec(nr)
		kline(" returns ENOSYS")
	}
	return -eNOSYS
}

func sysUnameBuf(buf uint64) int64 {
	var u [6 * 65]byte
	copy(u[0:], "Linux")
	copy(u[65:], "netipl")
	copy(u[130:], "6.1.0-netipl")
	copy(u[195:], "#1 netipl metal")
	copy(u[260:], "s390x")
	copy(u[325:], "(none)")
	if !copyOut(buf, u[:]) {
		return -eFAULT
	}
	return 0
}

// Linux reboot(2) magic and commands (include/uapi/linux/reboot.h).
const (
	rebootMagic1   = 0xfee1dead
	rebootMagic2   = 672274793
	rebootHalt     = 0xcdef0123
	rebootPowerOff = 0x4321fedc
)

func sysRebootCmd(m1, m2, cmd uint64) int64 {
	if uint32(m1) != rebootMagic1 || uint32(m2) != rebootMagic2 {
		return -eINVAL
	}
	switch uint32(cmd) {
	case rebootPowerOff:
		kflush()
		sigpStopSelf()
	case rebootHalt:
		kline("metal: halted by the loader")
		disabledWait(waitHalt)
	case rebootKexec:
		return kexecReboot()
	}
	return -eINVAL
}

func sysClockGettimeID(id, ts uint64) int64 {
	now := stckf()
	var ns uint64
	switch id {
	case 0, 5: // CLOCK_REALTIME, CLOCK_REALTIME_COARSE
		ns = todToNs(now - todEpoch1970)
	case 1, 4, 6, 7, 2, 3: // MONOTONIC, _RAW, _COARSE, BOOTTIME, process/thread CPU time
		ns = todToNs(now - bootTOD)
	default:
		return -eINVAL
	}
	if !writeU64(ts, ns/1e9) || !writeU64(ts+8, ns%1e9) {
		return -eFAULT
	}
	return 0
}

func sysGetrandomBuf(buf, n uint64) int64 {
	if n > 1<<20 {
		n = 1 << 20
	}
	var chunk [256]byte
	for done := uint64(0); done < n; {
		m := min(n-done, uint64(len(chunk)))
		randomBytes(chunk[:m])
		if !copyOut(buf+done, chunk[:m]) {
			if done > 0 {
				return int64(done)
			}
			return -eFAULT
		}
		done += m
	}
	return int64(n)
}
