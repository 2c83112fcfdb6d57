package virtio

// Status is the result of a driver operation. metal has no fmt and no heap, so errors are codes
// with a static text table (style B11); Net.Reason renders the one-line reason with the device id.
type Status uint8

// Driver results. The comment gives the Linux errno metal returns for the tap fd (Status.Errno).
const (
	OK                  Status = iota
	ErrAgain                   // no frame to read / no TX slot free now (EAGAIN)
	ErrRuntFrame               // TX frame shorter than an Ethernet header (EINVAL)
	ErrOversizeFrame           // TX frame longer than MaxFrame (EMSGSIZE)
	ErrNotReady                // the driver is not initialised or was reset (ENODEV)
	ErrDMAAlign                // the DMA region is not 4 KiB aligned
	ErrDMAAbove2G              // the DMA region does not lie below 2 GiB (31-bit CCW addresses)
	ErrNoNIC                   // no virtio-net subchannel in ssid 0..3
	ErrNoNICAtIPLDevice        // the IPLB names a device that is not a virtio-net
	ErrChannel                 // an I/O instruction gave an unexpected condition code
	ErrTimeout                 // a channel program did not finish within its deadline
	ErrCommandFailed           // a channel program ended with unit check or channel error
	ErrRevision                // the device refused virtio-ccw revision 1 (SET_VIRTIO_REV)
	ErrNoVersion1              // the device does not offer VIRTIO_F_VERSION_1
	ErrNoMAC                   // the device does not offer VIRTIO_NET_F_MAC
	ErrFeaturesRefused         // the device rejected FEATURES_OK
	ErrNoQueue                 // the device reports a queue size of 0 for RX or TX
	statusCount
)

var statusText = [statusCount]string{
	OK:                  "ok",
	ErrAgain:            "no frame or TX slot available",
	ErrRuntFrame:        "frame shorter than 14 bytes",
	ErrOversizeFrame:    "frame longer than 1518 bytes",
	ErrNotReady:         "device not initialised",
	ErrDMAAlign:         "DMA region not 4 KiB aligned",
	ErrDMAAbove2G:       "DMA region not below 2 GiB",
	ErrNoNIC:            "No virtio-net device found",
	ErrNoNICAtIPLDevice: "No virtio-net device found",
	ErrChannel:          "channel I/O instruction failed",
	ErrTimeout:          "channel program timed out",
	ErrCommandFailed:    "channel program failed",
	ErrRevision:         "device refused virtio-ccw revision 1",
	ErrNoVersion1:       "device does not offer VIRTIO_F_VERSION_1",
	ErrNoMAC:            "virtio-net device does not support the MAC address feature",
	ErrFeaturesRefused:  "device refused the negotiated features",
	ErrNoQueue:          "device has no RX or TX queue",
}

// String returns the static text of s.
func (s Status) String() string {
	if s >= statusCount {
		return "unknown virtio status"
	}
	return statusText[s]
}

// Linux errno values (asm-generic/errno-base.h, errno.h) metal returns for the tap fd.
const (
	errnoEINVAL   = 22
	errnoEAGAIN   = 11
	errnoENODEV   = 19
	errnoEIO      = 5
	errnoEMSGSIZE = 90
)

// Errno returns the Linux errno for a tap-fd read or write that ended with s (0 for OK).
func (s Status) Errno() uintptr {
	switch s {
	case OK:
		return 0
	case ErrAgain:
		return errnoEAGAIN
	case ErrRuntFrame:
		return errnoEINVAL
	case ErrOversizeFrame:
		return errnoEMSGSIZE
	case ErrNotReady:
		return errnoENODEV
	default:
		return errnoEIO
	}
}

// BusID names a CCW device the Linux way, "0.<ssid>.<devno>" (e.g. 0.0.0007).
type BusID struct {
	SSID  uint8
	DevNo uint16
}

const hexDigits = "0123456789abcdef"

// Put writes the 8-character bus id into dst and returns 8. dst must hold 8 bytes.
func (b BusID) Put(dst []byte) int {
	_ = dst[7]
	dst[0], dst[1], dst[2], dst[3] = '0', '.', hexDigits[b.SSID&3], '.'
	for i := 0; i < 4; i++ {
		dst[4+i] = hexDigits[(b.DevNo>>(12-4*i))&0xf]
	}
	return 8
}

// PutMAC writes mac as "52:54:00:12:34:56" (17 bytes) into dst and returns 17; the format of
// /sys/class/net/eth0/address without its newline.
func PutMAC(dst []byte, mac [6]byte) int {
	_ = dst[16]
	for i, b := range mac {
		dst[3*i] = hexDigits[b>>4]
		dst[3*i+1] = hexDigits[b&0xf]
		if i < 5 {
			dst[3*i+2] = ':'
		}
	}
	return 17
}

// putString copies s into dst at n and returns the new length; it stops at the end of dst.
func putString(dst []byte, n int, s string) int {
	return n + copy(dst[n:], s)
}

// putHex writes v in hex (at least two digits) into dst at n and returns the new length.
func putHex(dst []byte, n int, v uint32) int {
	digits := 2
	for v>>(4*digits) != 0 && digits < 8 {
		digits += 2
	}
	for i := digits - 1; i >= 0 && n < len(dst); i-- {
		dst[n] = hexDigits[(v>>(4*i))&0xf]
		n++
	}
	return n
}
