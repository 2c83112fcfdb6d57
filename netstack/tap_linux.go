package netstack

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenTap attaches to the Linux tap interface name through /dev/net/tun with IFF_TAP|IFF_NO_PI
// (creating a non-persistent one if it does not exist) and returns the fd as a non-blocking file
// that Go's poller watches. This is the same call sequence the loader makes against metal's
// /dev/net/tun.
func OpenTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netstack: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netstack: tap %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netstack: TUNSETIFF %q: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netstack: tap %q: set non-blocking: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}
