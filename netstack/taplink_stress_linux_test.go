package netstack

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestTapLinkConcurrentControl runs the reader (batched reads, the coalescer merging a TCP
// stream) while other goroutines change the MTU, read Capabilities, MTU and LinkAddress,
// detach and re-attach, then closes the link with frames still coming: no data race (go test
// -race; a reader stopped by Attach(nil) released its views after a new one had started), no
// panic, the reader returns, and no RX checksum offload is reported once it has.
func TestTapLinkConcurrentControl(t *testing.T) {
	fd, peer := framePair(t)
	l, err := newTapLink(fd, 1500, tcpip.LinkAddress(guestMAC))
	if err != nil {
		t.Fatal(err)
	}
	l.co = &tcpCoalescer{mac: tcpip.LinkAddress(guestMAC)}
	if err := unix.SetNonblock(peer, true); err != nil { // a full pair drops, never blocks
		t.Fatal(err)
	}
	rec := &packetRecorder{l: l}
	l.Attach(rec)
	stopPeer, stopControl := make(chan struct{}), make(chan struct{})
	var peerDone, controlDone sync.WaitGroup
	var offloadSeen atomic.Int64
	run := func(wg *sync.WaitGroup, stop chan struct{}, f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	run(&peerDone, stopPeer, func(i int) { // the peer: bursts of a TCP stream and a broadcast frame
		seq := uint32(i * 8 * 1000)
		for k := 0; k < 8; k++ {
			unix.Write(peer, ethFrame(tcpFrame(segmentSpec{seq: seq + uint32(k*1000), payload: make([]byte, 1000)})))
		}
		unix.Write(peer, numberedFrame(uint32(i), 100))
		time.Sleep(100 * time.Microsecond)
	})
	run(&controlDone, stopControl, func(i int) {
		l.SetMTU(uint32(1400 + 100*(i%2)))
		time.Sleep(50 * time.Microsecond)
	})
	run(&controlDone, stopControl, func(i int) {
		if l.Capabilities()&stack.CapabilityRXChecksumOffload != 0 {
			offloadSeen.Add(1)
		}
		_, _ = l.MTU(), l.LinkAddress()
	})
	run(&controlDone, stopControl, func(i int) {
		time.Sleep(2 * time.Millisecond)
		l.Attach(nil)
		l.Attach(rec)
	})
	time.Sleep(150 * time.Millisecond)
	close(stopControl) // the link's owner joins the reader only once it stopped attaching
	controlDone.Wait()
	l.Close()
	done := make(chan struct{})
	go func() { l.waitReader(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not return after Close")
	}
	close(stopPeer)
	peerDone.Wait()
	if len(rec.delivered()) == 0 {
		t.Error("no packet delivered")
	}
	if l.Capabilities()&stack.CapabilityRXChecksumOffload != 0 {
		t.Error("RX checksum offload reported after the reader returned")
	}
	t.Logf("%d packets delivered; offload seen by another goroutine %d times", len(rec.delivered()), offloadSeen.Load())
}
