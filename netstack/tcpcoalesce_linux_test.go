package netstack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestTCPBulkOverTapCoalesced downloads 8 MiB from the Linux kernel over a real tap: the bytes
// arrive intact, frames were merged, and gVisor saw no checksum error in the merged packets.
func TestTCPBulkOverTapCoalesced(t *testing.T) {
	tap, _, tcpL := setupTapNetns(t)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i*7/13 + i>>16)
	}
	go func() {
		c, err := tcpL.Accept()
		if err != nil {
			return
		}
		c.Write(want)
		c.Close()
	}()
	st := stackOverTap(t, tap)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := st.DialTCP(ctx, netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("after %d bytes: %v", len(got), err)
	}
	for i := range got {
		if i >= len(want) || got[i] != want[i] {
			t.Fatalf("byte %d differs (got %d bytes, want %d)", i, len(got), len(want))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	gs := st.Stack().Stats()
	if n := gs.TCP.ChecksumErrors.Value(); n != 0 {
		t.Errorf("gVisor counted %d TCP checksum errors", n)
	}
	if st.framesMerged() == 0 {
		t.Errorf("no frame was merged (stats %+v)", st.Stats())
	}
	t.Logf("%d frames merged; %+v", st.framesMerged(), st.Stats())
}

// packetRecorder is a stack.NetworkDispatcher that keeps the payload size of each packet and,
// when it knows the link, whether the link reported RX checksum offload while delivering it (as
// gVisor's NIC asks, once per packet).
type packetRecorder struct {
	l         *tapLink
	mu        sync.Mutex
	sizes     []int
	validated []bool
}

func (r *packetRecorder) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	v := r.l != nil && r.l.Capabilities()&stack.CapabilityRXChecksumOffload != 0
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes = append(r.sizes, pkt.Data().Size())
	r.validated = append(r.validated, v)
}

func (r *packetRecorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (r *packetRecorder) delivered() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...)
}

// waitFor waits until n packets were delivered (at most 5 s), then 20 ms more so that a stray
// extra packet shows up too.
func (r *packetRecorder) waitFor(n int) {
	deadline := time.Now().Add(5 * time.Second)
	for len(r.delivered()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}

// ethFrame wraps an IPv4 packet in an Ethernet frame from the peer to the guest.
func ethFrame(ipPkt []byte) []byte {
	f := make([]byte, header.EthernetMinimumSize+len(ipPkt))
	header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(peerMAC), DstAddr: tcpip.LinkAddress(guestMAC), Type: header.IPv4ProtocolNumber})
	copy(f[header.EthernetMinimumSize:], ipPkt)
	return f
}

// deliveredValidated is delivered with each size as "size:validated".
func (r *packetRecorder) deliveredValidated() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.sizes))
	for i, n := range r.sizes {
		out[i] = fmt.Sprintf("%d:%v", n, r.validated[i])
	}
	return out
}

// TestTapLinkBurstIsOnePacket: a burst of in-order TCP data frames waiting in the device queue
// reaches the stack as one packet of up to tcpMergeFrames frames — the first frame is not handed
// over alone (that cost an ACK of its own per burst in an HTTP download), nor is the burst cut at
// rxBatch — while a lone non-TCP first frame still is.
func TestTapLinkBurstIsOnePacket(t *testing.T) {
	const hdrs = header.IPv4MinimumSize + header.TCPMinimumSize
	for _, tc := range []struct {
		name      string
		arpFirst  bool
		frames    int
		wantSizes []int
	}{
		{name: "TCP burst", frames: 20, wantSizes: []int{hdrs + 20*1000}},
		{name: "ARP then TCP burst", arpFirst: true, frames: 20, wantSizes: []int{header.ARPSize, hdrs + 20*1000}},
		// More than tcpMergeFrames (and rxBatch): the packet goes when full, the rest after it.
		{name: "long burst", frames: 50, wantSizes: []int{hdrs + tcpMergeFrames*1000, hdrs + (50-tcpMergeFrames)*1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, peer := pairLink(t)
			l.co = &tcpCoalescer{mac: tcpip.LinkAddress(guestMAC)}
			if tc.arpFirst {
				if _, err := unix.Write(peer, arpRequest([4]byte{10, 0, 2, 15})); err != nil {
					t.Fatal(err)
				}
			}
			// The whole burst is queued before the reader starts: its first read finds it all.
			for i := 0; i < tc.frames; i++ {
				f := ethFrame(tcpFrame(segmentSpec{seq: 1000 + uint32(i)*1000, payload: payloadOf(t, 1000, i)}))
				if _, err := unix.Write(peer, f); err != nil {
					t.Fatal(err)
				}
			}
			rec := &packetRecorder{}
			l.Attach(rec)
			rec.waitFor(len(tc.wantSizes))
			if got := rec.delivered(); !slices.Equal(got, tc.wantSizes) {
				t.Errorf("packets delivered (IPv4/ARP sizes) = %v, want %v", got, tc.wantSizes)
			}
		})
	}
}

// BenchmarkTCPBurstReceive is the stack's side of an HTTP download through slirp: bursts of 32
// in-order 1440-byte segments (one ACK per burst) through the tap link,
// the coalescer and gVisor to a socket reader. ns/op is per burst; bench/httpceiling.sh has the
// guest-level numbers. Under qemu-s390x with -test.cpu 1 it approximates the guest's cost.
func BenchmarkTCPBurstReceive(b *testing.B) {
	const burst, mss = 32, 1440
	r := newTCPRig(b, true)
	payload := streamBytes(1, mss)
	frames := make([][]byte, burst)
	for i := range frames {
		frames[i] = r.frame(rigSegment{seq: r.irs + uint32(i*mss), payload: payload})
	}
	paySum := checksum.Checksum(payload, 0)
	buf := make([]byte, 256<<10)
	seq := r.irs
	b.SetBytes(burst * mss)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i, f := range frames {
			tcp := header.TCP(f[tcpOff:])
			tcp.SetSequenceNumber(seq + uint32(i*mss))
			tcp.SetChecksum(0)
			ps := header.PseudoHeaderChecksum(header.TCPProtocolNumber, coalesceSrc, coalesceDst, uint16(len(tcp)))
			tcp.SetChecksum(^checksum.Combine(checksum.Checksum(tcp[:header.TCPMinimumSize], ps), paySum))
		}
		r.send(b, frames...)
		seq += burst * mss
		for got := 0; got < burst*mss; {
			k, err := r.conn.Read(buf)
			if err != nil {
				b.Fatalf("read after %d bytes of burst %d: %v", got, n, err)
			}
			got += k
		}
	}
}

// TestTapLinkChecksumOffloadOnlyForVerified: gVisor skips its checksum checks for a packet when
// the link reports RX checksum offload while delivering it. The tap link may report it only for
// the coalescer's packets, whose every segment it verified; an ARP frame, a UDP datagram, a TCP
// segment with a bad checksum and a TCP segment with a corrupted payload (which the coalescer
// refuses) must reach gVisor unvalidated, and the flag must not stick to the next packet.
func TestTapLinkChecksumOffloadOnlyForVerified(t *testing.T) {
	const hdrs = header.IPv4MinimumSize + header.TCPMinimumSize
	corrupted := tcpFrame(segmentSpec{seq: 9000, payload: payloadOf(t, 1000, 9)})
	corrupted[len(corrupted)-1] ^= 0x40 // payload no longer matches the checksum
	frames := [][]byte{
		arpRequest([4]byte{10, 0, 2, 15}),
		ethFrame(tcpFrame(segmentSpec{seq: 1000, payload: payloadOf(t, 1000, 1)})),
		ethFrame(tcpFrame(segmentSpec{seq: 2000, payload: payloadOf(t, 1000, 2)})),
		ethFrame(tcpFrame(segmentSpec{seq: 3000, payload: payloadOf(t, 1000, 3)})),
		buildUDP(net.HardwareAddr(peerMAC), tcpip.LinkAddress(guestMAC), netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.2.15"), 67, 68, payloadOf(t, 300, 4)),
		ethFrame(tcpFrame(segmentSpec{seq: 4000, payload: payloadOf(t, 1000, 5), badSum: true})),
		ethFrame(tcpFrame(segmentSpec{seq: 5000, payload: payloadOf(t, 1000, 6)})),
		ethFrame(corrupted),
	}
	want := []string{
		fmt.Sprintf("%d:false", header.ARPSize),
		fmt.Sprintf("%d:true", hdrs+3*1000), // three segments merged
		fmt.Sprintf("%d:false", header.IPv4MinimumSize+header.UDPMinimumSize+300),
		fmt.Sprintf("%d:false", hdrs+1000), // bad TCP checksum: gVisor must see and drop it
		fmt.Sprintf("%d:true", hdrs+1000),  // a lone valid segment, verified by the coalescer
		fmt.Sprintf("%d:false", hdrs+1000), // corrupted payload
	}
	l, peer := pairLink(t)
	l.co = &tcpCoalescer{mac: tcpip.LinkAddress(guestMAC)}
	for _, f := range frames {
		if _, err := unix.Write(peer, f); err != nil {
			t.Fatal(err)
		}
	}
	rec := &packetRecorder{l: l}
	l.Attach(rec)
	rec.waitFor(len(want))
	if got := rec.deliveredValidated(); !slices.Equal(got, want) {
		t.Errorf("packets (size:validated) = %v, want %v", got, want)
	}
	if l.Capabilities()&stack.CapabilityRXChecksumOffload != 0 {
		t.Errorf("the link reports RX checksum offload between packets")
	}
}
