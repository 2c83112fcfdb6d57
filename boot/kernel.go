package boot

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Linux s390 parmarea and entry constants (arch/s390/include/asm/setup.h, arch/s390/boot/head.S;
// QEMU hw/s390x/ipl.c and pc-bios/s390-ccw/netmain.c).
const (
	EntryS390EP = 0x10000 // start address of an image carrying "S390EP" at 0x10008
	EntryIPLPSW = 0       // IPL semantics: metal loads the short PSW at absolute 0

	LowcoreSize = 0x2000 // lowcore of CPU 0; only the kernel image may overlay it

	offS390EP      = 0x10008 // "S390EP" magic (head.S, after the jump at 0x10000)
	ParmArea       = 0x10400 // PARMAREA
	OffInitrdStart = 0x10408 // INITRD_START, u64
	OffInitrdSize  = 0x10410 // INITRD_SIZE, u64
	OffMaxCmdline  = 0x10430 // MAX_COMMAND_LINE_SIZE, u64 (0 on kernels before 4.x: 896)
	OffCmdline     = 0x10480 // COMMAND_LINE

	// LegacyCmdlineSize is ARCH_COMMAND_LINE_SIZE of kernels that leave 0x10430 at 0, and the
	// limit QEMU's image applies to every kernel.
	LegacyCmdlineSize = 896

	// pswShort is bit 12 of a PSW: the ESA/390 short format an IPL PSW must have (PoP, "Initial
	// Program Loading"); pswAddr31 is the address part of a short PSW.
	pswShort  = 0x0008000000000000
	pswAddr31 = 0x7fffffff
)

// HeaderSize is how much of a kernel image ParseKernel reads: everything up to the command line.
const HeaderSize = OffCmdline

// Kernel is what the image's first bytes say. The zero Kernel is not a checked image.
type Kernel struct {
	// Entry is EntryS390EP or EntryIPLPSW.
	Entry uint64
	// Why says how the entry was found: `"S390EP" at 0x10008` or `IPL PSW 0x0008000080000200 at 0`.
	Why string
	// Size is the image size in bytes.
	Size uint64
	// MaxCmdline is the largest command line the kernel accepts, NUL included (0x10430, else 896).
	MaxCmdline uint64
	// HasParmArea says the image contains the whole parmarea, [0x10400, 0x10480+MaxCmdline).
	HasParmArea bool
}

// ParseKernel checks a kernel image from its first bytes (at least min(size, HeaderSize)) and
// its total size. An image with neither "S390EP" nor an IPL PSW is refused: netipl never starts
// unchecked bytes.
func ParseKernel(head []byte, size uint64) (Kernel, error) {
	if uint64(len(head)) > size {
		head = head[:size]
	}
	if uint64(len(head)) < min(size, HeaderSize) {
		return Kernel{}, fmt.Errorf("boot: kernel header: %d bytes given, %d needed", len(head), min(size, HeaderSize))
	}
	if size < 8 {
		return Kernel{}, fmt.Errorf("boot: kernel image of %d bytes is too small to boot", size)
	}
	k := Kernel{Size: size, MaxCmdline: LegacyCmdlineSize}
	if size >= OffMaxCmdline+8 {
		if m := binary.BigEndian.Uint64(head[OffMaxCmdline:]); m != 0 {
			k.MaxCmdline = m
		}
	}
	k.HasParmArea = size >= OffCmdline && k.MaxCmdline <= size-OffCmdline
	switch psw := binary.BigEndian.Uint64(head); {
	case size >= offS390EP+6 && bytes.Equal(head[offS390EP:offS390EP+6], []byte("S390EP")):
		k.Entry, k.Why = EntryS390EP, `"S390EP" at 0x10008`
	case psw&pswShort != 0 && psw&pswAddr31 != 0 && psw&pswAddr31 < size && psw&1 == 0:
		k.Entry, k.Why = EntryIPLPSW, fmt.Sprintf("IPL PSW %#016x at 0", psw)
	case psw == 0:
		return Kernel{}, fmt.Errorf("boot: kernel image of %d bytes has no \"S390EP\" at 0x10008 and no IPL PSW at 0 (zeros): not an s390x kernel", size)
	default:
		return Kernel{}, fmt.Errorf("boot: kernel image of %d bytes has no \"S390EP\" at 0x10008 and no valid IPL PSW at 0 (%#016x): not an s390x kernel", size, psw)
	}
	return k, nil
}
