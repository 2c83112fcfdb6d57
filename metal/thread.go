package metal

// Threads of the loader process. A tcb holds everything a trap stub saves and resume restores,
// plus the scheduling and signal state. The first four fields are used by entry_s390x.s through
// go_asm.h offsets.
type tcb struct {
	gprs [16]uint64 // general registers
	psw  [2]uint64  // PSW mask, address
	vrs  [64]uint64 // V0-V31 (F0-F15 are the high halves of V0-V15)
	fpc  uint32     // floating-point control

	state    uint8  // threadFree, ...
	waitKind uint8  // waitNone, ...
	tid      int32  // thread id (> 0)
	deadline uint64 // TOD value at which a blocked thread wakes (0 = none)
	waitAddr uint64 // futex address / epoll fd
	waitBuf  uint64 // epoll_pwait: user address of the events array
	waitN    uint64 // epoll_pwait: maxevents

	sigmask   uint64 // blocked signals (bit sig-1)
	pending   uint64 // pending signals (bit sig-1)
	altSP     uint64 // sigaltstack
	altSize   uint64
	altFlags  uint32
	segvAddr  uint64 // si_addr of a pending synchronous signal
	segvCode  int32  // si_code of a pending synchronous signal
	inHandler bool   // a signal frame is live (vrsSig holds the interrupted vector registers)
	vrsSig    [64]uint64
	waitVec   bool // tap read/write: waitBuf/waitN are an iovec array, not a buffer
}

// Thread states.
const (
	threadFree = iota
	threadRunnable
	threadBlocked
)

// Wait kinds of a blocked thread.
const (
	waitNone = iota
	waitSleep
	waitFutex
	waitEpoll
	waitPoll        // ppoll: waitBuf/waitN are the pollfd array
	waitTapRead     // read/readv of the tap: waitBuf/waitN/waitVec
	waitTapWrite    // write/writev of the tap
	waitTapRecvmmsg // recvmmsg of the tap: waitBuf/waitN are msgvec/vlen, waitAddr the flags
)

const maxThreads = 64
