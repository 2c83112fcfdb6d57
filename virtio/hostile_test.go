package virtio

import (
	"encoding/binary"
	"testing"
)

// FuzzHostileDevice lets a device write arbitrary used-ring entries (ids, lengths, indices) and
// checks the driver neither panics nor hands out memory outside a buffer, and keeps its RX ring
// accounting: every descriptor it believes posted is distinct and the device sees them all.
func FuzzHostileDevice(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 60, 0, 1, 0, 0, 0, 255, 255, 2, 0xff, 0, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 600 {
			return
		}
		nic := newFakeNet(0, 0, 1)
		fc, dma := newFakeCSS(t, nic)
		fc.logging = false
		d := new(Net[*fakeCSS])
		if st := d.Init(fc, dma, IPLDevice{}, 3); st != OK {
			t.Fatalf("Init = %v", st)
		}
		rxq, txq := &nic.queues[queueRX], &nic.queues[queueTX]
		buf := make([]byte, 2048)
		for len(prog) >= 6 {
			op, id, l := prog[0], binary.LittleEndian.Uint16(prog[1:]), binary.LittleEndian.Uint32(prog[2:])
			prog = prog[6:]
			switch op % 5 {
			case 0: // a used RX entry with any id and length
				fc.pushUsed(rxq, id, l)
			case 1: // a used TX entry
				fc.pushUsed(txq, id, l)
			case 2: // a wild used.idx
				binary.LittleEndian.PutUint16(fc.bytes(rxq.up+2, 2), id)
				rxq.usedIdx = id
			case 3:
				d.Interrupt()
				for {
					n, st := d.Receive(buf)
					if st != OK {
						break
					}
					if n < MinFrame || n > MaxFrame {
						t.Fatalf("Receive returned %d bytes", n)
					}
				}
			case 4:
				d.Transmit(frame(60+int(l%1400), byte(id)))
			}
		}
		posted := 0
		for _, p := range d.rxPosted[:d.rx.num] {
			if p {
				posted++
			}
		}
		if posted > int(d.rx.num) || int(d.rx.InFlight()) > int(d.rx.num) {
			t.Fatalf("%d descriptors posted, %d in flight, ring of %d", posted, d.rx.InFlight(), d.rx.num)
		}
		if d.txNFree > d.tx.num {
			t.Fatalf("%d free TX descriptors of %d", d.txNFree, d.tx.num)
		}
	})
}
