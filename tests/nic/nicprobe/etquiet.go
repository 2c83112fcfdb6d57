package main

import (
	"fmt"

	"golang.org/x/sys/unix"

	"netipl/netstack"
)

// etQuiet checks the edge-triggered epoll contract of the tap with frames left unread (the host
// side is TestEpollETUnread): a frame gives one edge; waiting again without reading gives none
// (metal's idle path must not report the same frames again, or a waiter that does not read spins
// through it); a new frame gives a new edge although the old one is still unread (RX
// interruptions must be on while the CPU waits).
func etQuiet() error {
	tap, err := netstack.OpenTap("eth0")
	if err != nil {
		return fmt.Errorf("nicprobe: et: open tap: %w", err)
	}
	defer tap.Close()
	fd := int(tap.Fd())
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("nicprobe: et: epoll_create1: %w", err)
	}
	defer unix.Close(ep)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("nicprobe: et: epoll_ctl: %w", err)
	}
	evs := make([]unix.EpollEvent, 4)
	wait := func(ms int) int {
		for {
			n, err := unix.EpollWait(ep, evs, ms)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return -1
			}
			return n
		}
	}
	// The registration's first report (EPOLL_CTL_ADD): an edge with the ring still empty is no
	// event, so this returns when the host's first frame is in.
	fmt.Println("ET: ready")
	n := wait(20000)
	report(n == 1, "epoll ET: the first frame gives an edge (%d events)", n)
	again, which := 0, ""
	for i := 0; i < 3; i++ {
		if k := wait(300); k != 0 {
			again++
			which += fmt.Sprintf(" wait %d: %d", i, k)
		}
	}
	report(again == 0, "epoll ET: waiting again without reading gives no edge (%d of 3 waits returned events%s)", again, which)
	fmt.Println("ET: quiet")
	n = wait(20000)
	report(n == 1, "epoll ET: a second frame, the first unread, gives an edge (%d events)", n)
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("nicprobe: et: non-blocking mode: %w", err)
	}
	frames := 0
	buf := make([]byte, 2048)
	for {
		if _, err := unix.Read(fd, buf); err != nil {
			break
		}
		frames++
	}
	report(frames == 2, "epoll ET: %d frames read, want 2", frames)
	return nil
}
