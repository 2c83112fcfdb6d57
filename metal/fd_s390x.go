package metal

import "netipl/metal/internal/phys"

// The loader's file descriptors: the console (0, 1, 2), the platform files, eventfds and
// epoll instances. Device fds (the NIC's /dev/net/tun) plug in as another kind: they report
// readiness through fdReady and call fdChanged when it changes.

const (
	fdFree = iota
	fdConsole
	fdFile
	fdEventfd
	fdEpoll
	fdTunClone // /dev/net/tun before TUNSETIFF
	fdTap      // the boot NIC (nic_s390x.go)
	fdDevMem   // /dev/mem: mmap only (handoff_s390x.go)
)

const (
	maxFDs      = 64
	maxEpollReg = 64

	oNonblock = 0x800   // O_NONBLOCK
	oCloexec  = 0x80000 // O_CLOEXEC
	oRDWR     = 2

	epollIn  = 0x001
	epollOut = 0x004
	epollErr = 0x008
	epollHup = 0x010
	epollET  = 1 << 31

	epollCtlAdd = 1
	epollCtlDel = 2
	epollCtlMod = 3
)

type fdesc struct {
	kind    uint8
	file    uint8  // fdFile: file id
	flags   uint32 // O_NONBLOCK, O_CLOEXEC as given
	off     uint64 // fdFile: read offset
	counter uint64 // fdEventfd
	sema    bool   // fdEventfd: EFD_SEMAPHORE
}

type epollReg struct {
	used   bool
	epfd   int32
	fd     int32
	events uint32
	data   uint64
	edge   bool // EPOLLET: an event happened since it was last reported
	// seen is the NIC's RX arrival count (nicArrivals) when the tap's events were last
	// reported: frames can arrive with RX interruptions off (virtio ArmRX), so a changed count
	// is an edge too (and only a changed count: metal's idle path finding frames already
	// reported gives none, as on Linux).
	seen uint64
}

var (
	fds     [maxFDs]fdesc
	epregs  [maxEpollReg]epollReg
	facts   platformFacts
	fileBuf [8192]byte // the longest file is /proc/iomem
)

func fdInit() {
	for i := 0; i < 3; i++ {
		fds[i] = fdesc{kind: fdConsole, flags: oRDWR}
	}
}

func fdGet(fd int64) *fdesc {
	if fd < 0 || fd >= maxFDs || fds[fd].kind == fdFree {
		return nil
	}
	return &fds[fd]
}

func fdAlloc(d fdesc) int64 {
	for i := range fds {
		if fds[i].kind == fdFree {
			fds[i] = d
			return int64(i)
		}
	}
	return -eMFILE
}

func sysCloseFD(fd int64) int64 {
	d := fdGet(fd)
	if d == nil {
		return -eBADF
	}
	for i := range epregs {
		r := &epregs[i]
		if r.used && (int64(r.fd) == fd || int64(r.epfd) == fd) {
			r.used = false
		}
	}
	if d.kind == fdTap {
		nicFD = 0
	}
	*d = fdesc{}
	return 0
}

func sysOpenPath(path, flags uint64) int64 {
	var p [128]byte
	n := 0
	for ; n < len(p); n++ {
		pa, ok := userAddr(path+uint64(n), false)
		if !ok {
			return -eFAULT
		}
		c := phys.Load8(pa)
		if c == 0 {
			break
		}
		p[n] = c
	}
	if n == len(p) {
		return -eNOENT
	}
	if string(p[:n]) == "/dev/net/tun" {
		if !nicEnsure() {
			return -eNODEV
		}
		return fdAlloc(fdesc{kind: fdTunClone, flags: uint32(flags)})
	}
	if string(p[:n]) == "/dev/mem" {
		return fdAlloc(fdesc{kind: fdDevMem, flags: uint32(flags)})
	}
	id := lookupFile(p[:n])
	if id == fileNone || (isNetFile(id) && !nicEnsure()) {
		return -eNOENT
	}
	if flags&3 != 0 {
		return -eACCES // read-only files
	}
	return fdAlloc(fdesc{kind: fdFile, file: id, flags: uint32(flags)})
}

func renderFD(d *fdesc) []byte {
	switch {
	case d.file == fileMeminfo:
		facts.memFree = mem.free * pageSize
	case d.file == fileIomem:
		return fileBuf[:renderIomemNow(fileBuf[:])]
	case isNetFile(d.file):
		facts.nicStats = nic.Stats()
	}
	return fileBuf[:renderFile(d.file, &facts, fileBuf[:])]
}

// sysReadFD implements read (off = ^0) and pread64.
func sysReadFD(fd int64, buf, n, off uint64) int64 {
	d := fdGet(fd)
	if d == nil {
		return -eBADF
	}
	switch d.kind {
	case fdConsole:
		return 0 // no console input yet: EOF
	case fdFile:
		content := renderFD(d)
		pos := d.off
		if off != ^uint64(0) {
			pos = off
		}
		if pos >= uint64(len(content)) {
			return 0
		}
		m := min(n, uint64(len(content))-pos)
		if !copyOut(buf, content[pos:pos+m]) {
			return -eFAULT
		}
		if off == ^uint64(0) {
			d.off += m
		}
		return int64(m)
	case fdEventfd:
		if n < 8 {
			return -eINVAL
		}
		if d.counter == 0 {
			return -eAGAIN // blocking eventfd reads are not implemented (the runtime's is non-blocking)
		}
		v := d.counter
		if d.sema {
			v = 1
		}
		if !writeU64(buf, v) {
			return -eFAULT
		}
		d.counter -= v
		return 8
	}
	return -eINVAL
}

func sysWriteFD(fd int64, buf, n uint64) int64 {
	d := fdGet(fd)
	if d == nil {
		return -eBADF
	}
	switch d.kind {
	case fdConsole:
		var chunk [1024]byte
		for done := uint64(0); done < n; {
			m := min(n-done, uint64(len(chunk)))
			if !copyIn(chunk[:m], buf+done) {
				if done > 0 {
					return int64(done)
				}
				return -eFAULT
			}
			kflush()
			sclpWrite(chunk[:m])
			done += m
		}
		return int64(n)
	case fdEventfd:
		if n < 8 {
			return -eINVAL
		}
		v, ok := readU64(buf)
		if !ok {
			return -eFAULT
		}
		if v == ^uint64(0) {
			return -eINVAL
		}
		if d.counter+v < d.counter || d.counter+v == ^uint64(0) {
			return -eAGAIN
		}
		d.counter += v
		fdChanged(fd)
		return 8
	}
	return -eBADF
}

func sysWritevFD(fd int64, iov, cnt uint64) int64 {
	total := int64(0)
	for i := uint64(0); i < cnt && i < 1024; i++ {
		base, ok1 := readU64(iov + 16*i)
		l, ok2 := readU64(iov + 16*i + 8)
		if !ok1 || !ok2 {
			return -eFAULT
		}
		r := sysWriteFD(fd, base, l)
		if r < 0 {
			if total > 0 {
				return total
			}
			return r
		}
		total += r
	}
	return total
}

func sysReadvFD(fd int64, iov, cnt uint64) int64 {
	total := int64(0)
	for i := uint64(0); i < cnt && i < 1024; i++ {
		base, ok1 := readU64(iov + 16*i)
		l, ok2 := readU64(iov + 16*i + 8)
		if !ok1 || !ok2 {
			return -eFAULT
		}
		r := sysReadFD(fd, base, l, ^uint64(0))
		if r < 0 {
			if total > 0 {
				return total
			}
			return r
		}
		total += r
		if uint64(r) < l {
			break
		}
	}
	return total
}

func sysLseekFD(fd int64, off int64, whence uint64) int64 {
	d := fdGet(fd)
	if d == nil {
		return -eBADF
	}
	if d.kind != fdFile {
		return -eSPIPE
	}
	switch whence {
	case 0:
	case 1:
		off += int64(d.off)
	case 2:
		off += int64(len(renderFD(d)))
	default:
		return -eINVAL
	}
	if off < 0 {
		return -eINVAL
	}
	d.off = uint64(off)
	return off
}

// sysFstatFD fills a linux/s390x struct stat (144 bytes: mode at 24, size at 48, blksize at 104).
func sysFstatFD(fd int64, st uint64) int64 {
	d := fdGet(fd)
	if d == nil {
		return -eBADF
	}
	var b [144]byte
	mode := uint32(0o100444) // regular file, like procfs/sysfs files (size 0)
	switch d.kind {
	case fdConsole:
		mode = 0o20620 // character device
	case fdEventfd, fdEpoll:
		mode = 0o600
	case fdTunClone, fdTap:
		mode = 0o20666 // character device, like /dev/net/tun
	case fdDevMem:
		mode = 0o20640 // character device, like /dev/mem
	}
	putBE64(b[8:], uint64(fd)+1) // inode
	putBE64(b[16:], 1)           // nlink
	putBE32(b[24:], mode)
	putBE64(b[104:], pageSize)
	if !copyOut(st, b[:]) {
		return -eFAULT
	}
	return 0
}

func sysFcntlFD(fd int64, cmd, arg uint64) int64 {
	d := fdGet(fd)
	if d == nil {
		return -eBADF
	}
	switch cmd {
	case 1: // F_GETFD
		if d.flags&oCloexec != 0 {
			return 1
		}
		return 0
	case 2: // F_SETFD
		d.flags &^= oCloexec
		if arg&1 != 0 {
			d.flags |= oCloexec
		}
		return 0
	case 3: // F_GETFL
		return int64(d.flags &^ oCloexec)
	case 4: // F_SETFL
		d.flags = d.flags&^oNonblock | uint32(arg)&oNonblock
		return 0
	}
	return -eINVAL
}

func sysEventfdCreate(initval, flags uint64) int64 {
	const efdSemaphore = 1
	return fdAlloc(fdesc{kind: fdEventfd, counter: uint64(uint32(initval)), flags: uint32(flags) &^ efdSemaphore, sema: flags&efdSemaphore != 0})
}

func sysEpollCreate(flags uint64) int64 {
	if flags&^oCloexec != 0 {
		return -eINVAL
	}
	return fdAlloc(fdesc{kind: fdEpoll, flags: uint32(flags)})
}

// fdReady returns the poll events fd can report now.
func fdReady(fd int64) uint32 {
	d := fdGet(fd)
	if d == nil {
		return 0
	}
	switch d.kind {
	case fdEventfd:
		r := uint32(epollOut)
		if d.counter > 0 {
			r |= epollIn
		}
		return r
	case fdTap:
		return nicReady()
	}
	return 0
}

func sysEpollCtlOp(epfd int64, op uint64, fd int64, ev uint64) int64 {
	e := fdGet(epfd)
	d := fdGet(fd)
	if e == nil || d == nil {
		return -eBADF
	}
	if e.kind != fdEpoll || epfd == fd {
		return -eINVAL
	}
	if d.kind != fdEventfd && d.kind != fdEpoll && d.kind != fdTap {
		return -ePERM // regular files and the console are not pollable (as on Linux)
	}
	var events uint32
	var data uint64
	if op != epollCtlDel {
		w, ok1 := readU64(ev)
		dt, ok2 := readU64(ev + 8)
		if !ok1 || !ok2 {
			return -eFAULT
		}
		events, data = uint32(w>>32), dt
	}
	slot := -1
	for i := range epregs {
		if epregs[i].used && int64(epregs[i].epfd) == epfd && int64(epregs[i].fd) == fd {
			slot = i
		}
	}
	switch op {
	case epollCtlAdd:
		if slot >= 0 {
			return -eEXIST
		}
		for i := range epregs {
			if !epregs[i].used {
				epregs[i] = epollReg{used: true, epfd: int32(epfd), fd: int32(fd), events: events, data: data, edge: true}
				fdChanged(fd)
				return 0
			}
		}
		return -eNOMEM
	case epollCtlMod:
		if slot < 0 {
			return -eNOENT
		}
		epregs[slot].events, epregs[slot].data, epregs[slot].edge = events, data, true
		fdChanged(fd)
		return 0
	case epollCtlDel:
		if slot < 0 {
			return -eNOENT
		}
		epregs[slot].used = false
		return 0
	}
	return -eINVAL
}

// epollCollect writes up to max ready events of epfd to the loader's buffer at buf.
func epollCollect(epfd int64, buf, max uint64) int64 {
	n := uint64(0)
	for i := range epregs {
		r := &epregs[i]
		if !r.used || int64(r.epfd) != epfd || n >= max {
			continue
		}
		if a, ok := nicArrivals(int64(r.fd)); ok && a != r.seen {
			r.seen, r.edge = a, true
		}
		ready := fdReady(int64(r.fd)) & (r.events | epollErr | epollHup)
		if ready == 0 || (r.events&epollET != 0 && !r.edge) {
			continue
		}
		if !writeU64(buf+16*n, uint64(ready)<<32) || !writeU64(buf+16*n+8, r.data) {
			return -eFAULT
		}
		r.edge = false
		n++
	}
	return int64(n)
}

func sysEpollWaitFD(t *tcb, epfd int64, buf uint64, max, timeoutMs int64) int64 {
	e := fdGet(epfd)
	if e == nil {
		return -eBADF
	}
	if e.kind != fdEpoll || max <= 0 {
		return -eINVAL
	}
	n := epollCollect(epfd, buf, uint64(max))
	if n != 0 || timeoutMs == 0 {
		return n
	}
	deadline := uint64(0)
	if timeoutMs > 0 {
		deadline = deadlineAfter(uint64(timeoutMs) * 1e6)
	}
	t.waitAddr = uint64(epfd)
	t.waitBuf = buf
	t.waitN = uint64(max)
	return block(t, waitEpoll, deadline, 0)
}

// fdChanged is called when fd's readiness may have changed: it marks edge-triggered
// registrations and wakes epoll waiters that now have events.
func fdChanged(fd int64) {
	for i := range epregs {
		if epregs[i].used && int64(epregs[i].fd) == fd {
			epregs[i].edge = true
		}
	}
	pollWake()
}

// pollWake wakes the epoll and ppoll waiters that have events now (edges as marked, or the tap's
// arrival count).
func pollWake() {
	for i := 0; i < maxUsed; i++ {
		t := &threads[i]
		if t.state != threadBlocked {
			continue
		}
		switch t.waitKind {
		case waitEpoll:
			if n := epollCollect(int64(t.waitAddr), t.waitBuf, t.waitN); n != 0 {
				wake(t, n)
			}
		case waitPoll:
			if n := pollScan(t.waitBuf, t.waitN); n != 0 {
				wake(t, n)
			}
		}
	}
}
