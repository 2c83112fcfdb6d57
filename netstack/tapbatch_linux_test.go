package netstack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// frameLog is a stack.NetworkDispatcher that keeps each packet the link delivers and reads
// its frame (Ethernet header included) only when asked, so a buffer the link reused after
// handing it over shows as a corrupted frame.
type frameLog struct {
	mu   sync.Mutex
	pkts []*stack.PacketBuffer
}

func (r *frameLog) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = append(r.pkts, pkt.IncRef())
}

func (r *frameLog) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (r *frameLog) delivered() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var frames [][]byte
	for _, pkt := range r.pkts {
		v := stack.PayloadSince(pkt.LinkHeader())
		frames = append(frames, bytes.Clone(v.AsSlice()))
		v.Release()
	}
	return frames
}

// waitFrames waits up to 5 s until r holds n frames, then 20 ms more for strays.
func (r *frameLog) waitFrames(n int) [][]byte {
	deadline := time.Now().Add(5 * time.Second)
	for len(r.delivered()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	return r.delivered()
}

// numberedFrame is a broadcast frame of length n (≥ 18) with EtherType 0x88b5 whose payload
// is seq and then bytes derived from seq, so a frame swapped, cut or mixed with another shows.
func numberedFrame(seq uint32, n int) []byte {
	f := make([]byte, n)
	header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(peerMAC), DstAddr: header.EthernetBroadcastAddress, Type: 0x88b5})
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < n; i++ {
		f[i] = byte(seq*7 + uint32(i))
	}
	return f
}

// batchCalls is a recvmmsg stand-in that counts the calls and what they returned. first, if
// set, answers the first call; limit > 0 passes at most limit messages (cycling 1..limit) to
// the real system call; every call checks that the slots the previous call left unfilled still
// hold the same buffers (the reader keeps them).
type batchCalls struct {
	first    unix.Errno
	limit    int
	calls    int
	frames   int
	maxBatch int
	moved    int // unfilled slots whose buffer changed before the next call
	bases    []*byte
	lastN    int
}

func (c *batchCalls) recvmmsg(fd int, msgs []rawfile.MMsgHdr) (int, unix.Errno) {
	c.calls++
	for i := c.lastN; i < len(c.bases) && i < len(msgs); i++ {
		if msgs[i].Msg.Iov.Base != c.bases[i] {
			c.moved++
		}
	}
	c.bases = c.bases[:0]
	for i := range msgs {
		c.bases = append(c.bases, msgs[i].Msg.Iov.Base)
	}
	c.lastN = 0
	if c.calls == 1 && c.first != 0 {
		return 0, c.first
	}
	if c.limit > 0 {
		msgs = msgs[:1+(c.calls-1)%c.limit]
	}
	n, errno := recvmmsg(fd, msgs)
	if errno == 0 {
		c.frames += n
		c.maxBatch = max(c.maxBatch, n)
		c.lastN = n
	}
	return n, errno
}

// TestTapLinkBatchedReads: whatever the reads return per call — whole batches of recvmmsg
// (a datagram socket pair supports it), short batches, or ENOTSOCK/ENOSYS on the first call
// (Linux's tap), after which the link reads one frame per read(2) for good — the stack gets
// every frame in order and intact, except those that fill the buffer (longer than the MTU
// allows: dropped), and frames queued before the reader starts arrive in one call. (How many
// calls the rest takes depends on how fast the writer goroutine is: not checked.)
func TestTapLinkBatchedReads(t *testing.T) {
	const mtu = 1500
	bufSize := mtu + header.EthernetMinimumSize + 4 + 1
	for _, tc := range []struct {
		name      string
		calls     batchCalls
		wantCalls func(c *batchCalls) bool
		want      string
	}{
		{name: "recvmmsg", wantCalls: func(c *batchCalls) bool { return c.maxBatch >= 20 },
			want: "the 20 frames queued before the start in one call"},
		{name: "short batches", calls: batchCalls{limit: 3}, wantCalls: func(c *batchCalls) bool { return c.maxBatch == 3 },
			want: "batches of at most 3"},
		{name: "ENOTSOCK first", calls: batchCalls{first: unix.ENOTSOCK}, wantCalls: func(c *batchCalls) bool { return c.calls == 1 },
			want: "recvmmsg called once"},
		{name: "ENOSYS first", calls: batchCalls{first: unix.ENOSYS}, wantCalls: func(c *batchCalls) bool { return c.calls == 1 },
			want: "recvmmsg called once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, peer := framePair(t)
			l, err := newTapLink(fd, mtu, tcpip.LinkAddress(guestMAC))
			if err != nil {
				t.Fatal(err)
			}
			calls := tc.calls
			l.frames.recvmmsg = calls.recvmmsg
			var sent, want [][]byte
			for seq := uint32(0); seq < 300; seq++ {
				n := 18 + int(seq*97)%(bufSize-18+1) // 18 .. bufSize
				switch seq % 50 {
				case 7:
					n = bufSize - 1 // the longest frame that fits
				case 8:
					n = bufSize // fills the buffer: dropped
				case 9:
					n = bufSize + 200 // truncated by the socket: dropped
				}
				f := numberedFrame(seq, n)
				sent = append(sent, f)
				if n < bufSize {
					want = append(want, f)
				}
			}
			for _, f := range sent[:20] { // queued before the reader starts
				if _, err := unix.Write(peer, f); err != nil {
					t.Fatal(err)
				}
			}
			rec := &frameLog{}
			l.Attach(rec)
			go func() {
				for _, f := range sent[20:] {
					if _, err := unix.Write(peer, f); err != nil {
						return // the test ended early
					}
				}
			}()
			got := rec.waitFrames(len(want))
			l.Attach(nil)
			l.waitReader()
			defer l.Close()
			if len(got) != len(want) {
				t.Errorf("%d frames delivered, want %d", len(got), len(want))
			}
			for i := range min(len(got), len(want)) {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d: got %d bytes (seq %d), want %d bytes (seq %d)", i, len(got[i]),
						binary.BigEndian.Uint32(got[i][14:]), len(want[i]), binary.BigEndian.Uint32(want[i][14:]))
				}
			}
			if !tc.wantCalls(&calls) {
				t.Errorf("recvmmsg: %d calls, %d frames, largest batch %d; want %s", calls.calls, calls.frames, calls.maxBatch, tc.want)
			}
			if calls.moved != 0 {
				t.Errorf("%d unfilled slots got a new buffer before the next call (want them kept)", calls.moved)
			}
			for i, v := range l.frames.views {
				if v != nil {
					t.Errorf("view of slot %d not released after the reader stopped", i)
				}
			}
			if err := l.err(); err != nil {
				t.Errorf("reader error %v", err)
			}
		})
	}
}

// TestTapLinkBatchEndOfFile: a frame of length 0 in the middle of a batch ends the reader with
// "end of file" after the frames before it, as a read(2) of 0 does; the frames after it are
// not delivered.
func TestTapLinkBatchEndOfFile(t *testing.T) {
	for _, first := range []unix.Errno{0, unix.ENOTSOCK} {
		t.Run(first.Error(), func(t *testing.T) {
			l, peer := pairLink(t)
			calls := batchCalls{first: first}
			l.frames.recvmmsg = calls.recvmmsg
			var want [][]byte
			for seq := uint32(0); seq < 6; seq++ {
				f := numberedFrame(seq, 100)
				if seq == 3 {
					f = nil
				} else if seq < 3 {
					want = append(want, f)
				}
				if _, err := unix.Write(peer, f); err != nil {
					t.Fatal(err)
				}
			}
			rec := &frameLog{}
			l.Attach(rec)
			l.waitReader() // the reader stops by itself
			got := rec.delivered()
			if len(got) != len(want) {
				t.Errorf("%d frames delivered, want %d (those before the empty one)", len(got), len(want))
			}
			for i := range min(len(got), len(want)) {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("frame %d differs", i)
				}
			}
			if err := l.err(); err == nil || err.Error() != "end of file" {
				t.Errorf("reader error %v, want end of file", err)
			}
			l.Close()
		})
	}
}

// TestTapLinkBatchError: an error other than EAGAIN, EINTR, ENOTSOCK or ENOSYS from recvmmsg
// stops the reader with that error (as from read(2)), and a stop releases the views.
func TestTapLinkBatchError(t *testing.T) {
	l, _ := pairLink(t)
	calls := batchCalls{first: unix.EIO}
	l.frames.recvmmsg = calls.recvmmsg
	l.Attach(&frameLog{})
	l.waitReader()
	if err := l.err(); !errors.Is(err, unix.EIO) {
		t.Errorf("reader error %v, want EIO", err)
	}
	for i, v := range l.frames.views {
		if v != nil {
			t.Errorf("view of slot %d not released", i)
		}
	}
}

// TestTapLinkBatchRestart: a reader stopped by Attach(nil) releases its views; the next one
// (Attach again) reads into new ones, and every frame arrives intact.
func TestTapLinkBatchRestart(t *testing.T) {
	l, peer := pairLink(t)
	var want [][]byte
	send := func(from, to uint32) {
		for seq := from; seq < to; seq++ {
			f := numberedFrame(seq, 60+int(seq)*100)
			want = append(want, f)
			if _, err := unix.Write(peer, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec := &frameLog{}
	send(0, 5)
	l.Attach(rec)
	rec.waitFrames(5)
	l.Attach(nil)
	l.waitReader()
	send(5, 12)
	l.Attach(rec)
	got := rec.waitFrames(12)
	if len(got) != len(want) {
		t.Fatalf("%d frames delivered, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d differs", i)
		}
	}
}
