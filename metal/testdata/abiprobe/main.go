// Command abiprobe prints the results of Linux system calls the Go runtime and the loader rely
// on, one line each; metal/qemu_test.go runs it on Linux (qemu-s390x) and on metal and
// requires identical output.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

func p(name string, v ...any) { fmt.Println(append([]any{name + ":"}, v...)...) }

func raw(nr uintptr, a ...uintptr) (uintptr, syscall.Errno) {
	var args [6]uintptr
	copy(args[:], a)
	r, _, e := syscall.Syscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5])
	return r, e
}

func main() {
	// eventfd + epoll semantics
	efd, _ := raw(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK)
	ep, _ := raw(syscall.SYS_EPOLL_CREATE1, 0)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | 1<<31, Fd: 7} // 1<<31: EPOLLET
	_, e := raw(syscall.SYS_EPOLL_CTL, ep, 1, efd, uintptr(unsafe.Pointer(&ev)))
	p("epoll_ctl add", e)
	_, e = raw(syscall.SYS_EPOLL_CTL, ep, 1, efd, uintptr(unsafe.Pointer(&ev)))
	p("epoll_ctl add again", e)
	var evs [4]syscall.EpollEvent
	n, e := raw(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&evs[0])), 4, 0, 0, 0)
	p("epoll_pwait empty", n, e)
	one := uint64(3)
	n, e = raw(syscall.SYS_WRITE, efd, uintptr(unsafe.Pointer(&one)), 8)
	p("eventfd write", n, e)
	n, e = raw(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&evs[0])), 4, 0, 0, 0)
	p("epoll_pwait ready", n, e, evs[0].Events, evs[0].Fd)
	n, e = raw(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&evs[0])), 4, 0, 0, 0)
	p("epoll_pwait ET again", n, e)
	var got uint64
	n, e = raw(syscall.SYS_READ, efd, uintptr(unsafe.Pointer(&got)), 8)
	p("eventfd read", n, e, got)
	n, e = raw(syscall.SYS_READ, efd, uintptr(unsafe.Pointer(&got)), 8)
	p("eventfd read empty", n, e)
	n, e = raw(syscall.SYS_READ, efd, uintptr(unsafe.Pointer(&got)), 4)
	p("eventfd read short", n, e)
	t := time.Now()
	n, e = raw(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&evs[0])), 4, 30, 0, 0)
	p("epoll_pwait 30ms timeout", n, e, time.Since(t) >= 30*time.Millisecond)
	_, e = raw(syscall.SYS_EPOLL_CTL, ep, 2, efd, 0)
	p("epoll_ctl del", e)
	_, e = raw(syscall.SYS_EPOLL_CTL, ep, 2, efd, 0)
	p("epoll_ctl del again", e)
	_, e = raw(syscall.SYS_EPOLL_CTL, ep, 1, 1, uintptr(unsafe.Pointer(&ev)))
	p("epoll_ctl add stdout", e == syscall.EPERM || e == 0)
	// semaphore eventfd
	sfd, _ := raw(syscall.SYS_EVENTFD2, 2, syscall.O_NONBLOCK|1)
	raw(syscall.SYS_READ, sfd, uintptr(unsafe.Pointer(&got)), 8)
	p("eventfd semaphore read", got)
	// fds
	_, e = raw(syscall.SYS_CLOSE, 55)
	p("close bad", e)
	r, e := raw(syscall.SYS_FCNTL, 1, syscall.F_GETFD)
	p("fcntl getfd", r, e)
	_, e = raw(syscall.SYS_FCNTL, 77, syscall.F_GETFD)
	p("fcntl bad", e)
	// memory
	m, e := raw(syscall.SYS_MMAP, 0) // old_mmap with NULL args block
	p("old_mmap NULL args", m == 0 || e != 0, e)
	b, err := syscall.Mmap(-1, 0, 3*4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	p("mmap", err, len(b))
	b[0], b[4096], b[8192] = 1, 2, 3
	_, e = raw(syscall.SYS_MUNMAP, uintptr(unsafe.Pointer(&b[4096])), 4096)
	p("munmap middle", e)
	p("outer pages kept", b[0], b[8192])
	_, e = raw(syscall.SYS_MUNMAP, uintptr(unsafe.Pointer(&b[1])), 4096)
	p("munmap unaligned", e)
	_, e = raw(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&b[0])), 4096, 4)
	p("madvise dontneed", e, b[0])
	// signals
	var old [4]uint64
	_, e = raw(syscall.SYS_RT_SIGACTION, 9, uintptr(unsafe.Pointer(&old)), 0, 8)
	p("sigaction SIGKILL set", e)
	_, e = raw(syscall.SYS_RT_SIGACTION, 10, 0, uintptr(unsafe.Pointer(&old)), 4)
	p("sigaction bad size", e)
	var ss [3]uint64
	_, e = raw(syscall.SYS_SIGALTSTACK, 0, uintptr(unsafe.Pointer(&ss)))
	p("sigaltstack query", e, ss[1]>>32, ss[2] > 0)
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
	select {
	case s := <-c:
		p("SIGUSR1 via kill", s)
	case <-time.After(2 * time.Second):
		p("SIGUSR1 via kill", "timeout")
	}
	tid := syscall.Gettid()
	syscall.Tgkill(syscall.Getpid(), tid, syscall.SIGUSR1)
	select {
	case s := <-c:
		p("SIGUSR1 via tgkill", s)
	case <-time.After(2 * time.Second):
		p("SIGUSR1 via tgkill", "timeout")
	}
	_, e = raw(syscall.SYS_TGKILL, 1, 99999, 0)
	p("tgkill bad tid", e)
	// time
	var ts syscall.Timespec
	_, e = raw(syscall.SYS_CLOCK_GETTIME, 99, uintptr(unsafe.Pointer(&ts)))
	p("clock_gettime bad id", e)
	var rq = syscall.Timespec{Nsec: 2e9}
	_, e = raw(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&rq)), 0)
	p("nanosleep bad nsec", e)
	var fu uint32 = 5
	_, e = raw(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&fu)), 128, 4, 0)
	p("futex wait mismatch", e)
	to := syscall.Timespec{Nsec: 20e6}
	t = time.Now()
	_, e = raw(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&fu)), 128, 5, uintptr(unsafe.Pointer(&to)))
	p("futex wait timeout", e, time.Since(t) >= 20*time.Millisecond)
	n, e = raw(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&fu)), 129, 1)
	p("futex wake none", n, e)
	// files
	f, err := os.Open("/proc/meminfo")
	p("open meminfo", err)
	fi, err := f.Stat()
	p("stat meminfo", err, fi.Mode().IsRegular())
	buf := make([]byte, 9)
	f.Read(buf)
	p("read meminfo", string(buf))
	off, err := f.Seek(0, 0)
	p("seek", off, err)
	_, err = os.Open("/nonexistent")
	p("open missing", err)
	var u syscall.Utsname
	p("uname", syscall.Uname(&u))
	// asynchronous preemption (SIGURG): with GOMAXPROCS=1 a goroutine in a loop without calls
	// can only be stopped for the GC by a signal
	runtime.GOMAXPROCS(1)
	go func() {
		for {
			spin++
		}
	}()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	p("GC with a spinning goroutine", "done")
}

var spin uint64
