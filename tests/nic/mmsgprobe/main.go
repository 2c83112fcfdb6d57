// Command mmsgprobe is the guest program of tests/nic's TestRecvmmsg: it runs as the loader on
// metal and checks recvmmsg(2) on the tap (docs/nic.md §3), printing kvm-unit-tests style lines
// (PASS:/FAIL:/SUMMARY:). The host feeds frames through a -netdev stream socket: the line
// "MMSG: send N" asks it for the next N frames, "MMSG: send N after D" after a pause of D.
// Frame k (counting from 0 over the whole run) is mmsgframe.Frame(k): numbered, of length mmsgframe.Size(k),
// broadcast, EtherType 0x88b5 — the test's host side builds the same bytes.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"netipl/tests/nic/mmsgframe"
)

// mmsghdr is struct mmsghdr: struct msghdr and the received length, 64 bytes on s390x.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

const (
	msgTrunc    = 0x20
	msgDontwait = 0x40
	msgPeek     = 0x02
	badAddr     = 0x10 // in metal's unmapped low page: any access faults
)

var failures int

func report(ok bool, format string, args ...any) {
	if ok {
		fmt.Printf("PASS: mmsg: "+format+"\n", args...)
		return
	}
	failures++
	fmt.Printf("FAIL: mmsg: "+format+"\n", args...)
}

// recvmmsg is the raw system call: n, or the errno.
func recvmmsg(fd int, msgs unsafe.Pointer, vlen uint64, flags int, timeout unsafe.Pointer) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(msgs), uintptr(vlen), uintptr(flags), uintptr(timeout), 0)
	return int(n), e
}

// recvmmsgAt is recvmmsg with msgvec given as an address (one that faults).
func recvmmsgAt(fd int, msgvec uintptr, vlen uint64, flags int) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), msgvec, uintptr(vlen), uintptr(flags), 0, 0)
	return int(n), e
}

// batch is vlen messages of one buffer each (bufSize bytes).
type batch struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
}

func newBatch(vlen, bufSize int) *batch {
	b := &batch{msgs: make([]mmsghdr, vlen), iovs: make([]unix.Iovec, vlen), bufs: make([][]byte, vlen)}
	for i := range b.msgs {
		b.bufs[i] = make([]byte, bufSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufSize)
		b.msgs[i].hdr.Iov = &b.iovs[i]
		b.msgs[i].hdr.SetIovlen(1)
		b.msgs[i].len = 0xdeadbeef
		b.msgs[i].hdr.Flags = 0x7777
	}
	return b
}

func (b *batch) ptr() unsafe.Pointer { return unsafe.Pointer(&b.msgs[0]) }

// waitReadable waits up to 5 s for the tap to be readable.
func waitReadable(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Ppoll(pfd, &unix.Timespec{Sec: 5}, nil)
	return err == nil && n == 1
}

// gather receives frames first..first+n-1 with non-blocking calls of vlen messages, checking
// each frame, msg_len and msg_flags; it returns the number of calls that returned frames.
func gather(fd int, first, n, vlen int, what string) int {
	b := newBatch(vlen, 2048)
	calls, k := 0, first
	for k < first+n {
		got, e := recvmmsg(fd, b.ptr(), uint64(vlen), msgDontwait, nil)
		if e == unix.EAGAIN {
			if !waitReadable(fd) {
				report(false, "%s: frames %d..%d: only %d arrived within 5 s", what, first, first+n-1, k-first)
				return calls
			}
			continue
		}
		if e != 0 || got < 1 || got > vlen {
			report(false, "%s: recvmmsg(vlen %d) = %d, %v", what, vlen, got, e)
			return calls
		}
		calls++
		for i := 0; i < got; i++ {
			m := b.msgs[i]
			want := mmsgframe.Frame(k)
			if int(m.len) != len(want) || m.hdr.Flags != 0 || !bytes.Equal(b.bufs[i][:m.len], want) {
				report(false, "%s: message %d of %d: msg_len %d, msg_flags %#x, want frame %d (%d bytes, flags 0); got seq %d",
					what, i, got, m.len, m.hdr.Flags, k, len(want), binary.BigEndian.Uint32(b.bufs[i][14:]))
				return calls
			}
			k++
		}
	}
	report(true, "%s: frames %d..%d in order and intact in %d calls of vlen %d", what, first, first+n-1, calls, vlen)
	return calls
}

func main() {
	err := run()
	if err != nil {
		fmt.Println(err)
		failures++
	}
	fmt.Printf("SUMMARY: mmsg: %d failures\n", failures)
	if failures > 0 {
		os.Exit(1)
	}
}

func run() error {
	if s := unsafe.Sizeof(mmsghdr{}); s != 64 {
		return fmt.Errorf("mmsgprobe: sizeof(struct mmsghdr) = %d, want 64", s)
	}
	one := newBatch(1, 2048)
	_, e := recvmmsg(1, one.ptr(), 1, 0, nil)
	report(e == unix.ENOTSOCK, "recvmmsg on the console fd: %v (want ENOTSOCK)", e)
	_, e = recvmmsg(900, one.ptr(), 1, 0, nil)
	report(e == unix.EBADF, "recvmmsg on a closed fd: %v (want EBADF)", e)

	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mmsgprobe: open /dev/net/tun: %w", err)
	}
	_, e = recvmmsg(fd, one.ptr(), 1, msgDontwait, nil)
	report(e == unix.EBADFD, "recvmmsg before TUNSETIFF: %v (want EBADFD)", e)
	ifr, err := unix.NewIfreq("eth0")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("mmsgprobe: TUNSETIFF: %w", err)
	}
	fmt.Println("MMSG: nic up")

	// Argument errors, with nothing queued (the host sends only when asked).
	n, e := recvmmsg(fd, one.ptr(), 0, msgDontwait, nil)
	report(n == 0 && e == 0, "vlen 0: %d, %v (want 0)", n, e)
	n, e = recvmmsg(fd, one.ptr(), 1, msgDontwait, nil)
	report(e == unix.EAGAIN, "empty queue with MSG_DONTWAIT on a blocking fd: %d, %v (want EAGAIN)", n, e)
	ts := unix.Timespec{Sec: 1}
	_, e = recvmmsg(fd, one.ptr(), 1, msgDontwait, unsafe.Pointer(&ts))
	report(e == unix.EINVAL, "a timeout: %v (want EINVAL: only NULL is supported)", e)
	_, e = recvmmsg(fd, one.ptr(), 1, msgDontwait|msgPeek, nil)
	report(e == unix.EINVAL, "MSG_PEEK: %v (want EINVAL)", e)
	_, e = recvmmsgAt(fd, badAddr, 1, msgDontwait)
	report(e == unix.EFAULT, "msgvec at an unmapped address: %v (want EFAULT)", e)
	big := newBatch(1, 2048)
	big.msgs[0].hdr.SetIovlen(1025)
	_, e = recvmmsg(fd, big.ptr(), 1, msgDontwait, nil)
	report(e == unix.EMSGSIZE, "msg_iovlen 1025: %v (want EMSGSIZE)", e)
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	_, e = recvmmsg(fd, one.ptr(), 1, 0, nil)
	report(e == unix.EAGAIN, "empty queue on a non-blocking fd: %v (want EAGAIN)", e)
	if err := unix.SetNonblock(fd, false); err != nil {
		return err
	}

	// Blocking: the call waits for the first frame, then returns what is there.
	k := 0
	b := newBatch(64, 2048)
	fmt.Println("MMSG: send 40 after 300ms")
	start := time.Now()
	n, e = recvmmsg(fd, b.ptr(), 64, 0, nil)
	waited := time.Since(start)
	ok := e == 0 && n >= 1 && n <= 40 && waited >= 200*time.Millisecond
	for i := 0; ok && i < n; i++ {
		ok = int(b.msgs[i].len) == mmsgframe.Size(k+i) && bytes.Equal(b.bufs[i][:b.msgs[i].len], mmsgframe.Frame(k+i)) && b.msgs[i].hdr.Flags == 0
	}
	report(ok, "blocking fd: the call waited %v for the first frame and returned %d frames, %v", waited.Round(time.Millisecond), n, e)
	if e != 0 || n < 1 {
		return fmt.Errorf("mmsgprobe: blocking recvmmsg failed")
	}
	k += n
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	gather(fd, k, 40-k, 16, "after the blocking call")
	k = 40

	// msg_namelen: 0 when msg_name is set (a tap has no address), untouched without msg_name (as
	// Linux); msg_controllen 0.
	fmt.Println("MMSG: send 2")
	waitReadable(fd)
	time.Sleep(200 * time.Millisecond)
	b = newBatch(2, 2048)
	var name [16]byte
	b.msgs[0].hdr.Name = &name[0]
	b.msgs[0].hdr.Namelen = 16
	b.msgs[1].hdr.Namelen = 0x55
	b.msgs[1].hdr.SetControllen(99)
	n, e = recvmmsg(fd, b.ptr(), 2, msgDontwait, nil)
	report(e == 0 && n == 2 && b.msgs[0].hdr.Namelen == 0 && b.msgs[1].hdr.Namelen == 0x55 && b.msgs[1].hdr.Controllen == 0 &&
		bytes.Equal(b.bufs[1][:b.msgs[1].len], mmsgframe.Frame(k+1)),
		"msg_namelen with msg_name %d (want 0), without %#x (want 0x55 untouched), msg_controllen %d (want 0): %d, %v",
		b.msgs[0].hdr.Namelen, b.msgs[1].hdr.Namelen, b.msgs[1].hdr.Controllen, n, e)
	k += 2

	// A batch larger than one call (vlen 7 over 50 frames), and a huge vlen (capped).
	fmt.Println("MMSG: send 50")
	if calls := gather(fd, k, 50, 7, "vlen 7"); calls > 0 && calls < 8 {
		report(false, "vlen 7: 50 frames in %d calls: a call returned more than vlen", calls)
	}
	k += 50
	fmt.Println("MMSG: send 5")
	waitReadable(fd)
	time.Sleep(200 * time.Millisecond) // let all 5 arrive
	b = newBatch(1024, 2048)
	n, e = recvmmsg(fd, b.ptr(), 1<<31, msgDontwait, nil)
	report(e == 0 && n == 5 && bytes.Equal(b.bufs[4][:b.msgs[4].len], mmsgframe.Frame(k+4)), "vlen 2^31 (capped at 1024) with 5 frames queued: %d, %v (want 5)", n, e)
	k += 5
	n, e = recvmmsg(fd, b.ptr(), 1<<32+1, msgDontwait, nil) // vlen is an unsigned int: 1
	report(e == unix.EAGAIN, "vlen 2^32+1 (an unsigned int: 1) on an empty queue: %d, %v (want EAGAIN)", n, e)

	// Truncation: two iovecs of 10 and 50 bytes per message.
	fmt.Println("MMSG: send 4")
	waitReadable(fd)
	time.Sleep(200 * time.Millisecond)
	for round, flags := range []int{msgDontwait, msgDontwait | msgTrunc} {
		if round == 1 {
			fmt.Println("MMSG: send 4")
			waitReadable(fd)
			time.Sleep(200 * time.Millisecond)
		}
		msgs := make([]mmsghdr, 4)
		parts := make([][2][]byte, 4)
		iovs := make([][2]unix.Iovec, 4)
		for i := range msgs {
			parts[i] = [2][]byte{make([]byte, 10), make([]byte, 50)}
			for j := range 2 {
				iovs[i][j].Base = &parts[i][j][0]
				iovs[i][j].SetLen(len(parts[i][j]))
			}
			msgs[i].hdr.Iov = &iovs[i][0]
			msgs[i].hdr.SetIovlen(2)
		}
		n, e = recvmmsg(fd, unsafe.Pointer(&msgs[0]), 4, flags, nil)
		ok = e == 0 && n == 4
		for i := 0; ok && i < n; i++ {
			f := mmsgframe.Frame(k + i)
			wantLen, wantFlags := min(len(f), 60), int32(0)
			if len(f) > 60 {
				wantFlags = msgTrunc
				if flags&msgTrunc != 0 {
					wantLen = len(f)
				}
			}
			got := append(append([]byte(nil), parts[i][0]...), parts[i][1]...)
			ok = int(msgs[i].len) == wantLen && msgs[i].hdr.Flags == wantFlags && bytes.Equal(got[:min(len(f), 60)], f[:min(len(f), 60)])
			if !ok {
				fmt.Printf("mmsgprobe: message %d: msg_len %d, msg_flags %#x; want %d, %#x\n", i, msgs[i].len, msgs[i].hdr.Flags, wantLen, wantFlags)
			}
		}
		report(ok, "4 frames scattered over 10+50-byte iovecs, flags %#x: %d, %v; msg_len and MSG_TRUNC as specified", flags, n, e)
		k += 4
	}

	// A fault in the second message: the first is returned, the second frame stays queued and
	// the next call reports EFAULT for it; a good call then gets it intact.
	fmt.Println("MMSG: send 3")
	waitReadable(fd)
	time.Sleep(200 * time.Millisecond)
	b = newBatch(3, 2048)
	*(*uintptr)(unsafe.Pointer(&b.iovs[1].Base)) = badAddr
	n, e = recvmmsg(fd, b.ptr(), 3, msgDontwait, nil)
	report(e == 0 && n == 1 && bytes.Equal(b.bufs[0][:b.msgs[0].len], mmsgframe.Frame(k)), "bad buffer in message 2 of 3: %d, %v (want 1)", n, e)
	n, e = recvmmsg(fd, unsafe.Pointer(&b.msgs[1]), 2, msgDontwait, nil)
	report(e == unix.EFAULT, "the same bad buffer first: %d, %v (want EFAULT)", n, e)
	k++
	gather(fd, k, 2, 4, "after EFAULT")
	k += 2

	// Interleaved with read(2): each takes the next frame.
	fmt.Println("MMSG: send 3")
	buf := make([]byte, 2048)
	waitReadable(fd)
	time.Sleep(200 * time.Millisecond)
	m, err := unix.Read(fd, buf)
	report(err == nil && bytes.Equal(buf[:m], mmsgframe.Frame(k)), "read(2) then recvmmsg: read got frame %d: %v", k, err)
	gather(fd, k+1, 2, 8, "recvmmsg after read(2)")
	return nil
}
