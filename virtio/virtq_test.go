package virtio

import (
	"encoding/binary"
	"testing"
)

func TestRingSize(t *testing.T) {
	for _, tt := range []struct {
		num                   uint16
		availOff, usedOff, sz int
	}{
		{1, 16, 24, 38},
		{4, 64, 80, 118},
		{256, 4096, 4616, 6670},
	} {
		a, u, s := RingSize(tt.num)
		if a != tt.availOff || u != tt.usedOff || s != tt.sz {
			t.Errorf("RingSize(%d) = %d, %d, %d; want %d, %d, %d", tt.num, a, u, s, tt.availOff, tt.usedOff, tt.sz)
		}
		if a%2 != 0 || u%4 != 0 {
			t.Errorf("RingSize(%d): avail %d or used %d misaligned", tt.num, a, u)
		}
	}
}

// deviceSide is the device half of a ring for tests: it takes available heads and returns them.
type deviceSide struct {
	r         *Ring
	mem       []byte
	lastAvail uint16
	usedIdx   uint16
}

func (d *deviceSide) take() (uint16, bool) {
	idx := binary.LittleEndian.Uint16(d.mem[d.r.availOff+availIdx:])
	if idx == d.lastAvail {
		return 0, false
	}
	h := binary.LittleEndian.Uint16(d.mem[d.r.availOff+availRing+2*int(d.lastAvail%d.r.num):])
	d.lastAvail++
	return h, true
}

func (d *deviceSide) give(id uint16, n uint32) {
	e := d.r.usedOff + usedRing + usedElemSize*int(d.usedIdx%d.r.num)
	binary.LittleEndian.PutUint32(d.mem[e:], uint32(id))
	binary.LittleEndian.PutUint32(d.mem[e+4:], n)
	d.usedIdx++
	binary.LittleEndian.PutUint16(d.mem[d.r.usedOff+usedIdx:], d.usedIdx)
}

func newTestRing(num, start uint16) (*Ring, *deviceSide) {
	_, _, size := RingSize(num)
	r := new(Ring)
	mem := make([]byte, size)
	r.init(mem, num, start)
	return r, &deviceSide{r: r, mem: mem, lastAvail: start, usedIdx: start}
}

func TestRingWraparound(t *testing.T) {
	r, dev := newTestRing(8, 0xfffa)
	for i := uint16(0); i < 8; i++ {
		r.setDesc(dev.mem, i, 0x1000*uint64(i), 100+uint32(i), descFWrite, 0)
		r.push(dev.mem, i)
	}
	if got := binary.LittleEndian.Uint16(dev.mem[r.availOff+availIdx:]); got != 0xfffa {
		t.Fatalf("avail.idx = %#x before publish, want unchanged 0xfffa", got)
	}
	r.publish(dev.mem)
	if got := binary.LittleEndian.Uint16(dev.mem[r.availOff+availIdx:]); got != 0x0002 {
		t.Fatalf("avail.idx = %#x after 8 pushes from 0xfffa, want 0x0002", got)
	}
	if r.InFlight() != 8 || r.Pending(dev.mem) != 0 {
		t.Fatalf("InFlight, Pending = %d, %d; want 8, 0", r.InFlight(), r.Pending(dev.mem))
	}
	// Slot (0xfffa % 8) = 2 holds the first head.
	if h := binary.LittleEndian.Uint16(dev.mem[r.availOff+availRing+2*2:]); h != 0 {
		t.Errorf("avail.ring[2] = %d, want head 0", h)
	}
	for round := 0; round < 3; round++ {
		var order []uint16
		for {
			h, ok := dev.take()
			if !ok {
				break
			}
			order = append(order, h)
		}
		if len(order) != 8 {
			t.Fatalf("round %d: device took %d heads, want 8", round, len(order))
		}
		for i := len(order) - 1; i >= 0; i-- { // out-of-order completion
			_, l, _, _ := r.desc(dev.mem, order[i])
			dev.give(order[i], l)
		}
		if r.Pending(dev.mem) != 8 {
			t.Fatalf("round %d: Pending = %d, want 8", round, r.Pending(dev.mem))
		}
		for i := len(order) - 1; i >= 0; i-- {
			id, l, ok := r.used(dev.mem)
			if !ok || uint16(id) != order[i] || l != 100+uint32(order[i]) {
				t.Fatalf("round %d: used() = %d, %d, %v; want %d, %d", round, id, l, ok, order[i], 100+uint32(order[i]))
			}
			r.push(dev.mem, uint16(id))
		}
		if _, _, ok := r.used(dev.mem); ok {
			t.Fatalf("round %d: used() returned an entry past used.idx", round)
		}
		r.publish(dev.mem)
	}
}

func TestRingHostileUsedIndex(t *testing.T) {
	r, dev := newTestRing(4, 0)
	r.push(dev.mem, 0)
	r.push(dev.mem, 1)
	r.publish(dev.mem)
	binary.LittleEndian.PutUint16(dev.mem[r.usedOff+usedIdx:], 0x8000) // claims 32768 completions
	if p := r.Pending(dev.mem); p != 2 {
		t.Errorf("Pending with used.idx far ahead = %d, want 2 (clamped to in flight)", p)
	}
	n := 0
	for {
		if _, _, ok := r.used(dev.mem); !ok {
			break
		}
		n++
	}
	if n != 2 || r.InFlight() != 0 {
		t.Errorf("consumed %d entries, %d still in flight; want 2, 0", n, r.InFlight())
	}
}

func TestRingKickAndInterruptFlags(t *testing.T) {
	r, dev := newTestRing(4, 0)
	if !r.needsKick(dev.mem) {
		t.Error("needsKick with used.flags = 0")
	}
	binary.LittleEndian.PutUint16(dev.mem[r.usedOff+usedFlags:], usedFNoNotify)
	if r.needsKick(dev.mem) {
		t.Error("needsKick with VIRTQ_USED_F_NO_NOTIFY")
	}
	r.setInterrupts(dev.mem, false)
	if f := binary.LittleEndian.Uint16(dev.mem[r.availOff+availFlags:]); f != availFNoInterrupt {
		t.Errorf("avail.flags = %#x, want VIRTQ_AVAIL_F_NO_INTERRUPT", f)
	}
	r.setInterrupts(dev.mem, true)
	if f := binary.LittleEndian.Uint16(dev.mem[r.availOff+availFlags:]); f != 0 {
		t.Errorf("avail.flags = %#x, want 0", f)
	}
}

// FuzzRing drives a ring with a random program of driver and device steps, starting at a random
// index, and checks the invariants: nothing is lost or duplicated, in-flight never exceeds num,
// completions come back in used-ring order, and the indices agree modulo 2^16.
func FuzzRing(f *testing.F) {
	f.Add(uint16(0), uint8(3), []byte{0x10, 0x21, 0x32, 0x03, 0x44})
	f.Add(uint16(0xfffe), uint8(0), []byte{0xff, 0xff, 0x7f, 0x80, 0x01})
	f.Add(uint16(0x7fff), uint8(7), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, start uint16, logNum uint8, prog []byte) {
		if len(prog) > 4096 {
			return
		}
		num := uint16(1) << (logNum % 9) // 1..256
		r, dev := newTestRing(num, start)
		free := make([]uint16, 0, num)
		for i := uint16(0); i < num; i++ {
			free = append(free, i)
		}
		var atDevice []uint16 // taken by the device, not yet returned
		var returned []uint16 // returned by the device, not yet seen by used()
		busy := make([]bool, num)
		for _, op := range prog {
			n := int(op>>2) + 1
			switch op & 3 {
			case 0: // driver posts up to n buffers
				for ; n > 0 && len(free) > 0; n-- {
					id := free[len(free)-1]
					free = free[:len(free)-1]
					if busy[id] {
						t.Fatalf("descriptor %d posted twice", id)
					}
					busy[id] = true
					r.setDesc(dev.mem, id, uint64(id)*2048, 2048, descFWrite, 0)
					r.push(dev.mem, id)
				}
				r.publish(dev.mem)
			case 1: // device takes up to n
				for ; n > 0; n-- {
					h, ok := dev.take()
					if !ok {
						break
					}
					atDevice = append(atDevice, h)
				}
			case 2: // device returns up to n, newest first when n is odd
				for ; n > 0 && len(atDevice) > 0; n-- {
					i := 0
					if op&4 != 0 {
						i = len(atDevice) - 1
					}
					h := atDevice[i]
					atDevice = append(atDevice[:i], atDevice[i+1:]...)
					dev.give(h, uint32(h))
					returned = append(returned, h)
				}
			case 3: // driver reclaims up to n
				for ; n > 0; n-- {
					id, l, ok := r.used(dev.mem)
					if !ok {
						break
					}
					if len(returned) == 0 || uint16(id) != returned[0] || l != id {
						t.Fatalf("used() = %d, %d; want %v first", id, l, returned)
					}
					returned = returned[1:]
					busy[id] = false
					free = append(free, uint16(id))
				}
			}
			if int(r.InFlight()) > int(num) || int(r.InFlight()) != int(num)-len(free) {
				t.Fatalf("InFlight = %d with %d of %d free", r.InFlight(), len(free), num)
			}
			if int(r.Pending(dev.mem)) != len(returned) {
				t.Fatalf("Pending = %d, device returned %d", r.Pending(dev.mem), len(returned))
			}
			if r.nextAvail-dev.lastAvail != uint16(int(num)-len(free)-len(atDevice)-len(returned)) {
				t.Fatalf("avail index %#x, device at %#x: %d posted but not taken", r.nextAvail, dev.lastAvail, r.nextAvail-dev.lastAvail)
			}
		}
	})
}
