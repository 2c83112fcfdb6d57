package metal

import (
	"unsafe"

	"netipl/metal/internal/phys"
	"netipl/virtio"
)

// The boot NIC (docs/nic.md): the virtio-net-ccw driver of package virtio behind /dev/net/tun
// with Linux tap semantics (IFF_TAP|IFF_NO_PI: one raw Ethernet frame per read or write), plus
// /sys/class/net/eth0/address and the /sys/class/net/eth0/device link. The NIC is brought up on
// first use (open of /dev/net/tun or of /sys/class/net/eth0/address); its completions arrive as
// I/O interruptions on subclass nicISC.

const (
	nicISC = 3 // I/O-interruption subclass of the NIC's subchannel

	nicUnprobed = 0
	nicUp       = 1
	nicFailed   = 2

	tunSetIff = 0x400454ca // TUNSETIFF = _IOW('T', 202, int)
	iffTap    = 0x0002     // IFF_TAP
	iffNoPI   = 0x1000     // IFF_NO_PI

	pollNval = 0x020 // POLLNVAL

	sysReadlinkat = 298
	sysPpoll      = 302

	// recvmmsg(2) on the tap (tapRecvmmsg): struct mmsghdr is struct msghdr (56 bytes on
	// s390x: msg_name 0, msg_namelen 8, msg_iov 16, msg_iovlen 24, msg_control 32,
	// msg_controllen 40, msg_flags 48) + unsigned int msg_len at 56, padded to 64.
	mmsghdrSize    = 64
	msgTrunc       = 0x20       // MSG_TRUNC
	msgDontwait    = 0x40       // MSG_DONTWAIT
	msgWaitforone  = 0x10000    // MSG_WAITFORONE
	msgCmsgCloexec = 0x40000000 // MSG_CMSG_CLOEXEC
	uioMaxIOV      = 1024       // UIO_MAXIOV: most iovecs per message, most messages per call

	eNOTSOCK = 88 // ENOTSOCK: recvmmsg on any fd but the tap
	eMSGSIZE = 90 // EMSGSIZE: msg_iovlen > UIO_MAXIOV
)

var (
	nic      virtio.Net[virtio.Machine]
	nicDMA   [virtio.DMASize + pageSize]byte // in metal's image, so below 2 GiB as CCWs need
	nicState uint8
	nicFD    int64 // the attached tap fd + 1, 0 when none
	nicMsg   [160]byte
)

// nicEnsure brings the NIC up once. On failure it prints the driver's reason line
// ("No virtio-net device found (IPL device 0.0.0007)") and reports false from then on.
func nicEnsure() bool {
	switch nicState {
	case nicUp:
		return true
	case nicFailed:
		return false
	}
	dma := (uint64(uintptr(unsafe.Pointer(&nicDMA))) + pageSize - 1) &^ (pageSize - 1)
	ipl := virtio.IPLDevice{Valid: facts.iplValid, SSID: facts.ssid, DevNo: facts.devno}
	st := nic.Init(virtio.Machine{}, dma, ipl, nicISC)
	if st != virtio.OK {
		nicState = nicFailed
		kprintBytes(nicMsg[:nic.Reason(nicMsg[:], st)])
		kline("")
		return false
	}
	nicState = nicUp
	facts.nicUp = true
	facts.mac = nic.MAC()
	facts.nicBus = nic.BusID()
	setCR6(0x80000000 >> nicISC)
	return true
}

// nicReset stops the NIC's DMA before a kernel handoff.
func nicReset() {
	if nicState == nicUp {
		nic.Reset()
		setCR6(0)
		nicState = nicFailed
	}
}

// nicInterrupt handles an I/O interruption if it is the NIC's and wakes whoever it concerns.
func nicInterrupt() {
	if nicState != nicUp || phys.Load32(lcSubchannelID) != nic.SubchannelWord() {
		return
	}
	nicWake(nic.Interrupt())
}

// nicWake performs the tap reads or writes of the threads blocked in them that ev (from an
// interruption or from polling) makes possible, wakes them, and tells epoll and ppoll waiters
// (TX space is an edge for the tap's registrations; frames are by their arrival count).
func nicWake(ev virtio.Events) {
	if ev == 0 {
		return
	}
	nicWakeBlocked(ev)
	switch {
	case nicFD != 0 && ev&virtio.EventWritable != 0:
		fdChanged(nicFD - 1)
	default:
		// New frames are an edge by the arrival count (epollCollect): an interruption for a
		// frame a waiter was already told of (taken late, after the waiter's epoll_pwait found
		// it) is none.
		pollWake()
	}
}

// nicWakeBlocked performs the tap reads or writes of the threads blocked in them that ev makes
// possible and wakes them.
func nicWakeBlocked(ev virtio.Events) {
	for i := 0; i < maxUsed; i++ {
		t := &threads[i]
		if t.state != threadBlocked {
			continue
		}
		switch {
		case t.waitKind == waitTapRead && ev&virtio.EventReadable != 0:
			if r := tapRead(t.waitBuf, t.waitN, t.waitVec); r != -eAGAIN {
				wake(t, r)
			}
		case t.waitKind == waitTapRecvmmsg && ev&virtio.EventReadable != 0:
			if r := tapRecvmmsg(t.waitBuf, t.waitN, t.waitAddr); r != -eAGAIN {
				wake(t, r)
			}
		case t.waitKind == waitTapWrite && ev&virtio.EventWritable != 0:
			if r := tapWrite(t.waitBuf, t.waitN, t.waitVec); r != -eAGAIN {
				wake(t, r)
			}
		}
	}
}

// nicIdle runs when nothing is runnable, before the enabled wait: it announces the RX buffers
// given back since the last notification, which a starved device waits for (virtio.RxKickBatch),
// and switches RX interruptions back on (virtio ArmRX). When frames wait, it wakes their
// readers: threads blocked in a tap read, level-triggered pollers, and edge-triggered epoll
// registrations only for frames that came since their last report (epollCollect's arrival count;
// the same frames reported again would turn an idle loop whose waiter does not read into a
// spin). It reports true when a thread became runnable: RX interruptions go off again (the CPU
// stays busy) and the caller dispatches. Otherwise they stay on and the CPU waits: the next frame
// interrupts and is an edge.
func nicIdle() bool {
	if nicState != nicUp {
		return false
	}
	nic.FlushRX()
	if !nic.ArmRX() {
		return false
	}
	before := nRunnable
	nicWake(virtio.EventReadable)
	if nRunnable == before {
		return false
	}
	nic.QuietRX()
	return true
}

// nicArrivals returns the NIC's RX arrival count if fd is the attached tap.
func nicArrivals(fd int64) (uint64, bool) {
	if nicState != nicUp || nicFD == 0 || fd != nicFD-1 {
		return 0, false
	}
	return nic.RxArrivals(), true
}

// nicCanWake reports whether an I/O interruption could still wake a blocked thread (for
// deadlock detection): one blocked in a read or write of the tap, or in ppoll or epoll_pwait
// over a set that holds the tap (or another epoll fd, which might). A thread polling only
// eventfds cannot be woken by the NIC.
func nicCanWake() bool {
	if nicState != nicUp || nicFD == 0 {
		return false
	}
	tap := nicFD - 1
	for i := 0; i < maxUsed; i++ {
		t := &threads[i]
		if t.state != threadBlocked {
			continue
		}
		switch t.waitKind {
		case waitTapRead, waitTapRecvmmsg, waitTapWrite:
			return true
		case waitPoll:
			for k := uint64(0); k < t.waitN; k++ {
				var pfd [4]byte
				if !copyIn(pfd[:], t.waitBuf+8*k) {
					return true // cannot tell: do not call it a deadlock
				}
				fd := int64(int32(uint32(pfd[0])<<24 | uint32(pfd[1])<<16 | uint32(pfd[2])<<8 | uint32(pfd[3])))
				if fd == tap || (fdGet(fd) != nil && fdGet(fd).kind == fdEpoll) {
					return true
				}
			}
		case waitEpoll:
			for k := range epregs {
				r := &epregs[k]
				if r.used && uint64(r.epfd) == t.waitAddr && (int64(r.fd) == tap || fds[r.fd].kind == fdEpoll) {
					return true
				}
			}
		}
	}
	return false
}

// nicReady returns the poll events of the attached tap.
func nicReady() uint32 {
	r := uint32(0)
	if nic.Readable() {
		r |= epollIn
	}
	if nic.Writable() {
		r |= epollOut
	}
	return r
}

// tapRead copies the next frame into one buffer (vec false: buf, n) or an iovec array (vec
// true: buf = iov, n = count, at most uioMaxIOV used), truncating it if they are too small, and
// returns the bytes copied, -EAGAIN when no frame is waiting or -EFAULT (the frame then stays
// queued).
func tapRead(buf, n uint64, vec bool) int64 {
	f, st := nic.Peek()
	if st != virtio.OK {
		return -int64(st.Errno())
	}
	done := uint64(0)
	if !vec {
		done = min(n, uint64(len(f)))
		if !copyOut(buf, f[:done]) {
			return -eFAULT
		}
	} else {
		var ok bool
		if done, ok = scatter(f, buf, min(n, uioMaxIOV)); !ok {
			return -eFAULT
		}
	}
	nic.Release()
	return int64(done)
}

// scatter copies f over the cnt struct iovec {base, len} at iov, in order, until f or the
// buffers end, and returns the bytes copied; false if an iovec or a buffer is not accessible.
func scatter(f []byte, iov, cnt uint64) (uint64, bool) {
	done := uint64(0)
	for i := uint64(0); i < cnt && done < uint64(len(f)); i++ {
		var v [16]byte
		if !copyIn(v[:], iov+16*i) {
			return 0, false
		}
		m := min(be64(v[8:]), uint64(len(f))-done)
		if !copyOut(be64(v[:]), f[done:done+m]) {
			return 0, false
		}
		done += m
	}
	return done, true
}

// tapRecvmmsg implements recvmmsg(2) on the tap without waiting: it fills the vlen (1 ≤ vlen ≤
// uioMaxIOV) struct mmsghdr at msgvec with one frame each, in order, and returns how many it
// filled. Each frame is scattered over its message's iovecs; msg_len is the bytes copied (the
// frame's length with MSG_TRUNC in flags, as Linux's packet sockets), msg_flags is MSG_TRUNC
// when the frame did not fit (it is dropped like read's), msg_controllen is 0 and so is
// msg_namelen if msg_name is set (a tap has no address and no control data). It returns
// -EAGAIN when no frame waits, and -EFAULT (a message or buffer not accessible) or -EMSGSIZE (msg_iovlen > uioMaxIOV) when the
// first message fails; a later message's failure ends the batch there, its frame stays queued
// and the next call reports the error (Linux's rule).
func tapRecvmmsg(msgvec, vlen, flags uint64) int64 {
	n := uint64(0)
	for ; n < vlen; n++ {
		if r := tapRecvmsg(msgvec+mmsghdrSize*n, flags); r < 0 {
			if n > 0 {
				break
			}
			return r
		}
	}
	return int64(n)
}

// tapRecvmsg receives the next frame into the struct mmsghdr at va (tapRecvmmsg) and returns 0,
// or -EAGAIN, -EFAULT, -EMSGSIZE (the frame then stays queued).
func tapRecvmsg(va, flags uint64) int64 {
	var h [mmsghdrSize]byte
	if !copyIn(h[:], va) {
		return -eFAULT
	}
	iovlen := be64(h[24:])
	if iovlen > uioMaxIOV {
		return -eMSGSIZE
	}
	f, st := nic.Peek()
	if st != virtio.OK {
		return -int64(st.Errno())
	}
	done, ok := scatter(f, be64(h[16:]), iovlen)
	if !ok {
		return -eFAULT
	}
	msgLen, msgFlags := uint32(done), uint32(0)
	if done < uint64(len(f)) {
		msgFlags = msgTrunc
		if flags&msgTrunc != 0 {
			msgLen = uint32(len(f))
		}
	}
	if be64(h[0:]) != 0 {
		putBE32(h[8:], 0) // msg_namelen: a tap has no address (Linux writes it only with msg_name)
	}
	putBE64(h[40:], 0) // msg_controllen
	putBE32(h[48:], msgFlags)
	putBE32(h[56:], msgLen)
	if !copyOut(va+8, h[8:60]) { // one write for the four fields (the rest is written back unchanged)
		return -eFAULT
	}
	nic.Release()
	return 0
}

// sysRecvmmsgFD implements recvmmsg(fd, msgvec, vlen, flags, timeout) for the tap: ENOTSOCK for
// every other fd (how a program tells metal's tap from Linux's, which is no socket either but
// returns ENOTSOCK); EINVAL for a timeout (only NULL is supported) or flags other than
// MSG_DONTWAIT, MSG_WAITFORONE, MSG_TRUNC and MSG_CMSG_CLOEXEC; vlen 0 returns 0 and vlen is
// capped at uioMaxIOV, as on Linux. A blocking fd without MSG_DONTWAIT waits for the first frame
// and then returns what is there, as with MSG_WAITFORONE (Linux waits for vlen messages).
func sysRecvmmsgFD(t *tcb, fd int64, msgvec, vlen, flags, timeout uint64) int64 {
	d := fdGet(fd)
	switch {
	case d == nil:
		return -eBADF
	case d.kind == fdTunClone:
		return -eBADFD // opened /dev/net/tun but no TUNSETIFF yet, as read
	case d.kind != fdTap:
		return -eNOTSOCK
	}
	flags = uint64(uint32(flags))
	if timeout != 0 || flags&^(msgDontwait|msgWaitforone|msgTrunc|msgCmsgCloexec) != 0 {
		return -eINVAL
	}
	vlen = min(uint64(uint32(vlen)), uioMaxIOV)
	if vlen == 0 {
		return 0
	}
	r := tapRecvmmsg(msgvec, vlen, flags)
	if r != -eAGAIN || d.flags&oNonblock != 0 || flags&msgDontwait != 0 {
		return r
	}
	t.waitBuf, t.waitN, t.waitAddr = msgvec, vlen, flags
	return block(t, waitTapRecvmmsg, 0, 0)
}

// tapWrite sends one frame gathered from one buffer or an iovec array (as tapRead). It returns
// the frame length, -EAGAIN when every TX buffer is with the device, -EINVAL for a frame shorter
// than an Ethernet header, -EMSGSIZE for one longer than virtio.MaxFrame, or -EFAULT.
func tapWrite(buf, n uint64, vec bool) int64 {
	total := n
	if vec {
		total = 0
		for i := uint64(0); i < n && i < 1024; i++ {
			l, ok := readU64(buf + 16*i + 8)
			if !ok {
				return -eFAULT
			}
			total += l
		}
	}
	if total < virtio.MinFrame || total > virtio.MaxFrame {
		return -int64(nic.Send(int(min(total, 1<<20))).Errno()) // counts the rejection
	}
	b, st := nic.TxBuffer()
	if st != virtio.OK {
		return -int64(st.Errno())
	}
	if !vec {
		if !copyIn(b[:total], buf) {
			return -eFAULT
		}
	} else {
		done := uint64(0)
		for i := uint64(0); i < n && i < 1024; i++ {
			base, ok1 := readU64(buf + 16*i)
			l, ok2 := readU64(buf + 16*i + 8)
			if !ok1 || !ok2 || !copyIn(b[done:done+l], base) {
				return -eFAULT
			}
			done += l
		}
	}
	if st := nic.Send(int(total)); st != virtio.OK {
		return -int64(st.Errno())
	}
	return int64(total)
}

// tapSyscall handles the system calls that concern the NIC: read/readv/write/writev on the
// attached tap, recvmmsg, ioctl(TUNSETIFF), ppoll and readlinkat of
// /sys/class/net/eth0/device. ok is false for anything else.
func tapSyscall(t *tcb, nr, a1, a2, a3, a4, a5 uint64) (r int64, ok bool) {
	switch nr {
	case sysRecvmmsg:
		return sysRecvmmsgFD(t, int64(int32(a1)), a2, a3, a4, a5), true
	case sysRead, sysReadv, sysWrite, sysWritev:
		fd := int64(int32(a1))
		d := fdGet(fd)
		if d == nil || (d.kind != fdTap && d.kind != fdTunClone) {
			return 0, false
		}
		if d.kind == fdTunClone {
			return -eBADFD, true // opened /dev/net/tun but no TUNSETIFF yet
		}
		vec := nr == sysReadv || nr == sysWritev
		write := nr == sysWrite || nr == sysWritev
		if write {
			r = tapWrite(a2, a3, vec)
		} else {
			r = tapRead(a2, a3, vec)
		}
		if r != -eAGAIN || d.flags&oNonblock != 0 {
			return r, true
		}
		t.waitBuf, t.waitN, t.waitVec = a2, a3, vec
		if write {
			return block(t, waitTapWrite, 0, 0), true
		}
		return block(t, waitTapRead, 0, 0), true
	case sysIoctl:
		fd := int64(int32(a1))
		d := fdGet(fd)
		if d == nil || d.kind != fdTunClone || a2 != tunSetIff {
			return 0, false
		}
		var ifr [18]byte // struct ifreq: name[16], then short flags
		if !copyIn(ifr[:], a3) {
			return -eFAULT, true
		}
		flags := uint16(ifr[16])<<8 | uint16(ifr[17])
		if flags != iffTap|iffNoPI {
			return -eINVAL, true // only IFF_TAP|IFF_NO_PI (no PI header, no vnet header, one queue)
		}
		if nicFD != 0 {
			return -eBUSY, true
		}
		name := [16]byte{'e', 't', 'h', '0'}
		if !copyOut(a3, name[:]) {
			return -eFAULT, true
		}
		d.kind = fdTap
		nicFD = fd + 1
		return 0, true
	case sysPpoll:
		return sysPpollFDs(t, a1, a2, a3), true
	case sysReadlinkat:
		var p [64]byte
		n := copyPath(p[:], a2)
		if n < 0 || string(p[:n]) != "/sys/class/net/eth0/device" {
			return 0, false
		}
		if !nicEnsure() {
			return -eNOENT, true
		}
		var link [32]byte
		l := putStr(link[:], 0, "../../../")
		l += nic.BusID().Put(link[l:])
		l = int(min(uint64(l), a4))
		if !copyOut(a3, link[:l]) {
			return -eFAULT, true
		}
		return int64(l), true
	}
	return 0, false
}

// copyPath copies the NUL-terminated loader string at va into p and returns its length, or -1
// when it does not fit or cannot be read.
func copyPath(p []byte, va uint64) int {
	for n := 0; n < len(p); n++ {
		pa, ok := userAddr(va+uint64(n), false)
		if !ok {
			return -1
		}
		c := phys.Load8(pa)
		if c == 0 {
			return n
		}
		p[n] = c
	}
	return -1
}

// sysPpollFDs implements ppoll(fds, nfds, tmo, sigmask) for eventfds, epoll fds and the tap
// (sigmask is ignored: signals are delivered as without it).
func sysPpollFDs(t *tcb, fds, nfds, tmo uint64) int64 {
	if nfds > maxFDs {
		return -eINVAL
	}
	n := pollScan(fds, nfds)
	if n != 0 {
		return n
	}
	deadline := uint64(0)
	if tmo != 0 {
		sec, ok1 := readU64(tmo)
		nsec, ok2 := readU64(tmo + 8)
		if !ok1 || !ok2 {
			return -eFAULT
		}
		if sec == 0 && nsec == 0 {
			return 0
		}
		deadline = deadlineAfter(sec*1e9 + nsec)
	}
	t.waitBuf, t.waitN = fds, nfds
	return block(t, waitPoll, deadline, 0)
}

// pollScan fills in the revents of each struct pollfd {int fd; short events; short revents}
// and returns how many have events, or -EFAULT.
func pollScan(fds, nfds uint64) int64 {
	n := int64(0)
	for i := uint64(0); i < nfds; i++ {
		var pfd [8]byte
		if !copyIn(pfd[:], fds+8*i) {
			return -eFAULT
		}
		fd := int64(int32(uint32(pfd[0])<<24 | uint32(pfd[1])<<16 | uint32(pfd[2])<<8 | uint32(pfd[3])))
		events := uint32(pfd[4])<<8 | uint32(pfd[5])
		rev := uint32(0)
		if fd >= 0 {
			if fdGet(fd) == nil {
				rev = pollNval
			} else {
				rev = fdReady(fd) & (events | epollErr | epollHup)
			}
		}
		pfd[6], pfd[7] = byte(rev>>8), byte(rev)
		if !copyOut(fds+8*i+6, pfd[6:8]) {
			return -eFAULT
		}
		if rev != 0 {
			n++
		}
	}
	return n
}
