package boot

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exec hands the plan to metal: the parmarea patches must already be written into m. It calls
// kexec_load(entry, segments, KEXEC_ARCH_S390) and reboot(LINUX_REBOOT_CMD_KEXEC); on success it
// does not return.
func Exec(p *Plan, m *Mem) error {
	segs := m.Segments()
	if len(segs) == 0 {
		return fmt.Errorf("boot: kexec: nothing was loaded")
	}
	ks := make([]kexecSegment, len(segs))
	for i, s := range segs {
		ks[i] = kexecSegment{unsafe.Pointer(&s.Buf[0]), uintptr(len(s.Buf)), uintptr(s.Mem.Start), uintptr(s.Mem.Size)}
	}
	_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, uintptr(p.Entry()), uintptr(len(ks)),
		uintptr(unsafe.Pointer(&ks[0])), unix.KEXEC_ARCH_S390, 0, 0)
	if errno != 0 {
		return fmt.Errorf("boot: kexec_load(entry %#x, %d segments): %w", p.Entry(), len(ks), errno)
	}
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
	runtime.KeepAlive(ks)
	runtime.KeepAlive(segs)
	return fmt.Errorf("boot: reboot(LINUX_REBOOT_CMD_KEXEC): %w", err)
}
