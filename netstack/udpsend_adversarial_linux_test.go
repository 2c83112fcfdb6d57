package netstack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Adversarial review of the UDP send fast path (udpsend.go): every size class against gVisor's
// frames, checksums that compute to zero at odd lengths, datagrams gVisor must refuse, the tap
// queue full (EAGAIN) or gone, the NIC disabled, and Connect/Close/deadline/neighbour churn
// concurrent with Writes (run with -race), where every frame that leaves must be well formed, go
// to the MAC and port of a peer the socket was connected to, and be counted once.

// TestUDPSendAdversarialSizes compares the fast path's frames with gVisor's for every payload
// size from 0 to 64 bytes, sizes around powers of two and the MTU edge, random contents, and
// checksum-edge payloads of odd length; beyond the MTU both paths fragment alike, and a payload
// no IPv4 datagram can carry fails the same way on both.
func TestUDPSendAdversarialSizes(t *testing.T) {
	r := newSendRig(t, Config{})
	own, peer := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2")
	c := r.dial(t, "10.0.2.15:5001", "10.0.2.2:7778")
	rnd := rand.New(rand.NewSource(1))
	var sizes []int
	for n := 0; n <= 64; n++ {
		sizes = append(sizes, n)
	}
	for _, p2 := range []int{127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 1400, 1469, 1470, 1471, 1472} {
		sizes = append(sizes, p2)
	}
	for _, n := range sizes {
		p := make([]byte, n)
		rnd.Read(p)
		f := r.compare(t, c, p, true)
		if got := header.UDP(f[sendUDPOff:]).Checksum(); got == 0 {
			t.Errorf("%d bytes: UDP checksum 0 (means none)", n)
		}
	}
	for _, n := range []int{3, 5, 101, 1471} {
		p := checksumEdgePayload(n, own, peer, 5001, 7778)
		f := r.compare(t, c, p, true)
		if got := header.UDP(f[sendUDPOff:]).Checksum(); got != 0xffff {
			t.Errorf("%d-byte checksum-edge payload: UDP checksum %#04x, want 0xffff", n, got)
		}
	}

	// Beyond the MTU: gVisor's path, fragments (IDs are random only without DF; compare the count).
	for _, n := range []int{1473, 2960, 8000} {
		fast0 := r.st.send.txPackets.Load()
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		want := (n + header.UDPMinimumSize + 1479) / 1480
		got := 0
		for i := 0; i < want; i++ {
			f := readFrame(t, r.peer, header.IPv4ProtocolNumber)
			ip := header.IPv4(f[header.EthernetMinimumSize:])
			if !ip.IsChecksumValid() {
				t.Errorf("%d bytes: fragment %d has a bad IPv4 checksum", n, i)
			}
			got++
		}
		if r.st.send.txPackets.Load() != fast0 {
			t.Errorf("%d bytes: the fast path sent a datagram beyond the MTU", n)
		}
		if got != want {
			t.Errorf("%d bytes: %d fragments, want %d", n, got, want)
		}
	}
	// No IPv4 datagram holds these: both paths refuse alike and send nothing.
	for _, n := range []int{65508, 70000} {
		fast0, tx0 := r.st.send.txPackets.Load(), r.st.Stats().TxPackets
		_, err1 := c.Write(make([]byte, n))
		_, err2 := c.gc.Write(make([]byte, n))
		if err1 == nil || fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Errorf("%d bytes: error %v, gVisor's %v", n, err1, err2)
		}
		if r.st.send.txPackets.Load() != fast0 || r.st.Stats().TxPackets != tx0 {
			t.Errorf("%d bytes: a frame left", n)
		}
	}
}

// drainFrames reads every frame queued on fd (non-blocking) and returns them.
func drainFrames(t *testing.T, fd int) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, 70000)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte{}, buf[:n]...))
	}
}

// TestUDPSendAdversarialBackpressure fills the device queue (the peer stops reading: the tap
// write answers EAGAIN, as metal's tapWrite does when every TX buffer is with the device) under
// the fast path, gVisor's path of a connected socket and an unconnected socket's WriteTo. No
// Write may block (gonet waits for the socket to become writable after the link's
// ErrWouldBlock, which no event ever announces), and every datagram a Write accepted is on the
// wire once, intact, or counted as dropped (TxNoBufferSpace): accepted = on the wire + dropped.
func TestUDPSendAdversarialBackpressure(t *testing.T) {
	r := newSendRig(t, Config{})
	if err := unix.SetNonblock(r.peer, true); err != nil {
		t.Fatal(err)
	}
	c := r.dial(t, "", "10.0.2.2:7777")
	l, err := r.st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	to := &net.UDPAddr{IP: net.IPv4(10, 0, 2, 2), Port: 7777}
	paths := []struct {
		name  string
		write func([]byte) (int, error)
	}{
		{"fast path", c.Write},
		{"gVisor's path", c.gc.Write},
		{"unconnected WriteTo", func(b []byte) (int, error) { return l.WriteTo(b, to) }},
	}
	for _, path := range paths {
		if _, err := path.write([]byte("warm up")); err != nil { // resolved, headers built
			t.Fatal(err)
		}
		drainFrames(t, r.peer)
		s0 := r.st.Stats()
		const n = 3000
		accepted := make([]bool, n)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < n; i++ {
				p := churnPayload(7, uint32(i), 100)
				if _, err := path.write(p); err == nil {
					accepted[i] = true
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: a Write blocked on a full device queue (gonet waits for a writable event that never comes)", path.name)
		}
		frames := drainFrames(t, r.peer)
		s := r.st.Stats()
		onWire := map[uint32]int{}
		for _, f := range frames {
			if len(f) != sendHdrLen+100 {
				t.Errorf("%s: a %d-byte frame on the wire, want %d", path.name, len(f), sendHdrLen+100)
				continue
			}
			p := f[sendHdrLen:]
			seq := binary.BigEndian.Uint32(p[4:])
			if !bytes.Equal(p, churnPayload(7, seq, 100)) {
				t.Errorf("%s: datagram %d corrupted on the wire", path.name, seq)
			}
			onWire[seq]++
		}
		nAccepted := 0
		for i, ok := range accepted {
			if ok {
				nAccepted++
			}
			if onWire[uint32(i)] > 1 || (!ok && onWire[uint32(i)] > 0) {
				t.Errorf("%s: datagram %d accepted %v, on the wire %d times", path.name, i, ok, onWire[uint32(i)])
			}
		}
		dropped := s.TxNoBufferSpace - s0.TxNoBufferSpace
		if uint64(nAccepted) != uint64(len(frames))+dropped {
			t.Errorf("%s: %d datagrams accepted, %d on the wire, %d counted as dropped", path.name, nAccepted, len(frames), dropped)
		}
		if d := s.TxPackets - s0.TxPackets; d != uint64(len(frames)) {
			t.Errorf("%s: TxPackets moved by %d, %d frames on the wire", path.name, d, len(frames))
		}
		if len(frames) == 0 || len(frames) == n {
			t.Errorf("%s: %d of %d datagrams on the wire: the queue never filled or never took any", path.name, len(frames), n)
		}
	}

	// The device's other end goes away: both paths fail alike, nothing is counted as sent.
	unix.Close(r.peer)
	tx0, udp0 := r.st.Stats().TxPackets, r.st.Stack().Stats().UDP.PacketsSent.Value()
	_, err1 := c.Write([]byte("no device"))
	_, err2 := c.gc.Write([]byte("no device"))
	if err1 == nil || fmt.Sprint(err1) != fmt.Sprint(err2) {
		t.Errorf("device gone: Write %v, gVisor's path %v", err1, err2)
	}
	if r.st.Stats().TxPackets != tx0 || r.st.Stack().Stats().UDP.PacketsSent.Value() != udp0 {
		t.Errorf("device gone: counted as sent")
	}
}

// TestUDPSendAdversarialNICDisabled disables the NIC under a connected socket whose headers are
// built: the fast path must not keep sending (gVisor's route is no longer valid for output).
func TestUDPSendAdversarialNICDisabled(t *testing.T) {
	r := newSendRig(t, Config{})
	c := r.dial(t, "", "10.0.2.2:7777")
	r.compare(t, c, []byte("up"), true)
	if err := r.st.Stack().DisableNIC(NICID); err != nil {
		t.Fatal(err)
	}
	err2 := r.writeBothSlow(t, c, []byte("down"), "NIC disabled")
	for _, f := range drainAfter(t, r.peer, 50*time.Millisecond) {
		if header.Ethernet(f).Type() == header.IPv4ProtocolNumber && err2 != nil {
			t.Errorf("a datagram left the disabled NIC (gVisor's path refused it: %v)", err2)
		}
	}
}

// drainAfter waits d, then returns every frame queued on fd.
func drainAfter(t *testing.T, fd int, d time.Duration) [][]byte {
	t.Helper()
	time.Sleep(d)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	defer unix.SetNonblock(fd, false)
	return drainFrames(t, fd)
}

// churnPeer is one peer the churned socket may be connected to.
type churnPeer struct {
	ip   [4]byte
	port uint16
	macs []net.HardwareAddr // the MACs its neighbour entry may have had
}

// TestUDPSendAdversarialChurn runs writers on one socket while another goroutine reconnects it
// between two peers, sets and clears a write deadline, changes the second peer's MAC and sets
// the gateway (routes change). Every frame on the wire must verify (IPv4 and UDP checksums,
// lengths), come from the socket's address and port, go to a peer's port with that peer's MAC
// (one of the MACs it had), carry an intact payload, and be a datagram a Write accepted, once.
// The churner's own marker datagram, written after each Connect, must go to the peer it just
// connected to. Close during writes: after Close returns no frame takes the fast path.
func TestUDPSendAdversarialChurn(t *testing.T) {
	r := newSendRig(t, Config{})
	mac3a := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x03}
	mac3b := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x33}
	peers := []churnPeer{
		{[4]byte{10, 0, 2, 2}, 7777, []net.HardwareAddr{peerMAC}},
		{[4]byte{10, 0, 2, 3}, 8888, []net.HardwareAddr{mac3a, mac3b}},
	}
	setMAC := func(mac net.HardwareAddr) {
		if err := r.st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4(peers[1].ip), tcpip.LinkAddress(mac)); err != nil {
			t.Error(err)
		}
	}
	setMAC(mac3a)
	c := r.dial(t, "10.0.2.15:6000", "10.0.2.2:7777")

	// The wire: verify each frame as it comes.
	var (
		wmu      sync.Mutex
		onWire   = map[churnKey]int{}
		frames   int
		problems []string
	)
	problem := func(format string, a ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 2048)
		for {
			pfd := []unix.PollFd{{Fd: int32(r.peer), Events: unix.POLLIN}}
			n, _ := unix.Poll(pfd, 50)
			if n == 0 {
				select {
				case <-stopReader:
					return
				default:
					continue
				}
			}
			m, err := unix.Read(r.peer, buf)
			if err != nil {
				continue
			}
			f := buf[:m]
			wmu.Lock()
			frames++
			checkChurnFrame(f, peers, onWire, problem)
			wmu.Unlock()
		}
	}()

	const writers, perWriter = 3, 400
	drop0 := r.st.Stats().TxNoBufferSpace
	accepted := make([][]uint32, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := 0; seq < perWriter; seq++ {
				p := churnPayload(uint32(w), uint32(seq), 12+(seq*37+w*101)%1400)
				if _, err := c.Write(p); err == nil {
					accepted[w] = append(accepted[w], uint32(seq))
				} else if !errors.Is(err, net.ErrClosed) {
					// a full queue is fine (the reader is slower), the datagram was not sent
				}
				if seq%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}(w)
	}
	// The churner: marker datagrams (writer id 1000+peer) say where the socket is connected.
	var markers []uint32
	for i := 0; i < 150; i++ {
		pi := i % 2
		if err := c.Connect(netip.AddrPortFrom(netip.AddrFrom4(peers[pi].ip), peers[pi].port)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(churnPayload(uint32(1000+pi), uint32(i), 40)); err == nil {
			markers = append(markers, uint32(i))
		}
		switch i % 5 {
		case 1:
			c.SetWriteDeadline(time.Now().Add(time.Hour))
		case 2:
			c.SetWriteDeadline(time.Time{})
		case 3:
			setMAC(peers[1].macs[(i/5)%2])
		case 4:
			if err := r.st.SetGateway(netip.MustParseAddr("10.0.2.2")); err != nil {
				t.Error(err)
			}
		}
	}
	wg.Wait()
	c.SetWriteDeadline(time.Time{})
	dropped := r.st.Stats().TxNoBufferSpace - drop0 // a full queue drops a datagram, its Write succeeds
	time.Sleep(100 * time.Millisecond)              // the reader empties the queue

	// Settled: the second peer's MAC is mac3b now; the next datagram to it must carry it.
	setMAC(mac3b)
	if err := c.Connect(netip.AddrPortFrom(netip.AddrFrom4(peers[1].ip), peers[1].port)); err != nil {
		t.Fatal(err)
	}
	fast0 := r.st.send.txPackets.Load()
	for i := 0; i < 3; i++ {
		if _, err := c.Write(churnPayload(2000, uint32(i), 40)); err != nil {
			t.Fatal(err)
		}
	}
	if r.st.send.txPackets.Load() == fast0 {
		t.Errorf("the fast path never came back after the churn")
	}

	// Close while a writer runs: no fast-path frame after Close returned.
	closing := make(chan struct{})
	var afterClose int
	go func() {
		defer close(closing)
		for i := 0; i < 2000; i++ {
			c.Write(churnPayload(3000, uint32(i), 20))
		}
	}()
	time.Sleep(2 * time.Millisecond)
	c.Close()
	fastAtClose := r.st.send.txPackets.Load()
	<-closing
	if _, err := c.Write([]byte("after close")); err == nil {
		t.Errorf("Write after Close succeeded")
	}
	afterClose = int(r.st.send.txPackets.Load() - fastAtClose)
	if afterClose != 0 {
		t.Errorf("%d frames took the fast path after Close returned", afterClose)
	}

	time.Sleep(100 * time.Millisecond)
	close(stopReader)
	<-readerDone
	wmu.Lock()
	defer wmu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	missing := 0 // accepted, not on the wire: must be the drops
	for w := 0; w < writers; w++ {
		for _, seq := range accepted[w] {
			switch onWire[churnKey{uint32(w), seq}] {
			case 0:
				missing++
			case 1:
			default:
				t.Errorf("writer %d datagram %d on the wire %d times", w, seq, onWire[churnKey{uint32(w), seq}])
			}
		}
		if n := countWriter(onWire, uint32(w)); n > len(accepted[w]) {
			t.Errorf("writer %d: %d datagrams accepted, %d distinct on the wire", w, len(accepted[w]), n)
		}
	}
	for _, seq := range markers {
		switch onWire[churnKey{uint32(1000 + seq%2), seq}] {
		case 0:
			missing++
		case 1:
		default:
			t.Errorf("marker %d (to peer %d) on the wire %d times", seq, seq%2, onWire[churnKey{uint32(1000 + seq%2), seq}])
		}
	}
	if uint64(missing) != dropped {
		t.Errorf("%d accepted datagrams are not on the wire, %d counted as dropped (TxNoBufferSpace)", missing, dropped)
	}
	for i := 0; i < 3; i++ {
		if onWire[churnKey{2000, uint32(i)}] != 1 {
			t.Errorf("settled datagram %d on the wire %d times", i, onWire[churnKey{2000, uint32(i)}])
		}
	}
	if d := r.st.Stats().TxPackets; d < uint64(frames) {
		t.Errorf("TxPackets %d, but %d frames on the wire", d, frames)
	}
}

// churnKey names one datagram of TestUDPSendAdversarialChurn: writer and sequence number.
type churnKey struct{ w, seq uint32 }

func countWriter(m map[churnKey]int, w uint32) int {
	n := 0
	for k := range m {
		if k.w == w {
			n++
		}
	}
	return n
}

// churnPayload is n bytes (n >= 12): writer, sequence number, length, then a pattern of all three.
func churnPayload(w, seq uint32, n int) []byte {
	p := make([]byte, n)
	binary.BigEndian.PutUint32(p, w)
	binary.BigEndian.PutUint32(p[4:], seq)
	binary.BigEndian.PutUint32(p[8:], uint32(n))
	for i := 12; i < n; i++ {
		p[i] = byte(uint32(i)*7 + w*3 + seq)
	}
	return p
}

// checkChurnFrame verifies one frame of TestUDPSendAdversarialChurn and records its payload.
// Marker datagrams (writer 1000+i, 2000) must go to peer i (2000: peer 1 with its last MAC).
func checkChurnFrame(f []byte, peers []churnPeer, onWire map[churnKey]int, problem func(string, ...any)) {
	eth := header.Ethernet(f)
	if len(f) < sendHdrLen || eth.Type() != header.IPv4ProtocolNumber {
		return // ARP and the like
	}
	ip := header.IPv4(f[header.EthernetMinimumSize:])
	if !ip.IsValid(len(f)-header.EthernetMinimumSize) || int(ip.TotalLength()) != len(f)-header.EthernetMinimumSize {
		problem("malformed IPv4 frame (%d bytes, total length %d)", len(f), ip.TotalLength())
		return
	}
	if !ip.IsChecksumValid() {
		problem("bad IPv4 header checksum")
	}
	if ip.Protocol() != uint8(header.UDPProtocolNumber) || ip.More() || ip.FragmentOffset() != 0 {
		problem("not a whole UDP datagram")
		return
	}
	if ip.SourceAddress() != tcpip.AddrFrom4([4]byte{10, 0, 2, 15}) {
		problem("source address %s", ip.SourceAddress())
	}
	u := header.UDP(ip.Payload())
	if int(u.Length()) != len(u) {
		problem("UDP length %d in a %d-byte datagram", u.Length(), len(u))
		return
	}
	if u.Checksum() == 0 || !u.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(), checksum.Checksum(u.Payload(), 0)) {
		problem("bad UDP checksum %#04x", u.Checksum())
	}
	if u.SourcePort() != 6000 {
		problem("source port %d", u.SourcePort())
	}
	pi := -1
	for i, p := range peers {
		if ip.DestinationAddress() == tcpip.AddrFrom4(p.ip) {
			pi = i
		}
	}
	if pi < 0 {
		problem("frame to %s, not a peer", ip.DestinationAddress())
		return
	}
	if u.DestinationPort() != peers[pi].port {
		problem("frame to %s port %d, want %d", ip.DestinationAddress(), u.DestinationPort(), peers[pi].port)
	}
	macOK := false
	for _, m := range peers[pi].macs {
		macOK = macOK || eth.DestinationAddress() == tcpip.LinkAddress(m)
	}
	if !macOK {
		problem("frame to %s sent to MAC %s", ip.DestinationAddress(), eth.DestinationAddress())
	}
	p := u.Payload()
	if len(p) < 12 || int(binary.BigEndian.Uint32(p[8:])) != len(p) {
		problem("payload of %d bytes does not carry its length", len(p))
		return
	}
	w, seq := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
	if !bytes.Equal(p, churnPayload(w, seq, len(p))) {
		problem("writer %d datagram %d: payload corrupted", w, seq)
	}
	switch {
	case w >= 1000 && w < 1002 && int(w-1000) != pi:
		problem("marker %d written after connecting to peer %d went to peer %d", seq, w-1000, pi)
	case w == 2000 && (pi != 1 || eth.DestinationAddress() != tcpip.LinkAddress(peers[1].macs[1])):
		problem("settled datagram %d went to %s via %s, want peer 1's new MAC", seq, ip.DestinationAddress(), eth.DestinationAddress())
	}
	onWire[churnKey{w, seq}]++
}

// TestUDPSendAdversarialAddressChange: the NIC's address changes under a connected socket
// (DHCP renewing with another address). Until it reconnects, Writes take gVisor's path and fail
// or send exactly as gVisor does (never the old source address from stale fast-path headers);
// after Connect the fast path sends from the new address, byte for byte as gVisor would.
func TestUDPSendAdversarialAddressChange(t *testing.T) {
	r := newSendRig(t, Config{})
	c := r.dial(t, "", "10.0.2.2:7777")
	r.compare(t, c, []byte("old address"), true)
	if err := r.st.SetAddress(netip.MustParsePrefix("10.0.2.16/24")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		err2 := r.writeBothSlow(t, c, []byte("renewed"), "after SetAddress (headers built for the old address)")
		for _, f := range drainAfter(t, r.peer, 20*time.Millisecond) {
			if header.Ethernet(f).Type() != header.IPv4ProtocolNumber {
				continue
			}
			if src := header.IPv4(f[header.EthernetMinimumSize:]).SourceAddress(); src == tcpip.AddrFrom4([4]byte{10, 0, 2, 15}) && err2 != nil {
				t.Errorf("a datagram from the old address %s left, gVisor's path refused: %v", src, err2)
			}
		}
	}
	if err := c.Connect(netip.MustParseAddrPort("10.0.2.2:7777")); err != nil {
		// gVisor keeps the old local address bound and refuses; Writes stay gVisor's.
		r.writeBothSlow(t, c, []byte("after a failed Connect"), fmt.Sprintf("after a failed Connect (%v)", err))
		drainAfter(t, r.peer, 20*time.Millisecond)
		// A fresh socket sends from the new address on the fast path.
		c = r.dial(t, "", "10.0.2.2:7777")
	}
	f := r.compare(t, c, []byte("reconnected"), true)
	if src := header.IPv4(f[header.EthernetMinimumSize:]).SourceAddress(); src != tcpip.AddrFrom4([4]byte{10, 0, 2, 16}) {
		t.Errorf("after the address change: source %s, want 10.0.2.16", src)
	}
}

// neighbourState is the state of ip's entry in the neighbour table, or Unknown if it has none.
func neighbourState(r *sendRig, ip [4]byte) (stack.NeighborState, tcpip.LinkAddress) {
	ns, _ := r.st.Stack().Neighbors(NICID, ipv4.ProtocolNumber)
	for _, n := range ns {
		if n.Addr == tcpip.AddrFrom4(ip) {
			return n.State, n.LinkAddr
		}
	}
	return stack.Unknown, ""
}

// TestUDPSendAdversarialNeighbourFails lets a learned neighbour go through its whole life with
// short NUD timers: reachable (fast), stale (gVisor's path re-confirms), delay and probe (fast,
// as gVisor sends there too), then silent to the probes: once gVisor gave the entry up, no
// datagram may leave for its old MAC on the fast path; the peer answers again with another MAC
// and the datagrams go there, on the fast path again.
func TestUDPSendAdversarialNeighbourFails(t *testing.T) {
	r := newSendRig(t, Config{})
	if err := unix.SetNonblock(r.peer, true); err != nil {
		t.Fatal(err)
	}
	cfg := stack.DefaultNUDConfigurations()
	cfg.BaseReachableTime, cfg.MinRandomFactor, cfg.MaxRandomFactor = 400*time.Millisecond, 1, 1
	cfg.DelayFirstProbeTime, cfg.RetransmitTimer = 200*time.Millisecond, 30*time.Millisecond
	cfg.MaxUnicastProbes, cfg.MaxMulticastProbes = 2, 2
	if err := r.st.Stack().SetNUDConfigurations(NICID, ipv4.ProtocolNumber, cfg); err != nil {
		t.Fatal(err)
	}
	ip3 := [4]byte{10, 0, 2, 3}
	macA := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x03}
	macB := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x44}
	c := r.dial(t, "", "10.0.2.3:7777")
	// waitFrame waits for a frame of type typ, skipping others.
	waitFrame := func(typ tcpip.NetworkProtocolNumber) []byte {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			for _, f := range drainFrames(t, r.peer) {
				if header.Ethernet(f).Type() == typ {
					return f
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatalf("no frame of type %#x", typ)
		return nil
	}
	answer := func(mac net.HardwareAddr) {
		unix.Write(r.peer, arpFrame(header.ARPReply, mac, ip3, tcpip.LinkAddress(guestMAC), [4]byte{10, 0, 2, 15}))
	}
	if _, err := c.Write([]byte("resolve")); err != nil {
		t.Fatal(err)
	}
	waitFrame(header.ARPProtocolNumber)
	answer(macA)
	waitFrame(header.IPv4ProtocolNumber)
	waitFor(t, "reachable", func() bool { s, _ := neighbourState(r, ip3); return s == stack.Reachable })
	fast0 := r.st.send.txPackets.Load()
	c.Write([]byte("reachable"))
	if f := waitFrame(header.IPv4ProtocolNumber); header.Ethernet(f).DestinationAddress() != tcpip.LinkAddress(macA) || r.st.send.txPackets.Load() == fast0 {
		t.Errorf("reachable: frame to %s, fast path %v", header.Ethernet(f).DestinationAddress(), r.st.send.txPackets.Load() != fast0)
	}
	waitFor(t, "stale", func() bool { s, _ := neighbourState(r, ip3); return s == stack.Stale })
	fast0 = r.st.send.txPackets.Load()
	c.Write([]byte("stale"))
	waitFrame(header.IPv4ProtocolNumber)
	if r.st.send.txPackets.Load() != fast0 {
		t.Errorf("stale: the fast path sent without gVisor moving the entry on")
	}
	// Silent from now on: delay, probe (unicast ARP, unanswered), then gVisor gives up.
	waitFor(t, "the entry to fail", func() bool {
		s, _ := neighbourState(r, ip3)
		return s == stack.Unreachable || s == stack.Unknown
	})
	drainFrames(t, r.peer)
	fast0 = r.st.send.txPackets.Load()
	for i := 0; i < 3; i++ {
		if _, err := c.Write([]byte("after failure")); err != nil {
			t.Logf("write after the neighbour failed: %v", err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	for _, f := range drainFrames(t, r.peer) {
		if header.Ethernet(f).Type() == header.IPv4ProtocolNumber && header.Ethernet(f).DestinationAddress() == tcpip.LinkAddress(macA) {
			t.Errorf("a datagram left for the failed neighbour's old MAC")
		}
	}
	if r.st.send.txPackets.Load() != fast0 {
		t.Errorf("the fast path sent to a neighbour gVisor gave up on")
	}
	// The peer is back with another MAC.
	answer(macB)
	waitFor(t, "the new MAC", func() bool { _, m := neighbourState(r, ip3); return m == tcpip.LinkAddress(macB) })
	drainAfter(t, r.peer, 20*time.Millisecond)
	unix.SetNonblock(r.peer, false)
	f := r.compare(t, c, []byte("back"), true)
	if header.Ethernet(f).DestinationAddress() != tcpip.LinkAddress(macB) {
		t.Errorf("back: frame to %s, want %s", header.Ethernet(f).DestinationAddress(), macB)
	}
}
