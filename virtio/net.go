package virtio

import "encoding/binary"

// Virtio-net, VIRTIO 1.2 §5.1.
const (
	NetHeaderSize = 12   // struct virtio_net_hdr with VIRTIO_F_VERSION_1 (§5.1.6), always zero on TX
	MinFrame      = 14   // an Ethernet header (ETH_HLEN)
	MaxFrame      = 1518 // 1500-byte MTU + 14-byte header + 4-byte 802.1Q tag

	queueRX = 0 // receiveq1 (§5.1.2)
	queueTX = 1 // transmitq1
)

// Stats counts what the driver saw (style B18). Counters only grow; metal may print them.
type Stats struct {
	RxFrames    uint64 // frames handed to the reader
	RxBytes     uint64 // their bytes (without the net header)
	RxRunts     uint64 // dropped: shorter than NetHeaderSize+MinFrame
	RxOversize  uint64 // dropped: longer than NetHeaderSize+MaxFrame
	RxBadID     uint64 // used entries naming a descriptor the driver did not post (device bug)
	RxKicks     uint64 // RX notifications (only when the device asked for them)
	TxFrames    uint64 // frames queued to the device
	TxBytes     uint64 // their bytes
	TxRejected  uint64 // frames refused for their size (runt or oversize)
	TxRingFull  uint64 // writes that found no free TX slot
	TxCompleted uint64 // TX buffers the device returned
	TxBadID     uint64 // TX used entries naming a descriptor not in flight
	TxKicks     uint64 // TX notifications (diag 0x500)
	Interrupts  uint64 // I/O interruptions handled by Interrupt
}

// Events tells metal which waiters an interruption may have made runnable.
type Events uint8

const (
	EventReadable Events = 1 << iota // a frame can be read (POLLIN / EPOLLIN)
	EventWritable                    // a TX slot became free after the ring was full (POLLOUT / EPOLLOUT)
)

// Net is the virtio-net-ccw driver over the channel subsystem C: Machine on metal, a fake device in
// host tests. metal keeps one in kernel memory (DAT off, so the Go addresses of its ORB, SCHIB and
// IRB are real addresses) and calls it with interruptions disabled. It never allocates, and it
// holds no pointer, so no store into it needs the Go runtime's write barrier (with the zero-size
// Machine as C). The zero Net is a driver that is not initialised (every call gives ErrNotReady).
type Net[C Channel] struct {
	ch      C
	dmaPhys uint64
	isc     uint8
	ipl     IPLDevice
	sid     SubchannelID
	bus     BusID
	mac     [6]byte
	ready   bool

	orb   ORB
	schib SCHIB
	irb   IRB

	cands   [MaxCandidates]Candidate
	ncands  int
	scanned int // devices that answered SENSE ID
	fail    ioFailure

	rx       Ring
	rxPosted [MaxQueueSize]bool // descriptor is owned by the device
	rxCur    int32              // descriptor of the frame being read (Peek..Release), or -1
	rxCurLen uint32
	rxQuiet  bool   // RX interrupts are off: the reader was told frames wait and has not drained them
	rxTaken  uint64 // used RX entries the driver has taken (RxArrivals counts without wrapping)
	// rxUnkicked counts RX buffers published since the driver last looked at the device's
	// VIRTQ_USED_F_NO_NOTIFY flag (see repostRX).
	rxUnkicked uint16

	tx        Ring
	txFree    [MaxQueueSize]uint16 // stack of free TX descriptors
	txNFree   uint16
	txBusy    [MaxQueueSize]bool
	txWaiting bool // TX interrupts are on because a writer found the ring full

	cookieRX, cookieTX int64
	stats              Stats
}

// Init finds the boot NIC and brings it to DRIVER_OK with a full RX ring. ch is the channel
// subsystem (Machine{} on metal), dma the device memory (DMASize bytes), ipl what the IPLB said
// (zero without one), isc the interruption subclass metal enables in CR6 for this NIC.
// On failure Reason renders the one-line message for the console.
func (d *Net[C]) Init(ch C, dmaPhys uint64, ipl IPLDevice, isc uint8) Status {
	*d = Net[C]{ch: ch, dmaPhys: dmaPhys, ipl: ipl, isc: isc & 7, rxCur: -1}
	switch {
	case dmaPhys&0xfff != 0:
		return ErrDMAAlign
	case dmaPhys+DMASize > 1<<31:
		return ErrDMAAbove2G
	}
	maxSSID := uint8(0)
	if d.enableMSS() {
		maxSSID = 3
	}
	d.scan(maxSSID)
	i, st := Select(d.cands[:d.ncands], ipl)
	if st != OK {
		return st
	}
	c := d.cands[i]
	d.sid = NewSubchannelID(c.SSID, c.SchNo)
	d.bus = BusID{SSID: c.SSID, DevNo: c.DevNo}
	if st := d.setEnabled(d.sid, true); st != OK {
		return st
	}
	if st := d.setup(); st != OK {
		if st != ErrChannel && st != ErrTimeout {
			fail := d.fail
			d.writeStatus(statusFailed) // best effort: tell the device the driver gave up
			d.fail = fail
		}
		d.setEnabled(d.sid, false)
		return st
	}
	d.ready = true
	d.kick(queueRX)
	return OK
}

// mem returns the DMA region (DMASize bytes at dmaPhys).
func (d *Net[C]) mem() []byte { return d.ch.Memory(d.dmaPhys, DMASize) }

// addr returns the real address of byte off of the DMA region.
func (d *Net[C]) addr(off int) uint64 { return d.dmaPhys + uint64(off) }

// rxRing and txRing return the memory of the two virtqueues.
func (d *Net[C]) rxRing() []byte { return d.mem()[offRXRing : offRXRing+ringReserve] }
func (d *Net[C]) txRing() []byte { return d.mem()[offTXRing : offTXRing+ringReserve] }

// writeStatus is WRITE_STATUS with one status byte.
func (d *Net[C]) writeStatus(s uint8) Status {
	d.mem()[offCCWData] = s
	return d.startIO(d.sid, ccwCmdWriteStatus, 0, 1)
}

// setup runs the virtio-ccw initialisation (VIRTIO 1.2 §3.1.1 over §4.3.2) on d.sid.
func (d *Net[C]) setup() Status {
	data := d.mem()[offCCWData : offCCWData+ccwDataMax]
	clear(data)
	binary.BigEndian.PutUint16(data[0:], 1) // revision 1, no additional data
	binary.BigEndian.PutUint16(data[2:], 0)
	if st := d.startIO(d.sid, ccwCmdSetVirtioRev, 0, revInfoSize); st != OK {
		if st == ErrCommandFailed {
			return ErrRevision
		}
		return st
	}
	if st := d.startIO(d.sid, ccwCmdVdevReset, 0, 0); st != OK {
		return st
	}
	if st := d.writeStatus(statusAcknowledge); st != OK {
		return st
	}
	if st := d.writeStatus(statusAcknowledge | statusDriver); st != OK {
		return st
	}
	var offered uint64
	for idx := uint8(0); idx < 2; idx++ {
		clear(data[:featDescSize])
		data[4] = idx
		if st := d.startIO(d.sid, ccwCmdReadFeat, 0, featDescSize); st != OK {
			return st
		}
		offered |= uint64(binary.LittleEndian.Uint32(data[0:])) << (32 * idx)
	}
	accepted, st := Negotiate(offered)
	if st != OK {
		return st
	}
	for idx := uint8(0); idx < 2; idx++ {
		binary.LittleEndian.PutUint32(data[0:], uint32(accepted>>(32*idx)))
		data[4] = idx
		if st := d.startIO(d.sid, ccwCmdWriteFeat, 0, featDescSize); st != OK {
			return st
		}
	}
	if st := d.writeStatus(statusAcknowledge | statusDriver | statusFeaturesOK); st != OK {
		if st == ErrCommandFailed {
			return ErrFeaturesRefused
		}
		return st
	}
	clear(data[:netConfigSize])
	if st := d.startIO(d.sid, ccwCmdReadConf, ccwFlagSLI, netConfigSize); st != OK {
		return st
	}
	copy(d.mac[:], data[:6])
	if st := d.setupQueue(queueRX, &d.rx, offRXRing); st != OK {
		return st
	}
	if st := d.setupQueue(queueTX, &d.tx, offTXRing); st != OK {
		return st
	}
	clear(d.mem()[offIndicators : offIndicators+indicatorsSize])
	binary.BigEndian.PutUint64(data[0:], d.addr(offIndicators))
	if st := d.startIO(d.sid, ccwCmdSetInd, 0, indicatorsSize); st != OK {
		return st
	}
	// RX: every descriptor i owns buffer i, device-writable, all posted.
	for i := uint16(0); i < d.rx.num; i++ {
		d.rx.setDesc(d.rxRing(), i, d.addr(offRXBufs+int(i)*bufStride), bufStride, descFWrite, 0)
		d.rxPosted[i] = true
		d.rx.push(d.rxRing(), i)
	}
	d.rx.publish(d.rxRing())
	// TX: every descriptor free; completions are reclaimed lazily, interrupts only when full.
	for i := uint16(0); i < d.tx.num; i++ {
		d.txFree[i] = d.tx.num - 1 - i
	}
	d.txNFree = d.tx.num
	d.tx.setInterrupts(d.txRing(), false)
	return d.writeStatus(statusAcknowledge | statusDriver | statusFeaturesOK | statusDriverOK)
}

// setupQueue reads the queue's maximum size, lays the ring out at off and registers it (SET_VQ).
func (d *Net[C]) setupQueue(index uint16, r *Ring, off int) Status {
	data := d.mem()[offCCWData : offCCWData+vqInfoSize]
	clear(data)
	binary.BigEndian.PutUint16(data[0:], index)
	if st := d.startIO(d.sid, ccwCmdReadVQConf, 0, vqConfSize); st != OK {
		return st
	}
	num := QueueSize(binary.BigEndian.Uint16(data[2:]))
	if num == 0 {
		return ErrNoQueue
	}
	r.init(d.mem()[off:off+ringReserve], num, 0)
	clear(data)
	binary.BigEndian.PutUint64(data[0:], d.addr(off))
	binary.BigEndian.PutUint16(data[12:], index)
	binary.BigEndian.PutUint16(data[14:], num)
	binary.BigEndian.PutUint64(data[16:], d.addr(off+r.availOff))
	binary.BigEndian.PutUint64(data[24:], d.addr(off+r.usedOff))
	return d.startIO(d.sid, ccwCmdSetVQ, 0, vqInfoSize)
}

// QueueSize returns the queue size the driver uses for a device maximum of max: the largest power
// of two ≤ min(max, MaxQueueSize) (split rings need a power of two), or 0.
func QueueSize(max uint16) uint16 {
	n := uint16(MaxQueueSize)
	for n > max {
		n >>= 1
	}
	return n
}

// kick notifies the device about new buffers on queue (diag 0x500).
func (d *Net[C]) kick(queue uint16) {
	if queue == queueRX {
		d.stats.RxKicks++
		if c := d.ch.Notify(d.sid, queue, d.cookieRX); c >= 0 {
			d.cookieRX = c
		}
		return
	}
	d.stats.TxKicks++
	if c := d.ch.Notify(d.sid, queue, d.cookieTX); c >= 0 {
		d.cookieTX = c
	}
}

// RxKickBatch is how many RX buffers the driver gives back before it looks whether the device
// wants to be told. QEMU's virtio-net asks for RX notifications only after it found the ring
// empty (virtio_net_has_buffers) and then queues the frames it cannot place; one notification
// makes it deliver as many queued frames as there are buffers. Telling it of every buffer on its
// own (as a reader that gives buffers back one by one would) costs a DIAG 500 exit — and a
// single-frame delivery inside it — per frame while the guest is behind. Buffers are announced
// in batches instead, and always before the reader can wait: Peek announces the rest when it
// finds the ring empty, and metal calls FlushRX before its enabled wait.
const RxKickBatch = 32

// repostRX gives RX buffer id back to the device. The buffer is published at once (a device
// that did not ask for notifications sees it); the device is notified per RxKickBatch buffers.
func (d *Net[C]) repostRX(id uint16) {
	d.rxPosted[id] = true
	d.rx.push(d.rxRing(), id)
	d.rx.publish(d.rxRing())
	d.rxUnkicked++
	if d.rxUnkicked >= RxKickBatch {
		d.FlushRX()
	}
}

// FlushRX notifies the device of the RX buffers published since the last look at its
// notification flag, if it asked to be told, and reports whether it did. metal calls it before
// it waits for an interruption.
func (d *Net[C]) FlushRX() bool {
	if d.rxUnkicked == 0 {
		return false
	}
	d.rxUnkicked = 0
	if !d.rx.needsKick(d.rxRing()) {
		return false
	}
	d.kick(queueRX)
	return true
}

// Peek returns the next received frame (without the net header) in place, or ErrAgain. The frame
// stays valid, and Peek keeps returning it, until Release. Runt and oversized frames are dropped,
// counted and their buffers reposted on the way. Finding the ring empty does not switch RX
// interruptions back on (see Interrupt and ArmRX).
func (d *Net[C]) Peek() ([]byte, Status) {
	if !d.ready {
		return nil, ErrNotReady
	}
	flushed := false
	for d.rxCur < 0 {
		id, n, ok := d.rx.used(d.rxRing())
		if ok {
			d.rxTaken++
		}
		if !ok {
			// The reader may wait next, so the device must know every buffer. QEMU places the
			// frames it queued while starved during the notification: look once more.
			if !flushed && d.FlushRX() {
				flushed = true
				continue
			}
			return nil, ErrAgain
		}
		if id >= uint32(d.rx.num) || !d.rxPosted[id] {
			d.stats.RxBadID++
			continue
		}
		d.rxPosted[id] = false
		switch {
		case n < NetHeaderSize+MinFrame:
			d.stats.RxRunts++
			d.repostRX(uint16(id))
		case n > NetHeaderSize+MaxFrame:
			d.stats.RxOversize++
			d.repostRX(uint16(id))
		default:
			d.rxCur, d.rxCurLen = int32(id), n
			d.stats.RxFrames++
			d.stats.RxBytes += uint64(n - NetHeaderSize)
		}
	}
	off := offRXBufs + int(d.rxCur)*bufStride
	return d.mem()[off+NetHeaderSize : off+int(d.rxCurLen)], OK
}

// Release gives the buffer of the frame Peek returned back to the device.
func (d *Net[C]) Release() {
	if d.rxCur < 0 {
		return
	}
	id := uint16(d.rxCur)
	d.rxCur = -1
	d.repostRX(id)
}

// Receive copies the next frame into dst (truncating it if dst is shorter) and returns the bytes
// copied, or ErrAgain when no frame is waiting.
func (d *Net[C]) Receive(dst []byte) (int, Status) {
	f, st := d.Peek()
	if st != OK {
		return 0, st
	}
	n := copy(dst, f)
	d.Release()
	return n, OK
}

// Readable reports whether Peek would return a frame (POLLIN).
func (d *Net[C]) Readable() bool {
	_, st := d.Peek()
	return st == OK
}

// reclaimTX takes back the TX buffers the device has finished with.
func (d *Net[C]) reclaimTX() {
	for {
		id, _, ok := d.tx.used(d.txRing())
		if !ok {
			return
		}
		if id >= uint32(d.tx.num) || !d.txBusy[id] {
			d.stats.TxBadID++
			continue
		}
		d.txBusy[id] = false
		d.txFree[d.txNFree] = uint16(id)
		d.txNFree++
		d.stats.TxCompleted++
	}
}

// Writable reports whether a frame can be sent now (POLLOUT).
func (d *Net[C]) Writable() bool {
	if !d.ready {
		return false
	}
	d.reclaimTX()
	return d.txNFree > 0
}

// TxBuffer returns the buffer for the next frame (MaxFrame bytes; fill a prefix, then Send), or
// ErrAgain when all TX buffers are with the device; then the TX completion interrupt is enabled so
// that Interrupt reports EventWritable when one comes back.
func (d *Net[C]) TxBuffer() ([]byte, Status) {
	if !d.ready {
		return nil, ErrNotReady
	}
	d.reclaimTX()
	if d.txNFree == 0 {
		d.txWaiting = true
		d.tx.setInterrupts(d.txRing(), true)
		d.reclaimTX() // a completion may have raced with enabling the interrupt
		if d.txNFree == 0 {
			d.stats.TxRingFull++
			return nil, ErrAgain
		}
	}
	off := offTXBufs + int(d.txFree[d.txNFree-1])*bufStride
	return d.mem()[off+NetHeaderSize : off+NetHeaderSize+MaxFrame], OK
}

// Send queues the first n bytes of the buffer TxBuffer returned and notifies the device if it asked
// for notifications. It does not wait for the device: completions are reclaimed later.
func (d *Net[C]) Send(n int) Status {
	if !d.ready {
		return ErrNotReady
	}
	if st := checkFrame(n); st != OK {
		d.stats.TxRejected++
		return st
	}
	if d.txNFree == 0 {
		d.stats.TxRingFull++
		return ErrAgain
	}
	d.txNFree--
	id := d.txFree[d.txNFree]
	off := offTXBufs + int(id)*bufStride
	clear(d.mem()[off : off+NetHeaderSize])
	d.tx.setDesc(d.txRing(), id, d.addr(off), uint32(NetHeaderSize+n), 0, 0)
	d.txBusy[id] = true
	d.tx.push(d.txRing(), id)
	d.tx.publish(d.txRing())
	d.stats.TxFrames++
	d.stats.TxBytes += uint64(n)
	if d.tx.needsKick(d.txRing()) {
		d.kick(queueTX)
	}
	return OK
}

// Transmit copies frame into a TX buffer and sends it (TxBuffer + Send).
func (d *Net[C]) Transmit(frame []byte) Status {
	if !d.ready {
		return ErrNotReady
	}
	if st := checkFrame(len(frame)); st != OK {
		d.stats.TxRejected++
		return st
	}
	buf, st := d.TxBuffer()
	if st != OK {
		return st
	}
	return d.Send(copy(buf, frame))
}

// checkFrame checks a TX frame length.
func checkFrame(n int) Status {
	switch {
	case n < MinFrame:
		return ErrRuntFrame
	case n > MaxFrame:
		return ErrOversizeFrame
	}
	return OK
}

// Interrupt handles an I/O interruption for this NIC (metal calls it when the subsystem-id word at
// lowcore 0xb8 equals SubchannelWord()). It clears the subchannel's status with TSCH and the queue
// indicators, and returns which waiters to wake.
func (d *Net[C]) Interrupt() Events {
	if !d.ready {
		return 0
	}
	d.stats.Interrupts++
	d.ch.Tsch(d.sid, &d.irb) // cc 0: status cleared; 1: nothing pending; 3: gone (the rings tell)
	binary.BigEndian.PutUint64(d.mem()[offIndicators:], 0)
	fullBarrier()
	var ev Events
	if d.Readable() {
		// The reader now knows; no more RX interruptions until the CPU is about to wait
		// (ArmRX), as NAPI does.
		ev |= EventReadable
		d.rxQuiet = true
		d.rx.setInterrupts(d.rxRing(), false)
	}
	if d.txWaiting {
		d.reclaimTX()
		if d.txNFree > 0 {
			d.txWaiting = false
			d.tx.setInterrupts(d.txRing(), false)
			ev |= EventWritable
		}
	}
	return ev
}

// ArmRX runs before the CPU waits for an interruption. After an RX interruption the driver
// leaves them off (VIRTQ_AVAIL_F_NO_INTERRUPT) for as long as the CPU is busy, even when the
// reader has drained the ring: under QEMU TCG an interruption raised while QEMU's main loop
// delivers a burst makes the vCPU wait for the iothread lock until the whole burst is in (an
// interruption and its TSCH each take it), which stalled the guest's work on the previous burst
// for up to the burst's length; with interruptions off the device only writes the ring, and the
// reader finds the frames (metal reports new ones to epoll by RxArrivals).
//
// Before the CPU waits, ArmRX switches them on again and looks once more. It reports true when a
// frame waits (one Peek returns: frames it drops are nothing to read). Interruptions stay on
// either way, so the wait hears the next frame even when nobody reads the waiting ones; a caller
// that found a reader for them and dispatches instead of waiting calls QuietRX.
func (d *Net[C]) ArmRX() bool {
	if !d.ready || !d.rxQuiet {
		return false
	}
	d.rx.setInterrupts(d.rxRing(), true)
	d.rxQuiet = false
	fullBarrier() // the flag store before the used-index load (§2.7.10)
	return d.Readable()
}

// QuietRX switches RX interruptions off after ArmRX reported a frame and its reader was woken:
// the CPU stays busy, and the next ArmRX switches them on again. A frame that arrived while they
// were on has raised an interruption, which is harmless.
func (d *Net[C]) QuietRX() {
	if !d.ready || d.rxQuiet {
		return
	}
	d.rxQuiet = true
	d.rx.setInterrupts(d.rxRing(), false)
}

// RxArrivals counts the frames the device has placed in the RX ring since Init (taken by the
// driver or waiting), without wrapping: it changes when a frame arrives, whether or not an
// interruption says so.
func (d *Net[C]) RxArrivals() uint64 {
	if !d.ready {
		return 0
	}
	return d.rxTaken + uint64(d.rx.Pending(d.rxRing()))
}

// Reset stops the device for the kernel handoff: VDEV_RESET (the device forgets the rings and stops
// DMA), then the subchannel is disabled. The driver is unusable afterwards.
func (d *Net[C]) Reset() Status {
	if d.sid == 0 {
		return OK
	}
	d.ready = false
	st := d.startIO(d.sid, ccwCmdVdevReset, 0, 0)
	if st2 := d.setEnabled(d.sid, false); st == OK {
		st = st2
	}
	return st
}

// MAC returns the NIC's MAC address (from virtio config space).
func (d *Net[C]) MAC() [6]byte { return d.mac }

// BusID returns the NIC's CCW bus id (/sys/class/net/eth0/device names it).
func (d *Net[C]) BusID() BusID { return d.bus }

// SubchannelWord returns the subsystem-identification word of the NIC's subchannel, as the
// I/O interruption stores it at lowcore 0xb8 (0 before Init found one).
func (d *Net[C]) SubchannelWord() uint32 { return uint32(d.sid) }

// ISC returns the interruption subclass the subchannel uses.
func (d *Net[C]) ISC() uint8 { return d.isc }

// Stats returns the driver's counters.
func (d *Net[C]) Stats() Stats { return d.stats }

// Candidates returns the virtio subchannels the scan found.
func (d *Net[C]) Candidates() []Candidate { return d.cands[:d.ncands] }

// Reason writes the one-line console message for an Init or Reset failure st into dst (no newline)
// and returns its length, e.g. "No virtio-net device found (IPL device 0.0.0007)".
func (d *Net[C]) Reason(dst []byte, st Status) int {
	var id [8]byte
	n := 0
	switch st {
	case ErrNoNIC:
		return putString(dst, n, st.String())
	case ErrNoNICAtIPLDevice:
		n = putString(dst, n, st.String())
		n = putString(dst, n, " (IPL device ")
		BusID{SSID: d.ipl.SSID, DevNo: d.ipl.DevNo}.Put(id[:])
		n += copy(dst[n:], id[:])
		return putString(dst, n, ")")
	case ErrDMAAlign, ErrDMAAbove2G:
		n = putString(dst, n, "virtio-net: ")
		n = putString(dst, n, st.String())
		n = putString(dst, n, " (need 0x")
		n = putHex(dst, n, DMASize)
		return putString(dst, n, " bytes, 4 KiB aligned, below 2 GiB)")
	}
	n = putString(dst, n, "virtio-net ")
	d.bus.Put(id[:])
	n += copy(dst[n:], id[:])
	n = putString(dst, n, ": ")
	n = putString(dst, n, st.String())
	switch st {
	case ErrChannel:
		n = putString(dst, n, " (")
		n = putString(dst, n, insnNames[d.fail.insn])
		n = putString(dst, n, " ")
		n = putString(dst, n, d.fail.cc.String())
		n = putString(dst, n, ")")
	case ErrTimeout, ErrCommandFailed, ErrRevision, ErrFeaturesRefused:
		n = putString(dst, n, " (CCW 0x")
		n = putHex(dst, n, uint32(d.fail.cmd))
		n = putString(dst, n, ", device status 0x")
		n = putHex(dst, n, uint32(d.fail.dstat))
		n = putString(dst, n, ", subchannel status 0x")
		n = putHex(dst, n, uint32(d.fail.sstat))
		n = putString(dst, n, ")")
	}
	return n
}
