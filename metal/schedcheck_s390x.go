//go:build metalcheck

package metal

// checkSched verifies the bookkeeping behind dispatch's O(1) common case on every dispatch: the
// runnable count equals a scan of the threads, and no blocked thread's deadline is earlier than
// nextDeadline (a missed deadline would be a thread that never wakes). Built only with
// -tags metalcheck (metal/schedcheck_test.go boots the ABI probe on such a build); a violation
// prints one line and stops in the kernel-bug disabled wait.
func checkSched() {
	n := 0
	for i := 0; i < maxUsed; i++ {
		t := &threads[i]
		switch t.state {
		case threadRunnable:
			n++
		case threadBlocked:
			if t.deadline != 0 && (nextDeadline == 0 || t.deadline < nextDeadline) {
				kline("metal: scheduler check: a blocked thread's deadline is earlier than nextDeadline")
				disabledWait(waitKernelBug)
			}
		}
	}
	if n != nRunnable {
		kprint("metal: scheduler check: nRunnable ")
		kprintDec(uint64(nRunnable))
		kprint(", runnable threads ")
		kprintDec(uint64(n))
		kline("")
		disabledWait(waitKernelBug)
	}
}
