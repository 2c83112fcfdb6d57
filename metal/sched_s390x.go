package metal

import "unsafe"

// Threads and scheduling: round-robin over a fixed tcb array, time-sliced by the clock
// comparator, an enabled wait when nothing is runnable. The kernel runs each interruption to
// completion with interrupts masked, so check-then-block needs no locks.

const (
	quantumTOD    = todPerSecond / 100   // 10 ms time slice (the runtime's forcePreemptNS)
	sleepFloorTOD = todPerSecond / 10000 // 100 µs minimum sleep: damps sysmon's 20 µs polling
)

var (
	threads     [maxThreads]tcb
	idleTCB     tcb
	curTCB      uintptr // address of the tcb the trap stubs save into (entry_s390x.s)
	curIdx      int     // index of the current thread in threads, -1 when idle
	nextTid     int32
	liveThreads int
	rotate      bool   // give the CPU to the next runnable thread at the next dispatch
	sliceStart  uint64 // TOD when the current thread was switched in
	bootTOD     uint64
	switches    uint64
	maxUsed     int    // threads[maxUsed:] have never been used: loops stop there
	lastCKC     uint64 // value last loaded into the clock comparator (0 = none yet)

	// dispatch's O(1) common case (the same thread continues, no deadline due) needs these two,
	// kept by every change of a thread's state (newThread, block, wake, expire, exitThread).
	nRunnable    int    // threads in threadRunnable
	nextDeadline uint64 // no blocked thread's deadline is earlier (0 = none); may be stale-early
)

func current() *tcb { return &threads[curIdx] }

func tcbAddr(t *tcb) uintptr { return uintptr(unsafe.Pointer(t)) }

// newThread returns a free tcb with a fresh tid, or nil.
func newThread() *tcb {
	for i := range threads {
		t := &threads[i]
		if t.state == threadFree {
			if i >= maxUsed {
				maxUsed = i + 1
			}
			*t = tcb{}
			nextTid++
			t.tid = nextTid
			t.state = threadRunnable
			t.altFlags = ssDisable
			liveThreads++
			nRunnable++
			return t
		}
	}
	return nil
}

// block parks t until woken or until deadline (TOD, 0 = none); on a timeout the syscall
// returns timeoutResult.
func block(t *tcb, kind uint8, deadline uint64, timeoutResult int64) int64 {
	if t.state == threadRunnable {
		nRunnable--
	}
	if deadline != 0 && (nextDeadline == 0 || deadline < nextDeadline) {
		nextDeadline = deadline
	}
	t.state = threadBlocked
	t.waitKind = kind
	t.deadline = deadline
	t.gprs[2] = uint64(timeoutResult)
	return resultNone
}

// wake makes a blocked thread runnable with syscall result r.
func wake(t *tcb, r int64) {
	if t.state != threadRunnable {
		nRunnable++
	}
	t.state = threadRunnable
	t.waitKind = waitNone
	t.deadline = 0
	t.gprs[2] = uint64(r)
}

func deadlineAfter(ns uint64) uint64 {
	d := nsToTOD(ns)
	if d < sleepFloorTOD {
		d = sleepFloorTOD
	}
	return stckf() + d
}

// expire wakes every thread whose deadline has passed and returns the earliest deadline left.
// dispatch calls it only when nextDeadline has passed.
func expire(now uint64) uint64 {
	next := uint64(0)
	for i := 0; i < maxUsed; i++ {
		t := &threads[i]
		if t.state != threadBlocked || t.deadline == 0 {
			continue
		}
		if t.deadline <= now {
			nRunnable++
			t.state = threadRunnable
			t.waitKind = waitNone
			t.deadline = 0
			continue
		}
		if next == 0 || t.deadline < next {
			next = t.deadline
		}
	}
	return next
}

// pick chooses the next thread: the current one unless it blocked or must rotate.
func pick() int {
	if curIdx >= 0 && !rotate && threads[curIdx].state == threadRunnable {
		return curIdx
	}
	start := curIdx + 1
	for k := 0; k < maxUsed; k++ {
		i := (start + k) % maxUsed
		if threads[i].state == threadRunnable {
			return i
		}
	}
	return -1
}

// othersRunnable reports whether a thread other than the runnable thread i could run.
func othersRunnable(i int) bool {
	return nRunnable > 1 || (nRunnable == 1 && threads[i].state != threadRunnable)
}

// dispatch runs the next thread or idles. It is the tail of every handler; never returns.
// The common case — the current thread continues and no deadline is due — scans no thread.
func dispatch() {
	for {
		now := stckf()
		next := nextDeadline
		if next != 0 && next <= now {
			next = expire(now)
			nextDeadline = next
		}
		checkSched()
		if curIdx >= 0 && now >= sliceStart+quantumTOD && othersRunnable(curIdx) {
			// The slice ran out inside a handler (a syscall or another interruption): re-arming the
			// clock below would cancel its pending comparator interruption and grant a fresh slice.
			rotate = true
		}
		i := pick()
		rotate = false
		if i < 0 {
			if nicIdle() {
				continue // frames came while RX interruptions were off: their readers run
			}
			if next == 0 && !nicCanWake() {
				deadlock()
			}
			if next == 0 {
				next = ^uint64(0) // only an I/O interruption can end this wait
			}
			armClock(now, next)
			curIdx = -1
			curTCB = tcbAddr(&idleTCB)
			idleWait()
		}
		t := &threads[i]
		if i != curIdx {
			switches++
			sliceStart = now
		}
		curIdx = i
		curTCB = tcbAddr(t)
		if !deliverSignals(t) {
			continue // the thread was killed or exited
		}
		ckc := next
		if othersRunnable(i) {
			end := sliceStart + quantumTOD
			if end <= now {
				end = now + quantumTOD
			}
			if ckc == 0 || end < ckc {
				ckc = end
			}
		}
		if ckc == 0 {
			ckc = ^uint64(0)
		}
		armClock(now, ckc)
		resume()
	}
}

// armClock makes the clock comparator fire no later than at (TOD; ^0 = never needed). SCKC is
// not cheap under QEMU TCG (its helper takes the iothread lock to move a QEMU timer: it was most
// of dispatch's samples in the flood profile) and the wanted value changes on nearly every trap
// (each epoll_pwait or futex timeout is a new deadline, each switch a new slice end), so the
// comparator is moved only when it must fire earlier than it is set to, or when it has passed
// (its interruption condition then stays pending until it is moved). A comparator left earlier
// than needed fires once spuriously; extTrap's dispatch then sets it right.
func armClock(now, at uint64) {
	if lastCKC != 0 && lastCKC > now && lastCKC <= at {
		return
	}
	setClockComparator(at)
	lastCKC = at
}

// deadlock stops the machine when every thread waits with no deadline and nothing (no device)
// can wake any of them.
func deadlock() {
	kline("metal: every loader thread is blocked with no timeout and no device can wake one; stopping")
	dumpThreads()
	disabledWait(waitDeadlock)
}

// extTrap handles external interruptions: the clock comparator ends a time slice or a sleep
// (dispatch sees both from the clock: an expired slice rotates, a passed deadline wakes).
func extTrap() {
	dispatch()
}

// ioTrap handles I/O interruptions: only the NIC's subclass is enabled in CR6.
func ioTrap() {
	nicInterrupt()
	dispatch()
}

func sysCloneThread(parent *tcb, flags, stack uint64) int64 {
	const cloneVM, cloneThread = 0x100, 0x10000
	if flags&(cloneVM|cloneThread) != cloneVM|cloneThread {
		return -eNOSYS // processes (fork) are not supported
	}
	c := newThread()
	if c == nil {
		return -eAGAIN
	}
	tid := c.tid
	c.gprs = parent.gprs
	c.psw = parent.psw
	c.vrs = parent.vrs
	c.fpc = parent.fpc
	c.sigmask = parent.sigmask
	c.tid = tid
	c.gprs[2] = 0
	if stack != 0 {
		c.gprs[15] = stack
	}
	return int64(tid)
}

func exitThread(t *tcb, code uint64) {
	if t.state == threadRunnable {
		nRunnable--
	}
	t.state = threadFree
	liveThreads--
	if liveThreads == 0 {
		exitGroup(int64(int32(code)))
	}
}

// exitGroup ends the machine: status 0 stops the CPU (QEMU exits 0); any other status is
// printed, then a disabled wait makes QEMU report a guest panic (rc 1 with
// -action panic=exit-failure).
func exitGroup(code int64) {
	if code == 0 {
		kflush()
		sigpStopSelf()
	}
	kprint("metal: exit status ")
	kprintDec(uint64(code & 0xff))
	kline("")
	disabledWait(waitExitFailure | uint64(code&0xff))
}

func sysNanosleepRel(t *tcb, req uint64) int64 {
	sec, ok1 := readU64(req)
	nsec, ok2 := readU64(req + 8)
	if !ok1 || !ok2 {
		return -eFAULT
	}
	ns, ok := timespecToNs(int64(sec), int64(nsec))
	if !ok {
		return -eINVAL
	}
	return block(t, waitSleep, deadlineAfter(ns), 0)
}

// Futex operations (include/uapi/linux/futex.h); only private, process-local futexes exist here.
const (
	futexWait       = 0
	futexWake       = 1
	futexWaitBitset = 9
	futexWakeBitset = 10
	futexCmdMask    = 0x7f // strips FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME
)

func sysFutexOp(t *tcb, addr, op, val, ts uint64) int64 {
	switch op & futexCmdMask {
	case futexWait, futexWaitBitset:
		v, ok := readU32(addr)
		if !ok {
			return -eFAULT
		}
		if v != uint32(val) {
			return -eAGAIN
		}
		deadline := uint64(0)
		if ts != 0 {
			sec, ok1 := readU64(ts)
			nsec, ok2 := readU64(ts + 8)
			if !ok1 || !ok2 {
				return -eFAULT
			}
			ns, ok := timespecToNs(int64(sec), int64(nsec))
			if !ok {
				return -eINVAL
			}
			if op&futexCmdMask == futexWaitBitset { // absolute CLOCK_MONOTONIC
				now := todToNs(stckf() - bootTOD)
				if ns <= now {
					return -eTIMEDOUT
				}
				ns -= now
			}
			deadline = deadlineAfter(ns)
		}
		t.waitAddr = addr
		return block(t, waitFutex, deadline, -eTIMEDOUT)
	case futexWake, futexWakeBitset:
		n := int64(0)
		for i := 0; i < maxUsed; i++ {
			w := &threads[i]
			if n >= int64(int32(val)) {
				break
			}
			if w.state == threadBlocked && w.waitKind == waitFutex && w.waitAddr == addr {
				wake(w, 0)
				n++
			}
		}
		return n
	}
	return -eNOSYS
}
