package netstack

import (
	"bytes"
	"math/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tcpRig is a Stack over a frame socket pair with one accepted TCP connection whose peer is the
// test: it sends hand-made segments (tcpRig.seg) and discards what the stack sends back.
type tcpRig struct {
	st   *Stack
	peer int
	conn *gonet.TCPConn
	irs  uint32 // the peer's initial sequence number: stream byte i has sequence irs+1+i
	ack  uint32 // the stack's initial sequence number + 1
	stop chan struct{}
	done sync.WaitGroup
}

// rigISS puts the peer's sequence numbers 16 KiB before they wrap around.
const rigISS = 0xffffc000

// newTCPRig builds the stack (coalesce: the tap link merges TCP frames; otherwise WrapLink, an
// identity wrapper, turns merging off) and completes a handshake with no TCP options (no window
// scaling: the stack's window is at most 64 KiB).
func newTCPRig(t testing.TB, coalesce bool) *tcpRig {
	t.Helper()
	tapFD, peer := framePair(t)
	cfg := Config{TapFD: tapFD, MAC: guestMAC}
	if !coalesce {
		cfg.WrapLink = func(l stack.LinkEndpoint) stack.LinkEndpoint { return l }
	}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRig{st: st, peer: peer, irs: rigISS, stop: make(chan struct{})}
	t.Cleanup(func() {
		if r.conn != nil {
			r.conn.Close()
		}
		close(r.stop)
		r.done.Wait()
		st.Close() // framePair's clean-up closes the peer end after this one
	})
	if coalesce != (st.tap.co != nil) {
		t.Fatalf("coalescing = %v, want %v", st.tap.co != nil, coalesce)
	}
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	if err := st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, coalesceSrc, tcpip.LinkAddress(peerMAC)); err != nil {
		t.Fatal(err)
	}
	l, err := st.ListenTCP(netip.MustParseAddrPort("10.0.2.15:80"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := unix.Write(r.peer, r.frame(rigSegment{seq: r.irs, flags: header.TCPFlagSyn, window: 65535})); err != nil {
		t.Fatal(err)
	}
	for {
		f, ok := pollFrame(r.peer, 5*time.Second)
		if !ok {
			t.Fatal("no SYN-ACK within 5 s")
		}
		if tcp, ok := tcpOf(f); ok && tcp.Flags() == header.TCPFlagSyn|header.TCPFlagAck {
			r.ack = tcp.SequenceNumber() + 1
			break
		}
	}
	r.irs++ // the SYN took one
	if _, err := unix.Write(r.peer, r.frame(rigSegment{seq: r.irs})); err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r.conn = c.(*gonet.TCPConn)
	r.done.Add(1)
	go func() { // discard the stack's ACKs so its writes never find the pair full
		defer r.done.Done()
		buf := make([]byte, 2048)
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			pfd := []unix.PollFd{{Fd: int32(r.peer), Events: unix.POLLIN}}
			if n, _ := unix.Poll(pfd, 20); n > 0 {
				unix.Read(r.peer, buf)
			}
		}
	}()
	return r
}

// tcpOf returns the TCP header of an IPv4/TCP Ethernet frame.
func tcpOf(f []byte) (header.TCP, bool) {
	if len(f) < tcpOff+header.TCPMinimumSize || header.Ethernet(f).Type() != header.IPv4ProtocolNumber {
		return nil, false
	}
	ip := header.IPv4(f[ipOff:])
	if ip.Protocol() != uint8(header.TCPProtocolNumber) {
		return nil, false
	}
	return header.TCP(ip.Payload()), true
}

// rigSegment is one segment from the peer (10.0.2.2:40000) to the stack (10.0.2.15:80).
type rigSegment struct {
	seq     uint32
	flags   header.TCPFlags // 0: ACK
	window  uint16          // 0: 65535
	options []byte          // TCP options, a multiple of 4 bytes
	payload []byte
	// sumDelta is added (one's complement) to the correct TCP checksum: not 0 makes it bad.
	sumDelta uint16
	tos      uint8
}

// frame builds the Ethernet frame of s with valid IPv4 and (unless s.sumDelta) TCP checksums.
func (r *tcpRig) frame(s rigSegment) []byte {
	if s.flags == 0 {
		s.flags = header.TCPFlagAck
	}
	if s.window == 0 {
		s.window = 65535
	}
	thl := header.TCPMinimumSize + len(s.options)
	b := make([]byte, tcpOff+thl+len(s.payload))
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(peerMAC), DstAddr: tcpip.LinkAddress(guestMAC), Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(b[ipOff:])
	ip.Encode(&header.IPv4Fields{TOS: s.tos, TotalLength: uint16(len(b) - ipOff), TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: coalesceSrc, DstAddr: coalesceDst})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[tcpOff:])
	ack := r.ack
	if s.flags&header.TCPFlagAck == 0 {
		ack = 0
	}
	tcp.Encode(&header.TCPFields{SrcPort: 40000, DstPort: 80, SeqNum: s.seq, AckNum: ack, DataOffset: uint8(thl), Flags: s.flags, WindowSize: s.window})
	copy(tcp[header.TCPMinimumSize:], s.options)
	copy(tcp[thl:], s.payload)
	ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, coalesceSrc, coalesceDst, uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Combine(checksum.Checksum(tcp, ps), s.sumDelta))
	return b
}

// send writes frames back to back, so that the tap link finds several in one wake-up.
func (r *tcpRig) send(t testing.TB, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(r.peer, f); err != nil {
			t.Fatal(err)
		}
	}
}

// data returns stream bytes [from, to) of the test stream.
func streamBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// readStream reads n bytes from the connection, or what came within the deadline.
func (r *tcpRig) readStream(n int, wait time.Duration) []byte {
	got := make([]byte, 0, n)
	buf := make([]byte, 65536)
	r.conn.SetReadDeadline(time.Now().Add(wait))
	for len(got) < n {
		k, err := r.conn.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			break
		}
	}
	return got
}

// inOrder returns frames carrying stream [0, n) of want in segments of mss bytes.
func (r *tcpRig) inOrder(want []byte, mss int) [][]byte {
	var fs [][]byte
	for off := 0; off < len(want); off += mss {
		end := min(off+mss, len(want))
		fs = append(fs, r.frame(rigSegment{seq: r.irs + uint32(off), payload: want[off:end]}))
	}
	return fs
}

// playOps turns fuzz bytes into segments for a stream of len(want) bytes: 4 bytes per segment
// (kind, start high, start low, length). Kinds: in-order continuation, arbitrary range (gaps,
// overlaps, retransmissions, data beyond what was sent), a corrupted payload with the original
// checksum, a bad checksum, PSH, timestamps that differ per segment, a pure ACK with a new window,
// an ECN mark, URG, and a pause that ends the tap link's burst.
func (r *tcpRig) playOps(t testing.TB, want []byte, ops []byte) {
	t.Helper()
	n := len(want)
	next := 0
	var burst [][]byte
	flush := func() { r.send(t, burst...); burst = burst[:0] }
	for i := 0; i+4 <= len(ops) && i < 4*200; i += 4 {
		kind, start := ops[i]%12, (int(ops[i+1])<<8|int(ops[i+2]))%n
		length := 1 + int(ops[i+3])*6 // 1..1531
		if kind <= 1 {
			start = next
		}
		end := min(start+length, n)
		if start >= end {
			continue
		}
		s := rigSegment{seq: r.irs + uint32(start), payload: append([]byte(nil), want[start:end]...)}
		switch kind {
		case 0, 1, 2:
			if kind <= 1 {
				next = end % n
			}
		case 3: // payload corrupted in flight: the checksum is the original's
			s.payload[int(ops[i+3])%len(s.payload)] ^= 1 << (ops[i+2] % 8)
			f := r.frame(rigSegment{seq: s.seq, payload: want[start:end]})
			copy(f[len(f)-len(s.payload):], s.payload)
			burst = append(burst, f)
			continue
		case 4:
			s.sumDelta = uint16(ops[i+1])<<8 | uint16(ops[i+3]) | 1
		case 5:
			s.flags = header.TCPFlagAck | header.TCPFlagPsh
		case 6: // NOP NOP TS(val, ecr)
			s.options = []byte{1, 1, 8, 10, 0, 0, 0, ops[i+1], 0, 0, 0, 0}
		case 7: // pure ACK, window change
			s.payload = nil
			s.window = uint16(ops[i+1])<<8 | 0xff
		case 8:
			s.tos = 3 // ECN CE
		case 9:
			s.flags = header.TCPFlagAck | header.TCPFlagUrg
		case 10:
			s.flags = header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagUrg
			s.sumDelta = 0x100
		case 11:
			flush()
			time.Sleep(time.Duration(ops[i+1]%4) * 100 * time.Microsecond)
			continue
		}
		burst = append(burst, r.frame(s))
	}
	flush()
}

// checkCoalescedStream plays ops against a stack, then sends the whole stream in order and
// requires exactly the stream: no corrupted, misplaced, lost or duplicated byte.
func checkCoalescedStream(t testing.TB, coalesce bool, seed int64, n int, ops []byte) (merged uint64) {
	t.Helper()
	r := newTCPRig(t, coalesce)
	want := streamBytes(seed, n)
	r.playOps(t, want, ops)
	r.send(t, r.inOrder(want, 1460)...)
	got := r.readStream(n, 5*time.Second)
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("coalesce=%v: stream differs at byte %d (got %d bytes, want %d); stats %+v, merged %d, gVisor TCP checksum errors %d",
			coalesce, i, len(got), len(want), r.st.Stats(), r.st.framesMerged(), r.st.Stack().Stats().TCP.ChecksumErrors.Value())
	}
	return r.st.framesMerged()
}

// coalesceSeeds are op sequences worth keeping: in order, in order with a corrupted frame inside a
// burst, overlaps and retransmissions, differing timestamps, flags and windows.
func coalesceSeeds() [][]byte {
	var seeds [][]byte
	inorder := func(k int, lens ...byte) []byte {
		var b []byte
		for _, l := range lens {
			b = append(b, byte(k), 0, 0, l)
		}
		return b
	}
	seeds = append(seeds,
		inorder(0, 243, 243, 243, 243, 243, 243, 243, 243),
		append(inorder(0, 200, 201, 200), append([]byte{3, 0, 5, 200}, inorder(0, 200, 200)...)...),
		append(inorder(0, 150, 150), 4, 9, 9, 150, 0, 0, 0, 150),
		[]byte{2, 0, 0, 240, 2, 0, 200, 240, 2, 0, 100, 240, 2, 0, 0, 240, 2, 1, 0, 240},
		[]byte{0, 0, 0, 100, 6, 0, 0, 100, 0, 0, 0, 100, 6, 1, 0, 100, 6, 2, 0, 100},
		[]byte{0, 0, 0, 101, 5, 0, 0, 101, 7, 3, 0, 0, 0, 0, 0, 101, 8, 0, 0, 101, 0, 0, 0, 101},
		[]byte{0, 0, 0, 241, 9, 0, 0, 241, 0, 0, 0, 241, 10, 0, 0, 241, 0, 0, 0, 241},
		[]byte{0, 0, 0, 241, 11, 1, 0, 0, 0, 0, 0, 241, 0, 0, 0, 241, 11, 3, 0, 0, 0, 0, 0, 241},
		[]byte{0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 255},
	)
	return seeds
}

// rigStreamLen crosses the sequence-number wrap (rigISS) and stays within a 64 KiB window.
const rigStreamLen = 40000

// FuzzTCPCoalescedStream plays arbitrary segment sequences (rigSegment kinds in playOps) at a
// coalescing stack and requires the exact stream after an in-order resend. `go test` runs the
// seeds; `go test -fuzz FuzzTCPCoalescedStream ./netstack/` searches further.
func FuzzTCPCoalescedStream(f *testing.F) {
	for _, s := range coalesceSeeds() {
		f.Add(int64(1), s)
	}
	f.Fuzz(func(t *testing.T, seed int64, ops []byte) {
		checkCoalescedStream(t, true, seed, rigStreamLen, ops)
	})
}

// TestTCPCoalescedStreamRandom plays the seeds and 40 random op sequences at stacks with and
// without coalescing: both must deliver exactly the stream, and frames must have been merged.
func TestTCPCoalescedStreamRandom(t *testing.T) {
	inputs := coalesceSeeds()
	rnd := rand.New(rand.NewSource(2))
	for i := 0; i < 40; i++ {
		ops := make([]byte, 4*(5+rnd.Intn(60)))
		rnd.Read(ops)
		inputs = append(inputs, ops)
	}
	var merged uint64
	for i, ops := range inputs {
		for _, co := range []bool{true, false} {
			m := checkCoalescedStream(t, co, int64(i), rigStreamLen, ops)
			if co {
				merged += m
			}
		}
	}
	if merged == 0 {
		t.Error("no frame was merged in any run: the comparison did not exercise the coalescer")
	}
	t.Logf("%d frames merged over %d inputs", merged, len(inputs))
}
