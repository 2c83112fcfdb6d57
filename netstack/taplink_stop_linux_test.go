package netstack

import (
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestTapLinkErrorDeliversPending: a reader that stops on a read error first delivers the packet
// the coalescer holds (the segments read before the error are the stack's), and leaves nothing
// pending (its view would never be released).
func TestTapLinkErrorDeliversPending(t *testing.T) {
	fd, _ := framePair(t)
	l, err := newTapLink(fd, 1500, tcpip.LinkAddress(guestMAC))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
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
