package boot

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DevMem maps guest-physical memory through a memory device: /dev/mem in the guest (docs/abi.md,
// "Payload memory"), or a regular file standing in for RAM in host mode.
type DevMem struct {
	f *os.File
}

var _ Mapper = (*DevMem)(nil)

// OpenDevMem opens path (normally "/dev/mem") read-write.
func OpenDevMem(path string) (*DevMem, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("boot: open payload memory: %w", err)
	}
	return &DevMem{f: f}, nil
}

// Map implements Mapper.Map: mmap(MAP_SHARED) at offset r.Start. EBUSY (metal uses the range)
// comes back wrapping ErrBusy.
func (d *DevMem) Map(r Range) ([]byte, error) {
	b, err := unix.Mmap(int(d.f.Fd()), int64(r.Start), int(r.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("mmap %s %s: %w (%w)", d.f.Name(), r, ErrBusy, err)
	}
	if err != nil {
		return nil, fmt.Errorf("mmap %s %s: %w", d.f.Name(), r, err)
	}
	return b, nil
}

// Unmap implements Mapper.Unmap.
func (d *DevMem) Unmap(b []byte) error { return unix.Munmap(b) }

// Close closes the device (mappings stay valid until unmapped).
func (d *DevMem) Close() error { return d.f.Close() }
