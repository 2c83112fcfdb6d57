package metal

import "netipl/virtio"

// The platform files of docs/abi.md, rendered from facts metal gathered at boot. Pure Go.

const (
	fileNone = iota
	fileMeminfo
	fileIPLType
	fileIPLDevice
	fileIPLLoadparm
	fileUUID
	fileNetAddress
	// /sys/class/net/eth0/statistics/*: Linux's names for the driver's counters.
	fileNetRxPackets
	fileNetRxBytes
	fileNetRxDropped
	fileNetRxLengthErrors
	fileNetRxErrors
	fileNetTxPackets
	fileNetTxBytes
	fileNetTxDropped
	fileNetTxErrors
	fileIomem // /proc/iomem (rendered by metal's memory code, not renderFile)
)

// isNetFile reports whether file id exists only while the NIC is up.
func isNetFile(id uint8) bool { return id >= fileNetAddress && id <= fileNetTxErrors }

// filePaths maps absolute paths to file ids.
var filePaths = [...]struct {
	path string
	id   uint8
}{
	{"/proc/meminfo", fileMeminfo},
	{"/sys/firmware/ipl/ipl_type", fileIPLType},
	{"/sys/firmware/ipl/device", fileIPLDevice},
	{"/sys/firmware/ipl/loadparm", fileIPLLoadparm},
	{"/sys/hypervisor/uuid", fileUUID},
	{"/sys/class/net/eth0/address", fileNetAddress},
	{"/sys/class/net/eth0/statistics/rx_packets", fileNetRxPackets},
	{"/sys/class/net/eth0/statistics/rx_bytes", fileNetRxBytes},
	{"/sys/class/net/eth0/statistics/rx_dropped", fileNetRxDropped},
	{"/sys/class/net/eth0/statistics/rx_length_errors", fileNetRxLengthErrors},
	{"/sys/class/net/eth0/statistics/rx_errors", fileNetRxErrors},
	{"/sys/class/net/eth0/statistics/tx_packets", fileNetTxPackets},
	{"/sys/class/net/eth0/statistics/tx_bytes", fileNetTxBytes},
	{"/sys/class/net/eth0/statistics/tx_dropped", fileNetTxDropped},
	{"/sys/class/net/eth0/statistics/tx_errors", fileNetTxErrors},
	{"/proc/iomem", fileIomem},
}

// lookupFile returns the id of path (given as bytes, without the NUL), or fileNone.
func lookupFile(path []byte) uint8 {
	for _, f := range filePaths {
		if string(path) == f.path {
			return f.id
		}
	}
	return fileNone
}

// platformFacts is what the files report. The zero value describes a machine with no IPL
// information and no UUID.
type platformFacts struct {
	memTotal, memFree uint64 // bytes
	iplValid          bool   // diag 308 subcode 6 returned a CCW IPL block
	ssid              uint8
	devno             uint16
	loadparm          [8]byte // ASCII, space padded
	uuid              [16]byte
	nicUp             bool    // the boot NIC is initialised
	mac               [6]byte // its MAC address
	nicBus            virtio.BusID
	nicStats          virtio.Stats // snapshot taken when a statistics file is read
}

// netCounter returns the value of statistics file id from the driver's counters. Frames the
// driver drops for their length (runts, oversize) count as rx_length_errors, rx_errors and
// rx_dropped; used entries naming a descriptor the driver did not post count as rx_errors and
// rx_dropped; frames refused for their size on write count as tx_errors and tx_dropped.
func netCounter(id uint8, s *virtio.Stats) uint64 {
	switch id {
	case fileNetRxPackets:
		return s.RxFrames
	case fileNetRxBytes:
		return s.RxBytes
	case fileNetRxLengthErrors:
		return s.RxRunts + s.RxOversize
	case fileNetRxDropped, fileNetRxErrors:
		return s.RxRunts + s.RxOversize + s.RxBadID
	case fileNetTxPackets:
		return s.TxFrames
	case fileNetTxBytes:
		return s.TxBytes
	case fileNetTxDropped, fileNetTxErrors:
		return s.TxRejected
	}
	return 0
}

// renderFile writes the content of file id into b and returns its length.
func renderFile(id uint8, f *platformFacts, b []byte) int {
	n := 0
	switch id {
	case fileMeminfo:
		n = putStr(b, n, "MemTotal:       ")
		n = putDecPad(b, n, f.memTotal>>10, 8)
		n = putStr(b, n, " kB\nMemFree:        ")
		n = putDecPad(b, n, f.memFree>>10, 8)
		n = putStr(b, n, " kB\nMemAvailable:   ")
		n = putDecPad(b, n, f.memFree>>10, 8)
		n = putStr(b, n, " kB\n")
	case fileIPLType:
		if f.iplValid {
			n = putStr(b, n, "ccw\n")
		} else {
			n = putStr(b, n, "unknown\n")
		}
	case fileIPLDevice:
		if f.iplValid {
			n = putStr(b, n, "0.")
			n = putHexRaw(b, n, uint64(f.ssid), 1)
			n = putStr(b, n, ".")
			n = putHexRaw(b, n, uint64(f.devno), 4)
		}
		n = putStr(b, n, "\n")
	case fileIPLLoadparm:
		end := len(f.loadparm)
		for end > 0 && (f.loadparm[end-1] == ' ' || f.loadparm[end-1] == 0) {
			end--
		}
		n += copy(b[n:], f.loadparm[:end])
		n = putStr(b, n, "\n")
	case fileNetAddress:
		if f.nicUp {
			n += virtio.PutMAC(b[n:], f.mac)
			n = putStr(b, n, "\n")
		}
	case fileNetRxPackets, fileNetRxBytes, fileNetRxDropped, fileNetRxLengthErrors, fileNetRxErrors,
		fileNetTxPackets, fileNetTxBytes, fileNetTxDropped, fileNetTxErrors:
		if f.nicUp {
			n = putDec(b, n, netCounter(id, &f.nicStats))
			n = putStr(b, n, "\n")
		}
	case fileUUID:
		for i, c := range f.uuid {
			if i == 4 || i == 6 || i == 8 || i == 10 {
				b[n] = '-'
				n++
			}
			n = putHexRaw(b, n, uint64(c), 2)
		}
		n = putStr(b, n, "\n")
	}
	return n
}

// chooseLoadparm sets dst (ASCII, space padded) from the machine's EBCDIC loadparm sources: the
// IPL block's (diag 308 subcode 6; QEMU has one in drop-in mode only) when there is one and it
// is not blank, else Read SCP Info's (QEMU fills it from -M …,loadparm= in -kernel mode too). A
// nil source is one the machine did not give; with neither, dst is all blanks.
func chooseLoadparm(dst *[8]byte, iplb, scpInfo *[8]byte) {
	for _, src := range [2]*[8]byte{iplb, scpInfo} {
		if src == nil {
			continue
		}
		blank := true
		for i, c := range src {
			dst[i] = ebcdicToASCII(c)
			blank = blank && dst[i] == ' '
		}
		if !blank {
			return
		}
	}
	for i := range dst {
		dst[i] = ' '
	}
}

// ebcdicToASCII converts the characters a loadparm may hold (A-Z, 0-9, '.', ' '), PoP
// appendix / CP037; anything else becomes '?'.
func ebcdicToASCII(c byte) byte {
	switch {
	case c >= 0xc1 && c <= 0xc9:
		return 'A' + c - 0xc1
	case c >= 0xd1 && c <= 0xd9:
		return 'J' + c - 0xd1
	case c >= 0xe2 && c <= 0xe9:
		return 'S' + c - 0xe2
	case c >= 0xf0 && c <= 0xf9:
		return '0' + c - 0xf0
	case c == 0x40 || c == 0:
		return ' '
	case c == 0x4b:
		return '.'
	}
	return '?'
}
