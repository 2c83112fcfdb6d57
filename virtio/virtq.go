package virtio

import "encoding/binary"

// Split virtqueue, VIRTIO 1.2 §2.7. All ring fields are little-endian (a revision ≥ 1 device on this
// big-endian CPU), so the ring is a byte-slice view with explicit accessors (style B6), never a Go struct.

// Descriptor table entry, VIRTIO 1.2 §2.7.5 "struct virtq_desc", 16 bytes.
const (
	descAddr  = 0  // le64 addr: guest-physical buffer address
	descLen   = 8  // le32 len
	descFlags = 12 // le16 flags
	descNext  = 14 // le16 next
	descSize  = 16

	descFNext  = 1 // VIRTQ_DESC_F_NEXT: the buffer continues via next
	descFWrite = 2 // VIRTQ_DESC_F_WRITE: device writes (otherwise reads)
)

// Available ring, VIRTIO 1.2 §2.7.6 "struct virtq_avail": le16 flags, le16 idx, le16 ring[num], le16 used_event.
const (
	availFlags = 0
	availIdx   = 2
	availRing  = 4

	availFNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT
)

// Used ring, VIRTIO 1.2 §2.7.8 "struct virtq_used": le16 flags, le16 idx, {le32 id, le32 len} ring[num], le16 avail_event.
const (
	usedFlags    = 0
	usedIdx      = 2
	usedRing     = 4
	usedElemSize = 8

	usedFNoNotify = 1 // VIRTQ_USED_F_NO_NOTIFY
)

// RingSize returns the bytes a split virtqueue of num entries needs, and the offsets of its
// available and used rings from the descriptor table (alignments 16, 2 and 4, VIRTIO 1.2 §2.7).
func RingSize(num uint16) (availOff, usedOff, size int) {
	availOff = descSize * int(num)
	usedOff = (availOff + availRing + 2*int(num) + 2 + 3) &^ 3
	size = usedOff + usedRing + usedElemSize*int(num) + 2
	return availOff, usedOff, size
}

// Ring is the driver side of one split virtqueue. It holds no pointer (metal stores it in kernel
// memory, where a pointer store would need the Go runtime's write barrier): every method takes the
// ring's memory, the bytes from its descriptor table on, as mem.
// num is a power of two ≤ 2^15; the free-running 16-bit indices wrap at 2^16 as the spec requires.
// The zero Ring is unusable; call init.
type Ring struct {
	num       uint16
	availOff  int
	usedOff   int
	nextAvail uint16 // the avail.idx value the next Publish writes
	lastUsed  uint16 // the used.idx value of the next entry Used returns
}

// init lays the ring over mem (at least RingSize(num) bytes, zeroed here) starting at index start
// (0 for a fresh device; tests start near 2^16 to exercise wraparound).
func (r *Ring) init(mem []byte, num uint16, start uint16) {
	a, u, size := RingSize(num)
	clear(mem[:size])
	r.num, r.availOff, r.usedOff = num, a, u
	r.nextAvail, r.lastUsed = start, start
	binary.LittleEndian.PutUint16(mem[a+availIdx:], start)
	binary.LittleEndian.PutUint16(mem[u+usedIdx:], start)
}

// Num returns the queue size.
func (r *Ring) Num() uint16 { return r.num }

// setDesc fills descriptor i.
func (r *Ring) setDesc(mem []byte, i uint16, addr uint64, length uint32, flags, next uint16) {
	d := mem[int(i)*descSize : int(i)*descSize+descSize]
	binary.LittleEndian.PutUint64(d[descAddr:], addr)
	binary.LittleEndian.PutUint32(d[descLen:], length)
	binary.LittleEndian.PutUint16(d[descFlags:], flags)
	binary.LittleEndian.PutUint16(d[descNext:], next)
}

// desc reads descriptor i.
func (r *Ring) desc(mem []byte, i uint16) (addr uint64, length uint32, flags, next uint16) {
	d := mem[int(i)*descSize : int(i)*descSize+descSize]
	return binary.LittleEndian.Uint64(d[descAddr:]), binary.LittleEndian.Uint32(d[descLen:]),
		binary.LittleEndian.Uint16(d[descFlags:]), binary.LittleEndian.Uint16(d[descNext:])
}

// push appends the chain starting at descriptor head to the available ring; the device sees it
// only after publish.
func (r *Ring) push(mem []byte, head uint16) {
	slot := r.availOff + availRing + 2*int(r.nextAvail&(r.num-1))
	binary.LittleEndian.PutUint16(mem[slot:], head)
	r.nextAvail++
}

// publish makes every pushed chain visible: the ring entries are ordered before avail.idx
// (VIRTIO 1.2 §2.7.13 "Updating idx").
func (r *Ring) publish(mem []byte) {
	storeBarrier()
	binary.LittleEndian.PutUint16(mem[r.availOff+availIdx:], r.nextAvail)
}

// usedIndex reads the device's used.idx.
func (r *Ring) usedIndex(mem []byte) uint16 {
	idx := binary.LittleEndian.Uint16(mem[r.usedOff+usedIdx:])
	loadBarrier()
	return idx
}

// Pending returns how many used entries the device has returned that the driver has not taken.
// A device that claims more than num (a broken or hostile device) is clamped to num.
func (r *Ring) Pending(mem []byte) uint16 {
	n := r.usedIndex(mem) - r.lastUsed
	if n > r.InFlight() {
		return r.InFlight()
	}
	return n
}

// InFlight returns how many published chains the device has not returned yet.
func (r *Ring) InFlight() uint16 { return r.nextAvail - r.lastUsed }

// used takes the next used entry: the head id and the bytes the device wrote.
func (r *Ring) used(mem []byte) (id uint32, length uint32, ok bool) {
	if r.Pending(mem) == 0 {
		return 0, 0, false
	}
	e := r.usedOff + usedRing + usedElemSize*int(r.lastUsed&(r.num-1))
	id = binary.LittleEndian.Uint32(mem[e:])
	length = binary.LittleEndian.Uint32(mem[e+4:])
	r.lastUsed++
	return id, length, true
}

// needsKick reports whether the device asked to be notified of new buffers (VIRTQ_USED_F_NO_NOTIFY
// clear). The full barrier orders the preceding avail.idx store before the flag load (§2.7.13.4).
func (r *Ring) needsKick(mem []byte) bool {
	fullBarrier()
	return binary.LittleEndian.Uint16(mem[r.usedOff+usedFlags:])&usedFNoNotify == 0
}

// setInterrupts sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT (a hint the device may ignore).
func (r *Ring) setInterrupts(mem []byte, on bool) {
	var f uint16
	if !on {
		f = availFNoInterrupt
	}
	binary.LittleEndian.PutUint16(mem[r.availOff+availFlags:], f)
	fullBarrier()
}
