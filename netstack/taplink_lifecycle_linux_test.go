package netstack

// The tap link's reader across detach, re-attach, errors and concurrent control calls.

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// readerGoroutines counts the goroutines running l's reader (a stack trace shows the receiver).
func readerGoroutines(l *tapLink) int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fmt.Sprintf("(*tapLink).readLoop(%p", l))
}

// TestTapLinkReattachOneReader: Attach(nil) followed at once by Attach(d) (no waitReader in
// between, as when a NIC is removed and another created on the same link) must leave exactly
// one reader: two would share the reader's batch views and the coalescer (silent corruption),
// and none would leave the link deaf. Every frame sent afterwards arrives once, in order.
func TestTapLinkReattachOneReader(t *testing.T) {
	l, peer := pairLink(t)
	rec := &frameLog{}
	l.Attach(rec)
	for i := 0; i < 50; i++ {
		l.Attach(nil)
		l.Attach(rec)
	}
	time.Sleep(50 * time.Millisecond) // let stopped readers return
	if n := readerGoroutines(l); n != 1 {
		t.Errorf("%d readers run after re-attaching, want 1", n)
	}
	var want [][]byte
	for seq := uint32(0); seq < 100; seq++ {
		f := numberedFrame(seq, 60+int(seq)*10)
		want = append(want, f)
		if _, err := unix.Write(peer, f); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.waitFrames(len(want))
	if len(got) != len(want) {
		t.Fatalf("%d frames delivered, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

// TestTapLinkConcurrentControl runs the reader (batched reads, the coalescer merging a TCP
// stream) while other goroutines change the MTU, read Capabilities, MTU and LinkAddress,
// detach and re-attach, then closes the link with frames still coming: no data race (go test
// -race; a reader stopped by Attach(nil) released its views after a new one had started), no
// panic, the reader returns, and no RX checksum offload is reported once it has.
func TestTapLinkConcurrentControl(t *testing.T) {
	l, peer := pairLink(t)
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

// TestTapLinkErrorDeliversPending: a reader that stops on a read error first delivers the packet
// the coalescer holds (the segments read before the error are the stack's), and leaves nothing
// pending (its view would never be released).
func TestTapLinkErrorDeliversPending(t *testing.T) {
	l, _ := pairLink(t)
	l.co = &tcpCoalescer{mac: tcpip.LinkAddress(guestMAC)}
	var frames [][]byte
	for i := 0; i < 3; i++ {
		frames = append(frames, ethFrame(tcpFrame(segmentSpec{seq: uint32(1000 + 1000*i), payload: payloadOf(t, 1000, i)})))
	}
	calls := 0
	l.frames.recvmmsg = func(fd int, msgs []rawfile.MMsgHdr) (int, unix.Errno) {
		calls++
		if calls > 1 {
			return 0, unix.EIO
		}
		for i, f := range frames {
			copy(unsafe.Slice(msgs[i].Msg.Iov.Base, msgs[i].Msg.Iov.Len), f)
			msgs[i].Len = uint32(len(f))
		}
		return len(frames), 0
	}
	rec := &packetRecorder{l: l}
	l.Attach(rec)
	l.waitReader()
	if want := []int{header.IPv4MinimumSize + header.TCPMinimumSize + 3000}; !slices.Equal(rec.delivered(), want) {
		t.Errorf("delivered packets of %v bytes, want %v", rec.delivered(), want)
	}
	if l.co.holds() {
		t.Error("the coalescer still holds a packet after the reader stopped")
	}
}
