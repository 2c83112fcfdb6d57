package virtio

// Channel-subsystem blocks, z/Architecture Principles of Operation (PoP), SA22-7832-13, chapters 14-16.
// They are native big-endian, so they are Go structs (style B5); css_test.go checks every offset.

// SubchannelID is the subsystem-identification word (PoP 14-2, "Subsystem-Identification Word"):
// bits 13-14 the subchannel-set id, bit 15 one, bits 16-31 the subchannel number.
type SubchannelID uint32

// NewSubchannelID returns the subsystem-identification word for subchannel schno in set ssid (0..3).
func NewSubchannelID(ssid uint8, schno uint16) SubchannelID {
	return SubchannelID(0x00010000 | uint32(ssid&3)<<17 | uint32(schno))
}

// SSID returns the subchannel-set id.
func (s SubchannelID) SSID() uint8 { return uint8(s>>17) & 3 }

// Number returns the subchannel number.
func (s SubchannelID) Number() uint16 { return uint16(s) }

// CC is a condition code set by an I/O instruction (0..3). Its meaning depends on the instruction;
// the callers name each value where they switch on it (style B8).
type CC uint8

var ccNames = [4]string{"cc=0", "cc=1", "cc=2", "cc=3"}

// String returns "cc=N".
func (c CC) String() string {
	if c > 3 {
		return "cc=?"
	}
	return ccNames[c]
}

// PMCW is the path-management-control word (PoP 15-2, figure 15-1), 28 bytes.
type PMCW struct {
	IntParm uint32   // 0x00 interruption parameter
	Flags   uint16   // 0x04 Q, ISC, E, LM, MM, D, T, V (pmcwISC…pmcwDNV)
	DevNo   uint16   // 0x06 device number
	LPM     uint8    // 0x08 logical-path mask
	PNOM    uint8    // 0x09 path-not-operational mask
	LPUM    uint8    // 0x0a last-path-used mask
	PIM     uint8    // 0x0b path-installed mask
	MBI     uint16   // 0x0c measurement-block index
	POM     uint8    // 0x0e path-operational mask
	PAM     uint8    // 0x0f path-available mask
	CHPID   [8]uint8 // 0x10 channel-path identifiers
	Chars   uint32   // 0x18 F, X, S (measurement-block format, extended measurement word, concurrent sense)
}

// PMCW word 1 flag bits (PoP 15-3).
const (
	pmcwISCShift = 11     // bits 2-4: interruption subclass
	pmcwISCMask  = 0x3800 // ISC field
	pmcwEnabled  = 0x0080 // E, bit 8: subchannel enabled
	pmcwDNV      = 0x0001 // V, bit 15: device number valid
)

// SCSW is the subchannel-status word (PoP 16-5, figure 16-3), 12 bytes.
type SCSW struct {
	Flags uint16 // 0x00 key, S, L, CC, F, P, I, A, U, Z, E, N
	Ctrl  uint16 // 0x02 function, activity and status control (scswFC…, scswAC…, scswSC…)
	CPA   uint32 // 0x04 CCW address
	DStat uint8  // 0x08 device status (devStat…)
	SStat uint8  // 0x09 subchannel status (schStat…)
	Count uint16 // 0x0a residual count
}

// SCSW word 0 bits 16-31 (PoP 16-6..16-14).
const (
	scswFCStart = 0x4000 // start function
	scswFCHalt  = 0x2000 // halt function
	scswFCClear = 0x1000 // clear function

	scswSCAlert        = 0x0010 // alert status
	scswSCIntermediate = 0x0008 // intermediate status
	scswSCPrimary      = 0x0004 // primary status
	scswSCSecondary    = 0x0002 // secondary status
	scswSCPending      = 0x0001 // status pending
)

// Device-status bits (PoP 16-23, "Device Status").
const (
	devStatAttention     = 0x80
	devStatModifier      = 0x40
	devStatCUEnd         = 0x20
	devStatBusy          = 0x10
	devStatChannelEnd    = 0x08
	devStatDeviceEnd     = 0x04
	devStatUnitCheck     = 0x02
	devStatUnitException = 0x01
)

// SCHIB is the subchannel-information block (PoP 15-1), 52 bytes; STSCH stores it, MSCH reads it.
type SCHIB struct {
	PMCW  PMCW     // 0x00
	SCSW  SCSW     // 0x1c
	Model [12]byte // 0x28 model-dependent area (measurement-block address)
}

// ORB is the operation-request block for START SUBCHANNEL (PoP 15-22, figure 15-10), 32 bytes.
type ORB struct {
	IntParm uint32   // 0x00 interruption parameter
	Ctrl0   uint16   // 0x04 key, S, C, M, Y, F, P, I, A, U, B, H, T (orbFormat1…)
	LPM     uint8    // 0x06 logical-path mask
	Ctrl1   uint8    // 0x07 L, D, X
	CPA     uint32   // 0x08 channel-program address (31-bit, doubleword aligned)
	_       [20]byte // 0x0c channel-subsystem priority, CU priority, ORB extension (unused)
}

// ORB word 1 bits (PoP 15-23..15-27).
const (
	orbFormat1CCW = 0x0080 // F: format-1 CCWs
	orbPrefetch   = 0x0040 // P: prefetch allowed
	orbInitStatus = 0x0020 // I: initial-status interruption
)

// IRB is the interruption-response block TEST SUBCHANNEL stores (PoP 16-4), 96 bytes.
type IRB struct {
	SCSW SCSW      // 0x00
	ESW  [5]uint32 // 0x0c extended-status word
	ECW  [8]uint32 // 0x20 extended-control word
	EMW  [8]uint32 // 0x40 extended-measurement word
}

// Format-1 CCW (PoP 15-28, figure 15-12), 8 bytes, doubleword aligned. CCWs live in the DMA region,
// so ccw.go writes them as bytes at these offsets; css_test.go checks CCW1 against the PoP.
type CCW1 struct {
	Cmd   uint8  // 0x00 command code
	Flags uint8  // 0x01 CD, CC, SLI, SKP, PCI, IDA, S, M
	Count uint16 // 0x02 byte count
	CDA   uint32 // 0x04 data address (31-bit)
}

// CCW flag bits (PoP 15-29).
const (
	ccwFlagCD   = 0x80 // chain data
	ccwFlagCC   = 0x40 // chain command
	ccwFlagSLI  = 0x20 // suppress length indication
	ccwFlagSkip = 0x10 // skip
	ccwFlagPCI  = 0x08 // program-controlled interruption
	ccwFlagIDA  = 0x04 // indirect data addressing
)

// Channel commands of the channel subsystem itself (PoP 16-41, "Sense ID").
const (
	ccwCmdSenseID = 0xe4 // SENSE ID
)

// CHSC request codes (s390 CHSC, as used by QEMU hw/s390x/css.c and s390-ccw cio.c).
const (
	chscSetDomainAttributes = 0x0031 // CHSC_SDA
	chscSDAEnableMSS        = 0x0002 // operation code: enable the multiple-subchannel-set facility
	chscRequestLength       = 0x0400 // request block length; the response block follows it
	chscResponseOK          = 0x0001 // response code: success
)
