package metal

import (
	"unsafe"

	"netipl/metal/internal/phys"
)

// SCLP (service-call logical processor) commands and the SCCB, per QEMU hw/s390x/sclp.c and
// Linux drivers/s390/char/sclp.h. QEMU completes commands synchronously under TCG and KVM; metal
// still checks the response code and never waits without bound.
const (
	sclpReadSCPInfo       = 0x00020001
	sclpReadSCPInfoForced = 0x00120001
	sclpWriteEventMask    = 0x00780005
	sclpWriteEventData    = 0x00760005

	sccbRespNormal   = 0x0020
	sccbRespReadDone = 0x0010

	evTypeASCII = 0x1a      // ASCII console data
	evMaskASCII = 0x40      // 0x80000000 >> (0x1a-1)
	sccbMaxData = 4096 - 16 // SCCB header 8 + event header 6, rounded
)

var sccbArea [2 * pageSize]byte // one page-aligned SCCB below 2 GiB, outside the lowcore

func sccbAddr() uintptr {
	return (uintptr(unsafe.Pointer(&sccbArea)) + pageSize - 1) &^ (pageSize - 1)
}

func sclpCall(cmd uint32, length uint16) (resp uint16) {
	s := sccbAddr()
	phys.Store16(s, length)
	phys.Store8(s+2, 0) // function code
	phys.Store8(s+3, 0) // control mask
	phys.Store8(s+4, 0)
	phys.Store8(s+5, 0)
	phys.Store16(s+6, 0) // response code
	for i := 0; i < 1000; i++ {
		switch servc(cmd, s) {
		case 0: // command initiated (QEMU completes it before SERVC ends)
			return phys.Load16(s + 6)
		case 1: // not defined for SERVC
			return 0
		case 2: // busy: try again
			continue
		case 3: // SCLP not operational
			return 0
		}
	}
	return 0
}

// sclpEnableConsole tells the SCLP metal sends ASCII console events.
func sclpEnableConsole() {
	s := sccbAddr()
	phys.Zero(s, 32)
	phys.Store16(s+8, 0)            // reserved
	phys.Store16(s+10, 4)           // mask length
	phys.Store32(s+12, 0)           // cp receive mask
	phys.Store32(s+16, evMaskASCII) // cp send mask
	sclpCall(sclpWriteEventMask, 28)
}

// sclpWrite sends b (at most sccbMaxData bytes) to the ASCII console.
func sclpWrite(b []byte) {
	s := sccbAddr()
	n := copy(phys.Bytes(s+14, sccbMaxData), b)
	phys.Store16(s+8, uint16(6+n)) // event buffer length
	phys.Store8(s+10, evTypeASCII)
	phys.Store8(s+11, 0)
	phys.Store16(s+12, 0)
	sclpCall(sclpWriteEventData, uint16(14+n))
}

// scpLoadparm is the machine's loadparm (EBCDIC) from Read SCP Info (bytes 24–31 of the
// ReadInfo SCCB, QEMU include/hw/s390x/sclp.h); scpLoadparmValid says the command succeeded.
var (
	scpLoadparm      [8]byte
	scpLoadparmValid bool
)

// sclpReadInfo issues Read SCP Info, keeps the loadparm in scpLoadparm and returns the guest
// RAM size in bytes (0 when the command fails).
func sclpReadInfo() uint64 {
	s := sccbAddr()
	for _, cmd := range [2]uint32{sclpReadSCPInfoForced, sclpReadSCPInfo} {
		phys.Zero(s, pageSize)
		resp := sclpCall(cmd, pageSize)
		if resp != sccbRespReadDone && resp != sccbRespNormal {
			continue
		}
		copy(scpLoadparm[:], phys.Bytes(s+24, 8))
		scpLoadparmValid = true
		rnmax := uint64(phys.Load16(s + 8))
		rnsize := uint64(phys.Load8(s + 10))
		if rnmax == 0 {
			rnmax = phys.Load64(s + 104)
		}
		if rnsize == 0 {
			rnsize = uint64(phys.Load32(s + 100))
		}
		if rnmax != 0 && rnsize != 0 {
			return rnmax * rnsize << 20
		}
	}
	return 0
}
