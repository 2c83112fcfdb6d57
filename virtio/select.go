package virtio

// Virtio control-unit identity reported by SENSE ID (VIRTIO 1.2 §4.3.1: "CU type 0x3832, CU model =
// virtio device id").
const (
	cuTypeVirtio  = 0x3832 // virtio-ccw control-unit type
	deviceIDNet   = 1      // VIRTIO 1.2 §5 device id: network card
	senseIDLength = 8      // bytes of SENSE ID data the driver reads (reserved, CU type/model, device type/model)
)

// MaxCandidates bounds how many virtio subchannels a scan records; more are ignored.
const MaxCandidates = 32

// Candidate is one virtio-ccw subchannel found by the scan.
type Candidate struct {
	SSID    uint8  // subchannel set
	SchNo   uint16 // subchannel number
	DevNo   uint16 // device number (PMCW)
	CUType  uint16 // SENSE ID control-unit type
	CUModel uint8  // SENSE ID control-unit model (the virtio device id)
}

// IsNet reports whether c is a virtio-net device.
func (c Candidate) IsNet() bool { return c.CUType == cuTypeVirtio && c.CUModel == deviceIDNet }

// IPLDevice is what the IPL parameter block says about the boot device (diag 308 subcode 6, CCW
// type): metal fills it. The zero value means "no IPLB" (standalone -kernel boot).
type IPLDevice struct {
	Valid bool   // an IPLB of type CCW was stored
	SSID  uint8  // iplb.ccw.ssid & 3
	DevNo uint16 // iplb.ccw.devno
}

// Select picks the boot NIC among cands (in scan order: ssid 0..3, subchannel number ascending).
// With an IPLB the NIC is the virtio-net at the IPLB's ssid and devno — QEMU writes the device with
// the lowest bootindex there, so with several NICs the bootindex one wins; if that device is not a
// virtio-net the result is ErrNoNICAtIPLDevice. Without an IPLB it is the first virtio-net.
func Select(cands []Candidate, ipl IPLDevice) (int, Status) {
	if ipl.Valid {
		for i, c := range cands {
			if c.IsNet() && c.SSID == ipl.SSID&3 && c.DevNo == ipl.DevNo {
				return i, OK
			}
		}
		return -1, ErrNoNICAtIPLDevice
	}
	for i, c := range cands {
		if c.IsNet() {
			return i, OK
		}
	}
	return -1, ErrNoNIC
}
