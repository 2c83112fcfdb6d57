package virtio

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
)

// TestRefillNeverStarvesDevice drives the batched RX refill with random interleavings of a
// QEMU-like device (fakeCSS.offer: it queues frames while it has no buffer or a backlog, and
// takes the backlog only on a notification) and a reader that reads some frames, sometimes
// holds one between Peek and Release, and sometimes idles (metal calls FlushRX before its
// enabled wait). Over ring sizes below, at and above RxKickBatch it checks, at every step:
//   - a reader told ErrAgain leaves no frame queued at the device (it would wait for a
//     notification the driver does not send: the device starved while the reader sleeps);
//   - after an idle FlushRX, frames are queued at the device only if it has no buffer;
//   - frames arrive complete, once and in order.
func TestRefillNeverStarvesDevice(t *testing.T) {
	for _, size := range []uint16{8, 16, 32, 64, 256} {
		for seed := int64(0); seed < 4; seed++ {
			t.Run(fmt.Sprintf("ring%d/seed%d", size, seed), func(t *testing.T) {
				refillRun(t, size, seed)
			})
		}
	}
}

func refillRun(t *testing.T, size uint16, seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	nic := newFakeNet(0, 0, 1)
	nic.maxQueue[queueRX] = size
	f, dma := newFakeCSS(t, nic)
	f.logging = false
	d := initNet(t, f, dma, IPLDevice{})
	sent, got := 0, 0
	buf := make([]byte, 2048)
	want := func(i int) []byte { return frame(60+(i*37)%1400, byte(i)) }
	check := func(step int, what string) {
		t.Helper()
		if len(nic.backlog) > 0 && f.rxPosted(nic) > 0 {
			t.Fatalf("step %d (%s): %d frames queued at the device although %d buffers are posted (it waits for a notification)",
				step, what, len(nic.backlog), f.rxPosted(nic))
		}
	}
	for step := 0; step < 300; step++ {
		switch op := rnd.Intn(10); {
		case op < 4: // a burst arrives
			for k := rnd.Intn(min(3*int(size), 100)); k > 0; k-- {
				f.offer(nic, want(sent))
				sent++
			}
		case op < 8: // the reader reads up to n frames
			for n := rnd.Intn(min(2*int(size), 80)) + 1; n > 0; n-- {
				if rnd.Intn(8) == 0 { // Peek, look again, then Release (the tap read's two steps)
					b, st := d.Peek()
					if st == ErrAgain {
						break
					}
					if st != OK || !bytes.Equal(b, want(got)) {
						t.Fatalf("step %d: Peek frame %d = %d bytes, %v", step, got, len(b), st)
					}
					if b2, st2 := d.Peek(); st2 != OK || !bytes.Equal(b2, b) {
						t.Fatalf("step %d: second Peek of frame %d differs: %v", step, got, st2)
					}
					d.Release()
					got++
					continue
				}
				k, st := d.Receive(buf)
				if st == ErrAgain {
					if len(nic.backlog) > 0 {
						t.Fatalf("step %d: reader told ErrAgain with %d frames queued at the device (%d buffers posted, %d kicks)",
							step, len(nic.backlog), f.rxPosted(nic), nic.kicks[queueRX])
					}
					if got != sent {
						t.Fatalf("step %d: ErrAgain after %d of %d frames, nothing queued: frames lost", step, got, sent)
					}
					break
				}
				if st != OK || !bytes.Equal(buf[:k], want(got)) {
					t.Fatalf("step %d: frame %d: Receive = %d bytes, %v", step, got, k, st)
				}
				got++
			}
			// No check here: while the reader still has frames to read, buffers it gave back
			// may wait for the batch (the device is told before the reader can wait).
		default: // nothing runnable: metal's idle path announces the buffers, then waits
			d.FlushRX()
			check(step, "after FlushRX")
		}
	}
	// Drain: every frame offered arrives.
	for got < sent {
		k, st := d.Receive(buf)
		if st != OK || !bytes.Equal(buf[:k], want(got)) {
			t.Fatalf("drain: frame %d of %d: Receive = %d, %v (backlog %d)", got, sent, k, st, len(nic.backlog))
		}
		got++
	}
	if _, st := d.Receive(buf); st != ErrAgain || len(nic.backlog) != 0 {
		t.Fatalf("after the drain: Receive = %v, backlog %d", st, len(nic.backlog))
	}
	if d.Stats().RxFrames != uint64(sent) {
		t.Errorf("RxFrames = %d, want %d", d.Stats().RxFrames, sent)
	}
}
