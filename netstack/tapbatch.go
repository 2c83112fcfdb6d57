package netstack

import (
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/rawfile"
)

// tapReadBatch is how many frames the tap link asks for per recvmmsg(2). Under TCG every system
// call on metal costs a trap, metal's dispatch and the runtime's bookkeeping; a TCP burst from
// slirp is 44 frames (tcpMergeFrames), so with 64 a burst takes two calls (the second finds
// EAGAIN) where read(2) took 45. docs/nic.md §4.3 has the measurements.
const tapReadBatch = 64

// tapFrames reads the tap's frames for the link's reader, one at a time to the caller but up to
// tapReadBatch per system call: recvmmsg(2) into as many views, which metal's tap supports (and
// a datagram socket pair, the tests' tap). Linux's tap is no socket: its first ENOTSOCK (or an
// ENOSYS) switches the reader to read(2), one frame per call, for good.
//
// A frame stays the reader's until the caller takes it (take); one not taken (a truncated frame,
// or one whose payload the TCP coalescer copied) leaves its view to be filled again. Views of a batch not filled are kept for the next call;
// release frees them all. Only the link's reader goroutine uses a tapFrames.
type tapFrames struct {
	views  []*buffer.View    // slot i: the view the next call fills (nil: allocate one)
	msgs   []rawfile.MMsgHdr // slot i's message: one iovec, iovs[i]
	iovs   []unix.Iovec      // slot i's buffer: views[i]
	count  int               // frames the last call filled
	next   int               // slot of the next frame to hand out
	cur    int               // slot of the frame handed out last
	stale  int               // slots [0, stale) may lack a view of size bytes (handed out since)
	size   int               // the views' size
	byRead bool              // recvmmsg is unsupported: read(2) into slot 0

	// recvmmsg, if set, replaces the system call (tests: short batches, ENOTSOCK).
	recvmmsg func(fd int, msgs []rawfile.MMsgHdr) (int, unix.Errno)
}

// read returns the next frame: its view (the reader's until take) and length. At the end of a
// batch it makes the next system call with views of size bytes; errors are those of read(2)
// (EAGAIN: no frame waits; EINTR: call again), and a frame of length 0 is end of file.
func (r *tapFrames) read(fd int, size int) (*buffer.View, int, error) {
	if r.next < r.count {
		r.cur = r.next
		r.next++
		return r.views[r.cur], int(r.msgs[r.cur].Len), nil
	}
	r.count, r.next, r.cur = 0, 0, 0
	if !r.byRead {
		n, errno := r.readBatch(fd, size)
		switch errno {
		case 0:
			if n <= 0 { // no message (not expected with vlen ≥ 1): end of file, as read's 0
				return r.views[0], 0, nil
			}
			r.count, r.next = min(n, tapReadBatch), 1
			return r.views[0], int(r.msgs[0].Len), nil
		case unix.ENOTSOCK, unix.ENOSYS:
			r.byRead = true // Linux's tap: one frame per read(2) from now on
			for i := 1; i < len(r.views); i++ {
				if r.views[i] != nil {
					r.views[i].Release()
					r.views[i] = nil
				}
			}
		default:
			return nil, 0, errno
		}
	}
	v := r.view(0, size)
	n, err := unix.Read(fd, v.AsSlice())
	return v, n, err
}

// take hands the frame read last over to the caller: its slot gets a new view for the next call.
func (r *tapFrames) take() { r.views[r.cur] = nil }

// view returns slot i's view, a fresh one of size bytes if it has none or one of another size
// (the MTU changed).
func (r *tapFrames) view(i, size int) *buffer.View {
	if r.views == nil {
		r.views = make([]*buffer.View, tapReadBatch)
		r.msgs = make([]rawfile.MMsgHdr, tapReadBatch)
		r.iovs = make([]unix.Iovec, tapReadBatch)
	}
	v := r.views[i]
	if v != nil && v.Size() == size {
		return v
	}
	if v != nil {
		v.Release()
	}
	v = buffer.NewViewSize(size)
	r.views[i] = v
	r.iovs[i] = rawfile.IovecFromBytes(v.AsSlice())
	r.msgs[i].Msg.Iov = &r.iovs[i]
	r.msgs[i].Msg.SetIovlen(1)
	return v
}

// readBatch fills up to tapReadBatch views with one recvmmsg and returns how many it filled.
func (r *tapFrames) readBatch(fd int, size int) (int, unix.Errno) {
	if r.views == nil || size != r.size {
		r.stale, r.size = tapReadBatch, size
	}
	for i := 0; i < r.stale; i++ { // only the slots handed out by the last call need a view
		r.view(i, size)
	}
	r.stale = 0
	var n int
	var errno unix.Errno
	if r.recvmmsg != nil {
		n, errno = r.recvmmsg(fd, r.msgs)
	} else {
		n, errno = recvmmsg(fd, r.msgs)
	}
	if errno == 0 {
		r.stale = max(n, 1)
	}
	return n, errno
}

// recvmmsg is recvmmsg(fd, msgs, len(msgs), MSG_DONTWAIT, NULL). It is a raw system call (no
// handover of the runtime's P): it never blocks.
func recvmmsg(fd int, msgs []rawfile.MMsgHdr) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])),
		uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// release frees the views (the reader is done).
func (r *tapFrames) release() {
	for i, v := range r.views {
		if v != nil {
			v.Release()
			r.views[i] = nil
		}
	}
	r.count, r.next, r.stale = 0, 0, len(r.views)
}
