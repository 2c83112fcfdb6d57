package virtio

import "encoding/binary"

// Channel is the door to the channel subsystem: one method per instruction, each returning the
// condition code and deciding nothing (style B8). Machine (css_s390x.go) implements it with the
// privileged instructions; the host tests implement it with a fake device that checks the protocol.
// SCHIB, ORB and IRB pointers are instruction operands: on metal (DAT off) they are real addresses,
// so the Net that holds them must live in kernel memory whose Go address is its real address.
type Channel interface {
	// Stsch is STORE SUBCHANNEL: cc 0 stored, cc 3 not operational (no such subchannel).
	Stsch(sid SubchannelID, schib *SCHIB) CC
	// Msch is MODIFY SUBCHANNEL: cc 0 done, 1 status pending, 2 busy, 3 not operational.
	Msch(sid SubchannelID, schib *SCHIB) CC
	// Ssch is START SUBCHANNEL: cc 0 started, 1 status pending, 2 busy, 3 not operational.
	Ssch(sid SubchannelID, orb *ORB) CC
	// Tsch is TEST SUBCHANNEL: cc 0 status was pending and is stored (and cleared), 1 not pending,
	// 3 not operational. It also clears a pending I/O interruption of the subchannel.
	Tsch(sid SubchannelID, irb *IRB) CC
	// Chsc is CHANNEL SUBSYSTEM CALL on the 4 KiB request/response page at real address area.
	Chsc(area uint64) CC
	// Notify is the virtio-ccw notification hypercall (diag 0x500, function 3,
	// KVM_S390_VIRTIO_CCW_NOTIFY) for queue of subchannel sid; it returns the new cookie or < 0.
	Notify(sid SubchannelID, queue uint16, cookie int64) int64
	// Now reads the TOD clock (bit 51 = 1 µs), for channel-program deadlines.
	Now() uint64
	// Memory returns the n bytes at real address phys: the driver's view of its DMA region.
	// It is called on every use, so that the driver keeps no pointer (see Net).
	Memory(phys uint64, n int) []byte
}

// Virtio-ccw channel commands, VIRTIO 1.2 §4.3.2 (spelled as in the spec for grep).
const (
	ccwCmdSetVQ        = 0x13 // CCW_CMD_SET_VQ
	ccwCmdVdevReset    = 0x33 // CCW_CMD_VDEV_RESET
	ccwCmdSetInd       = 0x43 // CCW_CMD_SET_IND
	ccwCmdReadFeat     = 0x12 // CCW_CMD_READ_FEAT
	ccwCmdWriteFeat    = 0x11 // CCW_CMD_WRITE_FEAT
	ccwCmdReadConf     = 0x22 // CCW_CMD_READ_CONF
	ccwCmdWriteStatus  = 0x31 // CCW_CMD_WRITE_STATUS
	ccwCmdReadVQConf   = 0x32 // CCW_CMD_READ_VQ_CONF
	ccwCmdSetVirtioRev = 0x83 // CCW_CMD_SET_VIRTIO_REV
)

// Payload sizes of the commands above (VIRTIO 1.2 §4.3.2.*; all big-endian except the feature bits).
const (
	revInfoSize    = 4  // struct virtio_rev_info {be16 revision; be16 length;} (no data for revision 1)
	featDescSize   = 5  // struct virtio_feature_desc {le32 features; u8 index;}
	vqConfSize     = 4  // struct vq_config_block {be16 index; be16 max_num;}
	vqInfoSize     = 32 // struct vq_info_block {be64 desc; be32 res0; be16 index; be16 num; be64 driver; be64 device;}
	indicatorsSize = 8  // be64 address of the classic queue indicators
	netConfigSize  = 6  // struct virtio_net_config: u8 mac[6] (§5.1.4), the only field read
)

// Device status bits, VIRTIO 1.2 §2.1.
const (
	statusAcknowledge = 1   // ACKNOWLEDGE
	statusDriver      = 2   // DRIVER
	statusDriverOK    = 4   // DRIVER_OK
	statusFeaturesOK  = 8   // FEATURES_OK
	statusFailed      = 128 // FAILED
)

// DMA region layout. Everything the device addresses lives here; CCWs and their data need 31-bit
// addresses, which is why the whole region must lie below 2 GiB.
const (
	MaxQueueSize = 256  // queue entries used per virtqueue (the device's maximum if smaller)
	bufStride    = 2048 // one RX or TX buffer: the 12-byte net header + up to 2036 frame bytes

	offCHSC       = 0x0000 // CHSC request/response page (4 KiB, used during the scan)
	offCCW        = 0x1000 // the channel program: one format-1 CCW (doubleword aligned)
	offCCWData    = 0x1040 // its data area (up to 256 bytes)
	ccwDataMax    = 0x100
	offIndicators = 0x1200 // classic queue indicators (be64, bit n = queue n)
	offRXRing     = 0x2000 // RX virtqueue (≤ 12 KiB for 256 entries)
	offTXRing     = 0x5000 // TX virtqueue
	ringReserve   = 0x3000 // bytes reserved per virtqueue
	offRXBufs     = 0x8000
	offTXBufs     = offRXBufs + MaxQueueSize*bufStride
	// DMASize is the size of the DMA region metal must provide.
	DMASize = offTXBufs + MaxQueueSize*bufStride
)

// ioTimeout bounds one channel program: 1 s of TOD clock (bit 51 = 1 µs, so 4096 units per µs).
const ioTimeout = 4096 * 1000 * 1000

// ioFailure records the channel program that failed, for Net.Reason.
type ioFailure struct {
	cmd   uint8 // CCW command code (0 for an instruction failure)
	insn  insn  // instruction that gave an unexpected cc, or insnNone
	cc    CC
	dstat uint8 // device status
	sstat uint8 // subchannel status
}

// insn names an I/O instruction in failure reports (no strings are stored: see Net).
type insn uint8

const (
	insnNone insn = iota
	insnSSCH
	insnTSCH
	insnSTSCH
	insnMSCH
)

var insnNames = [...]string{insnNone: "", insnSSCH: "ssch", insnTSCH: "tsch", insnSTSCH: "stsch", insnMSCH: "msch"}

// startIO runs the one-CCW channel program cmd with count data bytes at offCCWData and waits for its
// end by testing the subchannel until the deadline (interrupts for this subchannel are consumed by
// TSCH; metal's I/O handler never sees them). It is used at set-up and reset only.
func (d *Net[C]) startIO(sid SubchannelID, cmd uint8, flags uint8, count uint16) Status {
	c := d.mem()[offCCW : offCCW+8]
	c[0], c[1] = cmd, flags
	binary.BigEndian.PutUint16(c[2:], count)
	binary.BigEndian.PutUint32(c[4:], uint32(d.addr(offCCWData)))
	d.orb = ORB{
		IntParm: uint32(sid),
		Ctrl0:   orbFormat1CCW | orbPrefetch,
		LPM:     0xff,
		CPA:     uint32(d.addr(offCCW)),
	}
	d.fail = ioFailure{cmd: cmd}
	for attempt := 0; ; attempt++ {
		cc := d.ch.Ssch(sid, &d.orb)
		switch cc {
		case 0: // started
		case 1: // status pending (e.g. an unsolicited indicator interrupt): clear it and retry once
			if attempt == 0 {
				d.ch.Tsch(sid, &d.irb)
				continue
			}
			d.fail.insn, d.fail.cc = insnSSCH, cc
			return ErrChannel
		case 2: // busy
			d.fail.insn, d.fail.cc = insnSSCH, cc
			return ErrChannel
		default: // 3: not operational
			d.fail.insn, d.fail.cc = insnSSCH, cc
			return ErrChannel
		}
		break
	}
	deadline := d.ch.Now() + ioTimeout
	for {
		cc := d.ch.Tsch(sid, &d.irb)
		switch cc {
		case 0: // status stored
			s := &d.irb.SCSW
			if s.Ctrl&scswFCStart == 0 {
				break // unsolicited alert status (queue indicators), not our completion
			}
			d.fail.dstat, d.fail.sstat = s.DStat, s.SStat
			if s.DStat&devStatUnitCheck != 0 || s.SStat != 0 {
				return ErrCommandFailed
			}
			if s.Ctrl&scswSCPrimary != 0 && s.DStat&devStatDeviceEnd != 0 {
				return OK
			}
			// intermediate status: keep waiting for primary status
		case 1: // not status pending yet
		default: // 3: not operational
			d.fail.insn, d.fail.cc = insnTSCH, cc
			return ErrChannel
		}
		if d.ch.Now() > deadline {
			return ErrTimeout
		}
	}
}

// setEnabled enables (with the driver's ISC and the subchannel id as interruption parameter) or
// disables the subchannel by STSCH + MSCH.
func (d *Net[C]) setEnabled(sid SubchannelID, on bool) Status {
	for attempt := 0; attempt < 3; attempt++ {
		if cc := d.ch.Stsch(sid, &d.schib); cc != 0 { // 3: not operational
			d.fail = ioFailure{insn: insnSTSCH, cc: cc}
			return ErrChannel
		}
		p := &d.schib.PMCW
		p.IntParm = uint32(sid)
		p.Flags &^= pmcwISCMask | pmcwEnabled
		if on {
			p.Flags |= uint16(d.isc&7)<<pmcwISCShift | pmcwEnabled
		}
		cc := d.ch.Msch(sid, &d.schib)
		switch cc {
		case 0: // modified
			return OK
		case 1: // status pending: clear and retry
			d.ch.Tsch(sid, &d.irb)
		case 2: // busy: retry
		default: // 3: not operational
			d.fail = ioFailure{insn: insnMSCH, cc: cc}
			return ErrChannel
		}
	}
	d.fail = ioFailure{insn: insnMSCH, cc: 1}
	return ErrChannel
}

// enableMSS enables the multiple-subchannel-set facility with CHSC "set domain attributes"
// (operation 2), so that ssid 1..3 can be addressed. It reports whether that worked.
func (d *Net[C]) enableMSS() bool {
	a := d.mem()[offCHSC : offCHSC+0x1000]
	clear(a)
	binary.BigEndian.PutUint16(a[0:], chscRequestLength)
	binary.BigEndian.PutUint16(a[2:], chscSetDomainAttributes)
	binary.BigEndian.PutUint16(a[6:], chscSDAEnableMSS)
	if cc := d.ch.Chsc(d.addr(offCHSC)); cc != 0 { // 1: busy, 2: busy, 3: not available
		return false
	}
	return binary.BigEndian.Uint16(a[chscRequestLength+2:]) == chscResponseOK
}

// scan fills d.cands with the virtio subchannels of ssid 0..maxSSID in order. Each one is enabled
// for SENSE ID and disabled again.
func (d *Net[C]) scan(maxSSID uint8) {
	d.ncands = 0
	for ssid := uint8(0); ssid <= maxSSID; ssid++ {
		for schno := 0; schno <= 0xffff; schno++ {
			sid := NewSubchannelID(ssid, uint16(schno))
			cc := d.ch.Stsch(sid, &d.schib)
			if cc != 0 { // 3: no more subchannels in this set
				break
			}
			if d.schib.PMCW.Flags&pmcwDNV == 0 { // no device
				continue
			}
			devno := d.schib.PMCW.DevNo
			if d.setEnabled(sid, true) != OK {
				continue
			}
			data := d.mem()[offCCWData : offCCWData+senseIDLength]
			clear(data)
			st := d.startIO(sid, ccwCmdSenseID, ccwFlagSLI, senseIDLength)
			d.setEnabled(sid, false)
			if st != OK || data[0] != 0xff {
				continue
			}
			cu := binary.BigEndian.Uint16(data[1:])
			d.scanned++
			if cu != cuTypeVirtio || d.ncands == MaxCandidates {
				continue
			}
			d.cands[d.ncands] = Candidate{SSID: ssid, SchNo: uint16(schno), DevNo: devno, CUType: cu, CUModel: data[3]}
			d.ncands++
		}
	}
}
