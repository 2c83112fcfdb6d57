package virtio

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// fakeCSS is a channel subsystem with virtio-ccw devices, implementing Channel over a DMA region.
// It follows QEMU's hw/s390x/css.c and virtio-ccw.c closely enough to check the driver's protocol:
// command order, payload sizes, feature and status rules, ring addresses.
type fakeCSS struct {
	t       *testing.T
	mem     []byte
	phys    uint64
	devs    []*fakeDev
	noMSS   bool // CHSC set-domain-attributes unsupported (cc 3)
	mssOn   bool
	clock   uint64
	logging bool
}

type fakeQueue struct {
	num             uint16
	desc, avail, up uint64
	lastAvail       uint16
	usedIdx         uint16
}

type fakeDev struct {
	ssid    uint8
	schno   uint16
	devno   uint16
	cuType  uint16
	cuModel uint8

	enabled bool
	isc     uint8
	intparm uint32
	pending bool
	scsw    SCSW

	// virtio-ccw state
	revision   int // -1 until SET_VIRTIO_REV (or the first other virtio command: 0, legacy)
	status     uint8
	offered    uint64
	driverFeat uint64
	mac        [6]byte
	maxQueue   [3]uint16
	queues     [3]fakeQueue
	indicators uint64

	log       []string       // virtio commands seen, e.g. "WRITE_STATUS 0x3"
	reject    map[uint8]bool // commands answered with unit check
	hang      bool           // never complete channel programs
	refuseFOK bool           // reject FEATURES_OK
	noNotify  bool           // set VIRTQ_USED_F_NO_NOTIFY on the RX ring
	backlog   [][]byte       // offer: frames queued while the RX ring had no buffer (QEMU's net queue)
	holdTX    bool           // keep TX buffers instead of returning them at once
	heldTX    []uint16       // TX heads held
	sent      [][]byte       // frames the driver transmitted
	kicks     map[uint16]int // notifications per queue
	irqs      int            // interruptions raised
	badHeader int            // TX frames with a non-zero net header
}

// fakePhys is the real address of the fake's DMA region.
const fakePhys = 0x100000

func newFakeCSS(t *testing.T, devs ...*fakeDev) (*fakeCSS, uint64) {
	t.Helper()
	mem := make([]byte, DMASize)
	f := &fakeCSS{t: t, mem: mem, phys: fakePhys, devs: devs, logging: true}
	return f, fakePhys
}

// Memory implements Channel.Memory over the fake's DMA region.
func (f *fakeCSS) Memory(phys uint64, n int) []byte { return f.bytes(phys, n) }

func newFakeNet(ssid uint8, schno, devno uint16) *fakeDev {
	return &fakeDev{
		ssid: ssid, schno: schno, devno: devno, cuType: cuTypeVirtio, cuModel: deviceIDNet,
		revision: -1,
		offered:  featVersion1 | featNetMAC | featNetStatus | 1<<0 /* CSUM */ | 1<<15, /* MRG_RXBUF */
		mac:      [6]byte{0x52, 0x54, 0x00, 0x12, 0x34, byte(devno)},
		maxQueue: [3]uint16{256, 256, 64},
		reject:   map[uint8]bool{},
		kicks:    map[uint16]int{},
	}
}

func (f *fakeCSS) bytes(addr uint64, n int) []byte {
	f.t.Helper()
	if addr < f.phys || addr+uint64(n) > f.phys+uint64(len(f.mem)) {
		f.t.Fatalf("device access [%#x, %#x) outside the DMA region [%#x, %#x)", addr, addr+uint64(n), f.phys, f.phys+uint64(len(f.mem)))
	}
	o := int(addr - f.phys)
	return f.mem[o : o+n]
}

func (f *fakeCSS) find(sid SubchannelID) *fakeDev {
	f.t.Helper()
	if sid&0xfff90000 != 0x00010000 {
		f.t.Fatalf("malformed subsystem-id word %#x", uint32(sid))
	}
	if sid.SSID() > 0 && !f.mssOn {
		f.t.Fatalf("subchannel set %d addressed without enabling MSS (operand exception)", sid.SSID())
	}
	for _, d := range f.devs {
		if d.ssid == sid.SSID() && d.schno == sid.Number() {
			return d
		}
	}
	return nil
}

func (f *fakeCSS) Stsch(sid SubchannelID, s *SCHIB) CC {
	d := f.find(sid)
	if d == nil {
		return 3
	}
	*s = SCHIB{}
	s.PMCW.IntParm = d.intparm
	s.PMCW.DevNo = d.devno
	s.PMCW.Flags = pmcwDNV | uint16(d.isc)<<pmcwISCShift
	if d.enabled {
		s.PMCW.Flags |= pmcwEnabled
	}
	s.PMCW.PIM, s.PMCW.PAM, s.PMCW.POM = 0x80, 0x80, 0xff
	s.SCSW = d.scsw
	return 0
}

func (f *fakeCSS) Msch(sid SubchannelID, s *SCHIB) CC {
	d := f.find(sid)
	if d == nil {
		return 3
	}
	if d.pending {
		return 1
	}
	d.intparm = s.PMCW.IntParm
	d.enabled = s.PMCW.Flags&pmcwEnabled != 0
	d.isc = uint8((s.PMCW.Flags & pmcwISCMask) >> pmcwISCShift)
	return 0
}

func (f *fakeCSS) Tsch(sid SubchannelID, irb *IRB) CC {
	d := f.find(sid)
	if d == nil {
		return 3
	}
	if !d.pending {
		return 1
	}
	*irb = IRB{SCSW: d.scsw}
	d.pending = false
	d.scsw = SCSW{}
	return 0
}

func (f *fakeCSS) Chsc(area uint64) CC {
	if f.noMSS {
		return 3
	}
	if area&0xfff != 0 {
		f.t.Fatalf("CHSC area %#x not page aligned", area)
	}
	a := f.bytes(area, 0x1000)
	if l, code, op := binary.BigEndian.Uint16(a), binary.BigEndian.Uint16(a[2:]), binary.BigEndian.Uint16(a[6:]); l != 0x400 || code != 0x31 || op != 2 {
		f.t.Fatalf("CHSC request length %#x code %#x op %#x, want 0x400 0x31 2", l, code, op)
	}
	binary.BigEndian.PutUint16(a[0x400:], 16)
	binary.BigEndian.PutUint16(a[0x402:], 1)
	f.mssOn = true
	return 0
}

func (f *fakeCSS) Now() uint64 {
	f.clock += 4096 * 1000 // 1 ms per read
	return f.clock
}

func (f *fakeCSS) Ssch(sid SubchannelID, orb *ORB) CC {
	d := f.find(sid)
	if d == nil {
		return 3
	}
	if !d.enabled {
		return 3
	}
	if d.pending {
		return 1
	}
	if orb.Ctrl0&orbFormat1CCW == 0 || orb.LPM == 0 || orb.CPA&7 != 0 || orb.CPA&0x80000000 != 0 {
		f.t.Fatalf("bad ORB %+v", *orb)
	}
	c := f.bytes(uint64(orb.CPA), 8)
	cmd, flags, count, cda := c[0], c[1], binary.BigEndian.Uint16(c[2:]), binary.BigEndian.Uint32(c[4:])
	if flags&(ccwFlagCC|ccwFlagCD) != 0 {
		f.t.Fatalf("CCW %#x chains (flags %#x); the driver runs one CCW per program", cmd, flags)
	}
	if d.hang {
		return 0
	}
	ok := f.execute(d, cmd, flags, count, cda)
	// As QEMU's sch_handle_start_func_virtual: success is channel end + device end; a command
	// reject is unit check alone, with alert status.
	d.scsw = SCSW{Ctrl: scswFCStart | scswSCPrimary | scswSCSecondary | scswSCPending, CPA: orb.CPA + 8, DStat: devStatChannelEnd | devStatDeviceEnd}
	if !ok {
		d.scsw.Ctrl |= scswSCAlert
		d.scsw.DStat = devStatUnitCheck
	}
	d.pending = true
	return 0
}

// execute runs one CCW and reports whether it succeeded (false = command reject, unit check).
func (f *fakeCSS) execute(d *fakeDev, cmd, flags uint8, count uint16, cda uint32) bool {
	t := f.t
	t.Helper()
	sli := flags&ccwFlagSLI != 0
	need := func(n uint16) bool { // QEMU: exact length unless SLI
		if sli {
			return count >= n
		}
		return count == n
	}
	data := func(n int) []byte { return f.bytes(uint64(cda), n) }
	logf := func(format string, args ...any) {
		if f.logging {
			d.log = append(d.log, fmt.Sprintf(format, args...))
		}
	}
	if cmd == ccwCmdSenseID {
		b := data(int(count))
		id := []byte{0xff, byte(d.cuType >> 8), byte(d.cuType), d.cuModel, 0x38, 0x32, d.cuModel, 0}
		copy(b, id)
		return true
	}
	if d.reject[cmd] {
		logf("REJECT %#x", cmd)
		return false
	}
	if d.revision < 0 && cmd != ccwCmdSetVirtioRev {
		d.revision = 0 // QEMU: any other command first selects legacy virtio
	}
	switch cmd {
	case ccwCmdSetVirtioRev:
		b := data(4)
		rev, l := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		logf("SET_VIRTIO_REV %d", rev)
		if !need(4+l) || d.revision >= 0 || rev > 2 || l != 0 {
			return false
		}
		d.revision = int(rev)
	case ccwCmdVdevReset:
		logf("VDEV_RESET")
		d.status, d.driverFeat, d.indicators = 0, 0, 0
		d.queues = [3]fakeQueue{}
	case ccwCmdWriteStatus:
		if !need(1) {
			t.Fatalf("WRITE_STATUS count %d", count)
		}
		s := data(1)[0]
		logf("WRITE_STATUS %#x", s)
		switch {
		case s == 0:
		case s&statusFailed != 0:
		case s&statusDriverOK != 0:
			if d.status&statusFeaturesOK == 0 || d.queues[0].num == 0 || d.queues[1].num == 0 || d.indicators == 0 {
				t.Fatalf("DRIVER_OK before features, queues and indicators were set up (status %#x)", d.status)
			}
		case s&statusFeaturesOK != 0:
			if d.refuseFOK || d.driverFeat&featVersion1 == 0 || d.driverFeat&^d.offered != 0 {
				return false
			}
		case s&statusDriver != 0:
			if d.status&statusAcknowledge == 0 {
				t.Fatalf("DRIVER before ACKNOWLEDGE")
			}
		}
		d.status = s
	case ccwCmdReadFeat, ccwCmdWriteFeat:
		if !need(featDescSize) {
			t.Fatalf("feature CCW count %d", count)
		}
		b := data(featDescSize)
		idx := b[4]
		if cmd == ccwCmdReadFeat {
			logf("READ_FEAT %d", idx)
			v := uint32(0)
			if idx < 2 {
				v = uint32(d.offered >> (32 * idx))
			}
			binary.LittleEndian.PutUint32(b, v)
			break
		}
		v := uint64(binary.LittleEndian.Uint32(b))
		logf("WRITE_FEAT %d %#x", idx, v)
		if idx < 2 {
			d.driverFeat = d.driverFeat&^(0xffffffff<<(32*idx)) | v<<(32*idx)
		}
	case ccwCmdReadConf:
		logf("READ_CONF %d", count)
		if count > 8 && !sli {
			return false
		}
		conf := make([]byte, 8)
		copy(conf, d.mac[:])
		copy(data(int(min(count, 8))), conf)
	case ccwCmdReadVQConf:
		if !need(vqConfSize) {
			t.Fatalf("READ_VQ_CONF count %d", count)
		}
		b := data(4)
		idx := binary.BigEndian.Uint16(b)
		logf("READ_VQ_CONF %d", idx)
		max := uint16(0)
		if idx < 3 {
			max = d.maxQueue[idx]
		}
		binary.BigEndian.PutUint16(b[2:], max)
	case ccwCmdSetVQ:
		if d.revision < 1 || !need(vqInfoSize) {
			t.Fatalf("SET_VQ count %d at revision %d", count, d.revision)
		}
		b := data(vqInfoSize)
		q := fakeQueue{desc: binary.BigEndian.Uint64(b), num: binary.BigEndian.Uint16(b[14:]),
			avail: binary.BigEndian.Uint64(b[16:]), up: binary.BigEndian.Uint64(b[24:])}
		idx := binary.BigEndian.Uint16(b[12:])
		logf("SET_VQ %d num %d", idx, q.num)
		if idx > 2 || q.num == 0 || q.num > d.maxQueue[idx] || q.num&(q.num-1) != 0 || q.desc&15 != 0 || q.avail&1 != 0 || q.up&3 != 0 {
			return false
		}
		f.bytes(q.desc, 16*int(q.num))
		f.bytes(q.avail, 6+2*int(q.num))
		f.bytes(q.up, 6+8*int(q.num))
		d.queues[idx] = q
	case ccwCmdSetInd:
		if !need(indicatorsSize) {
			t.Fatalf("SET_IND count %d", count)
		}
		d.indicators = binary.BigEndian.Uint64(data(8))
		logf("SET_IND")
		f.bytes(d.indicators, 8)
	default:
		logf("UNKNOWN %#x", cmd)
		return false
	}
	return true
}

// interrupt raises the classic-indicator interruption for queue q, as virtio_ccw_notify does.
func (f *fakeCSS) interrupt(d *fakeDev, q int) {
	ind := f.bytes(d.indicators, 8)
	binary.BigEndian.PutUint64(ind, binary.BigEndian.Uint64(ind)|1<<q)
	if d.enabled && !d.pending {
		d.scsw = SCSW{Ctrl: scswSCAlert | scswSCPending}
		d.pending = true
		d.irqs++
	}
}

func (f *fakeCSS) availFlags(q *fakeQueue) uint16 {
	return binary.LittleEndian.Uint16(f.bytes(q.avail, 2))
}

func (f *fakeCSS) availIdx(q *fakeQueue) uint16 {
	return binary.LittleEndian.Uint16(f.bytes(q.avail+2, 2))
}

// pop takes the next available chain head of q, or false.
func (f *fakeCSS) pop(q *fakeQueue) (uint16, bool) {
	if q.lastAvail == f.availIdx(q) {
		return 0, false
	}
	head := binary.LittleEndian.Uint16(f.bytes(q.avail+4+2*uint64(q.lastAvail%q.num), 2))
	q.lastAvail++
	if head >= q.num {
		f.t.Fatalf("available ring names descriptor %d of %d", head, q.num)
	}
	return head, true
}

func (f *fakeCSS) descAt(q *fakeQueue, i uint16) (addr uint64, length uint32, flags, next uint16) {
	b := f.bytes(q.desc+16*uint64(i), 16)
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint16(b[12:]), binary.LittleEndian.Uint16(b[14:])
}

func (f *fakeCSS) pushUsed(q *fakeQueue, id uint16, length uint32) {
	e := f.bytes(q.up+4+8*uint64(q.usedIdx%q.num), 8)
	binary.LittleEndian.PutUint32(e, uint32(id))
	binary.LittleEndian.PutUint32(e[4:], length)
	q.usedIdx++
	binary.LittleEndian.PutUint16(f.bytes(q.up+2, 2), q.usedIdx)
}

func (f *fakeCSS) Notify(sid SubchannelID, queue uint16, cookie int64) int64 {
	d := f.find(sid)
	if d == nil || d.status&statusDriverOK == 0 {
		f.t.Fatalf("notify of queue %d before DRIVER_OK", queue)
	}
	d.kicks[queue]++
	if queue == queueTX {
		f.runTX(d)
	}
	if queue == queueRX {
		f.flushBacklog(d)
	}
	if d.noNotify {
		binary.LittleEndian.PutUint16(f.bytes(d.queues[queueRX].up, 2), usedFNoNotify)
	}
	return cookie + 1
}

// runTX consumes the TX ring: it records each frame and returns the buffer unless holdTX.
func (f *fakeCSS) runTX(d *fakeDev) {
	q := &d.queues[queueTX]
	for {
		head, ok := f.pop(q)
		if !ok {
			break
		}
		addr, l, flags, _ := f.descAt(q, head)
		if flags&descFWrite != 0 || flags&descFNext != 0 || l < NetHeaderSize {
			f.t.Fatalf("TX descriptor %d: len %d flags %#x", head, l, flags)
		}
		b := f.bytes(addr, int(l))
		for _, c := range b[:NetHeaderSize] {
			if c != 0 {
				d.badHeader++
			}
		}
		if f.logging {
			d.sent = append(d.sent, append([]byte(nil), b[NetHeaderSize:]...))
		}
		d.heldTX = append(d.heldTX, head)
	}
	if !d.holdTX {
		f.releaseTX(d, len(d.heldTX))
	}
}

// releaseTX returns n held TX buffers and interrupts unless the driver suppressed it.
func (f *fakeCSS) releaseTX(d *fakeDev, n int) {
	q := &d.queues[queueTX]
	for _, h := range d.heldTX[:n] {
		f.pushUsed(q, h, 0)
	}
	d.heldTX = d.heldTX[n:]
	if n > 0 && f.availFlags(q)&availFNoInterrupt == 0 {
		f.interrupt(d, queueTX)
	}
}

// deliver puts a frame into the next RX buffer; usedLen overrides the length the device reports
// (0: header + frame). It reports false when the driver has no RX buffer posted.
func (f *fakeCSS) deliver(d *fakeDev, frame []byte, usedLen uint32) bool {
	q := &d.queues[queueRX]
	head, ok := f.pop(q)
	if !ok {
		return false
	}
	addr, l, flags, _ := f.descAt(q, head)
	if flags&descFWrite == 0 || int(l) < NetHeaderSize+len(frame) {
		f.t.Fatalf("RX descriptor %d: len %d flags %#x for a %d-byte frame", head, l, flags, len(frame))
	}
	b := f.bytes(addr, int(l))
	clear(b[:NetHeaderSize])
	binary.LittleEndian.PutUint16(b[10:], 1) // num_buffers
	copy(b[NetHeaderSize:], frame)
	if usedLen == 0 {
		usedLen = uint32(NetHeaderSize + len(frame))
	}
	f.pushUsed(q, head, usedLen)
	if f.availFlags(q)&availFNoInterrupt == 0 {
		f.interrupt(d, queueRX)
	}
	return true
}

// offer hands a frame to the device as QEMU's virtio-net receives one (hw/net/virtio-net.c,
// virtio_net_has_buffers): with a backlog or no buffer posted it switches RX notifications on
// (clears VIRTQ_USED_F_NO_NOTIFY) and queues the frame until the driver's next RX notification;
// otherwise it switches notifications off and places the frame.
func (f *fakeCSS) offer(d *fakeDev, frame []byte) {
	if len(d.backlog) > 0 || f.rxPosted(d) == 0 {
		binary.LittleEndian.PutUint16(f.bytes(d.queues[queueRX].up, 2), 0)
		d.backlog = append(d.backlog, frame)
		return
	}
	binary.LittleEndian.PutUint16(f.bytes(d.queues[queueRX].up, 2), usedFNoNotify)
	f.deliver(d, frame, 0)
}

// flushBacklog delivers queued frames while buffers last (virtio_net_handle_rx →
// qemu_flush_queued_packets), leaving notifications on if frames remain.
func (f *fakeCSS) flushBacklog(d *fakeDev) {
	for len(d.backlog) > 0 && f.rxPosted(d) > 0 {
		binary.LittleEndian.PutUint16(f.bytes(d.queues[queueRX].up, 2), usedFNoNotify)
		f.deliver(d, d.backlog[0], 0)
		d.backlog = d.backlog[1:]
	}
	if len(d.backlog) > 0 {
		binary.LittleEndian.PutUint16(f.bytes(d.queues[queueRX].up, 2), 0)
	}
}

// rxPosted returns how many RX buffers the driver has made available and the device not used.
func (f *fakeCSS) rxPosted(d *fakeDev) uint16 {
	q := &d.queues[queueRX]
	return f.availIdx(q) - q.lastAvail
}
