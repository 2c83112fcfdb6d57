package netstack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// udpRig is a Stack over a frame socket pair with a fixed set of sockets, for feeding it
// hand-made frames and recording what became of each.
type udpRig struct {
	st    *Stack
	peer  int
	socks []*UDPConn // any:9000, own:9001, dialled own:5000<->peer:7777, [::]:9002, ::ffff:0.0.0.0:9003
}

var (
	rigOwn  = netip.MustParseAddr("10.0.2.15")
	rigPeer = netip.MustParseAddr("10.0.2.2")
)

// sentinelFrom is the sender of every socket's sentinel datagram (port per socket).
func rigSentinelPorts() []uint16 { return []uint16{7001, 7002, 7777, 7004, 7005} }

func newUDPRig(t *testing.T, fast bool) *udpRig {
	t.Helper()
	fd, peer := framePair(t)
	st, err := New(Config{TapFD: fd, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	if !fast {
		st.fast.setAddress(tcpip.AddressWithPrefix{}) // every frame takes gVisor's path
	}
	if err := st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4(rigPeer.As4()), tcpip.LinkAddress(peerMAC)); err != nil {
		t.Fatal(err)
	}
	r := &udpRig{st: st, peer: peer}
	for _, s := range []string{"0.0.0.0:9000", "10.0.2.15:9001", "", "[::]:9002", "[::ffff:0.0.0.0]:9003"} {
		var c *UDPConn
		if s == "" {
			c, err = st.DialUDP(netip.MustParseAddrPort("10.0.2.15:5000"), netip.AddrPortFrom(rigPeer, 7777))
		} else {
			c, err = st.ListenUDP(netip.MustParseAddrPort(s))
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		r.socks = append(r.socks, c)
	}
	return r
}

// udpVerdict is what became of one frame: the datagrams each socket read (payload and sender),
// the ICMP messages the stack sent back, and the changes of the counters a drop shows in.
type udpVerdict struct {
	reads    []string
	icmp     []string
	counters map[string]uint64
}

func (v udpVerdict) String() string {
	return fmt.Sprintf("reads %q icmp %q counters %v", v.reads, v.icmp, v.counters)
}

func (r *udpRig) counters() map[string]uint64 {
	s := r.st.Stack().Stats()
	return map[string]uint64{
		"udp.received":       s.UDP.PacketsReceived.Value(),
		"udp.checksum":       s.UDP.ChecksumErrors.Value(),
		"udp.malformed":      s.UDP.MalformedPacketsReceived.Value(),
		"udp.unknownport":    s.UDP.UnknownPortErrors.Value(),
		"udp.rcvbuf":         s.UDP.ReceiveBufferErrors.Value(),
		"ip.malformed":       s.IP.MalformedPacketsReceived.Value(),
		"ip.invalidsrc":      s.IP.InvalidSourceAddressesReceived.Value(),
		"ip.invaliddst":      s.IP.InvalidDestinationAddressesReceived.Value(),
		"ip.received":        s.IP.PacketsReceived.Value(),
		"netstack.rxpackets": r.st.Stats().RxPackets,
		"netstack.rxbytes":   r.st.Stats().RxBytes,
	}
}

// feed writes frame, then a valid sentinel datagram to every socket, and reads each socket up
// to its sentinel: the stack handles frames in order on one goroutine, so what a socket got
// before its sentinel is what frame gave it.
func (r *udpRig) feed(t *testing.T, frame []byte) udpVerdict {
	t.Helper()
	c0 := r.counters()
	if _, err := unix.Write(r.peer, frame); err != nil {
		t.Fatal(err)
	}
	sentinel := []byte("sentinel")
	dports := []uint16{9000, 9001, 5000, 9002, 9003}
	for i, sp := range rigSentinelPorts() {
		if _, err := unix.Write(r.peer, buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), rigPeer, rigOwn, sp, dports[i], sentinel)); err != nil {
			t.Fatal(err)
		}
	}
	var v udpVerdict
	buf := make([]byte, 2048)
	for i, c := range r.socks {
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("socket %d: sentinel not read: %v", i, err)
			}
			if bytes.Equal(buf[:n], sentinel) && from.Port() == rigSentinelPorts()[i] {
				break
			}
			v.reads = append(v.reads, fmt.Sprintf("sock%d from %v: %q", i, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), buf[:n]))
		}
	}
	for f, ok := pollFrame(r.peer, 20*time.Millisecond); ok; f, ok = pollFrame(r.peer, 20*time.Millisecond) {
		if len(f) < header.EthernetMinimumSize+header.IPv4MinimumSize+4 || header.Ethernet(f).Type() != header.IPv4ProtocolNumber {
			continue
		}
		ip := header.IPv4(f[header.EthernetMinimumSize:])
		if ip.Protocol() == uint8(header.ICMPv4ProtocolNumber) {
			icmp := header.ICMPv4(ip.Payload())
			v.icmp = append(v.icmp, fmt.Sprintf("type %d code %d to %v", icmp.Type(), icmp.Code(), ip.DestinationAddress()))
		}
	}
	c1 := r.counters()
	v.counters = map[string]uint64{}
	for k := range c1 {
		if d := c1[k] - c0[k]; d != 0 {
			v.counters[k] = d
		}
	}
	// The sentinels: 5 frames, 5 datagrams received.
	v.counters["netstack.rxpackets"] -= 5
	v.counters["udp.received"] -= 5
	v.counters["ip.received"] -= 5
	v.counters["netstack.rxbytes"] -= 5 * uint64(len(buildUDP(peerMAC, "", rigPeer, rigOwn, 1, 1, sentinel)))
	return v
}

// udpFrame is buildUDP with f applied to the IPv4 packet (header, UDP header and payload);
// fixIP recomputes the IPv4 header checksum, fixUDP the UDP checksum (over the UDP length).
func udpFrame(src, dst netip.Addr, sport, dport uint16, payload []byte, f func(ip []byte), fixIP, fixUDP bool) []byte {
	b := buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), src, dst, sport, dport, payload)
	ip := b[header.EthernetMinimumSize:]
	if f != nil {
		f(ip)
	}
	if fixUDP {
		h := header.IPv4(ip)
		u := header.UDP(ip[20:])
		ulen := int(u.Length())
		if ulen > len(u) {
			ulen = len(u)
		}
		u.SetChecksum(0)
		ps := header.PseudoHeaderChecksum(header.UDPProtocolNumber, h.SourceAddress(), h.DestinationAddress(), u.Length())
		sum := ^checksum.Checksum(u[:ulen], ps)
		if sum == 0 {
			sum = 0xffff
		}
		u.SetChecksum(sum)
	}
	if fixIP {
		h := header.IPv4(ip)
		h.SetChecksum(0)
		h.SetChecksum(^checksum.Checksum(ip[:h.HeaderLength()], 0))
	}
	return b
}

// TestUDPFastPathMatchesGVisor feeds hand-made frames, benign and hostile, to two stacks, one
// with the UDP fast path and one without, and requires the same verdict from both: the same
// datagrams read by the same sockets from the same senders, the same ICMP answers and the same
// counter changes. A frame that qualifies for the fast path is checked to have taken it, so the
// comparison is between the two paths.
func TestUDPFastPathMatchesGVisor(t *testing.T) {
	fast, slow := newUDPRig(t, true), newUDPRig(t, false)
	pay := []byte("adversarial payload")
	other := netip.MustParseAddr("10.0.2.99")
	std := func(f func(ip []byte)) []byte { return udpFrame(rigPeer, rigOwn, 7777, 9000, pay, f, true, true) }
	from := func(src string) []byte {
		return udpFrame(netip.MustParseAddr(src), rigOwn, 7777, 9000, pay, nil, true, true)
	}
	to := func(dst string, dport uint16) []byte {
		return udpFrame(rigPeer, netip.MustParseAddr(dst), 7777, dport, pay, nil, true, true)
	}
	setU16 := func(off int, v uint16) func([]byte) {
		return func(ip []byte) { binary.BigEndian.PutUint16(ip[off:], v) }
	}
	tests := []struct {
		name  string
		frame []byte
		fast  bool // must take the fast path
	}{
		{"plain", std(nil), true},
		{"ethernet padding", append(std(nil), make([]byte, 30)...), true},
		{"ethernet padding of non-zero bytes", append(std(nil), 0xde, 0xad, 0xbe, 0xef), true},
		{"UDP checksum zero (none, allowed on IPv4)", udpFrame(rigPeer, rigOwn, 7777, 9000, pay, func(ip []byte) { ip[26], ip[27] = 0, 0 }, true, false), true},
		{"UDP checksum bad", udpFrame(rigPeer, rigOwn, 7777, 9000, pay, func(ip []byte) { ip[27] ^= 0x40 }, true, false), true},
		{"UDP payload corrupted", udpFrame(rigPeer, rigOwn, 7777, 9000, pay, func(ip []byte) { ip[30] ^= 1 }, true, false), true},
		{"UDP length shorter than IP payload (trailing bytes inside IP)", std(setU16(24, 8+4)), true},
		{"UDP length shorter, checksum over the whole IP payload", udpFrame(rigPeer, rigOwn, 7777, 9000, pay, setU16(24, 8+4), true, false), true},
		{"UDP length 8 (empty datagram)", std(setU16(24, 8)), true},
		{"UDP length 7", std(setU16(24, 7)), false},
		{"UDP length 0", std(setU16(24, 0)), false},
		{"UDP length beyond IP payload", std(setU16(24, uint16(8+len(pay)+1))), false},
		{"IP total length shorter than UDP length", std(setU16(2, uint16(20+8+len(pay)-1))), false},
		{"IP total length beyond frame", std(setU16(2, uint16(20+8+len(pay)+1))), false},
		{"IP total length 28 (headers only)", std(func(ip []byte) { binary.BigEndian.PutUint16(ip[2:], 28); binary.BigEndian.PutUint16(ip[24:], 8) }), true},
		{"IP total length 27", std(setU16(2, 27)), false},
		{"IP total length 20", std(setU16(2, 20)), false},
		{"IP total length 0", std(setU16(2, 0)), false},
		{"TTL 0", std(func(ip []byte) { ip[8] = 0 }), true},
		{"DF set", std(func(ip []byte) { ip[6] |= 0x40 }), true},
		{"reserved flag set", std(func(ip []byte) { ip[6] |= 0x80 }), true},
		{"TOS/ECN CE", std(func(ip []byte) { ip[1] = 0xb8 | 3 }), true},
		{"more fragments", std(func(ip []byte) { ip[6] |= 0x20 }), false},
		{"fragment offset 8", std(setU16(6, 1)), false},
		{"IHL 4", std(func(ip []byte) { ip[0] = 0x44 }), false},
		{"IHL 6 (4 option bytes taken from UDP)", std(func(ip []byte) { ip[0] = 0x46 }), false},
		{"IP options NOP NOP NOP EOL", withIPOption(std(nil)), false},
		{"version 6 in an IPv4 EtherType", std(func(ip []byte) { ip[0] = 0x65 }), false},
		{"version 0", std(func(ip []byte) { ip[0] = 0x05 }), false},
		{"IP header checksum bad", udpFrame(rigPeer, rigOwn, 7777, 9000, pay, func(ip []byte) { ip[10] ^= 1 }, false, true), false},
		{"IP header checksum zero", udpFrame(rigPeer, rigOwn, 7777, 9000, pay, func(ip []byte) { ip[10], ip[11] = 0, 0 }, false, true), false},
		{"protocol TCP", std(func(ip []byte) { ip[9] = 6 }), false},
		{"destination another unicast", to(other.String(), 9000), false},
		{"destination subnet broadcast", to("10.0.2.255", 9000), false},
		{"destination limited broadcast", to("255.255.255.255", 9000), false},
		{"destination multicast", to("224.0.0.1", 9000), false},
		{"destination loopback", to("127.0.0.1", 9000), false},
		{"destination 0.0.0.0", to("0.0.0.0", 9000), false},
		{"destination network address", to("10.0.2.0", 9000), false},
		{"source 0.0.0.0", from("0.0.0.0"), false},
		{"source loopback", from("127.0.0.1"), false},
		{"source limited broadcast", from("255.255.255.255"), false},
		{"source subnet broadcast", from("10.0.2.255"), false},
		{"source multicast", from("224.0.0.5"), false},
		{"source class E", from("240.0.0.1"), true},
		{"source our own address", from("10.0.2.15"), false},
		{"source off-subnet", from("192.168.5.5"), true},
		{"source the network address", from("10.0.2.0"), true},
		{"closed port", to("10.0.2.15", 9999), false},
		{"port bound to our address", to("10.0.2.15", 9001), true},
		{"dual-stack IPv6 socket", to("10.0.2.15", 9002), false},
		{"IPv4-mapped any socket", to("10.0.2.15", 9003), true},
		{"connected socket from its peer", udpFrame(rigPeer, rigOwn, 7777, 5000, pay, nil, true, true), true},
		{"connected socket, other source port", udpFrame(rigPeer, rigOwn, 7778, 5000, pay, nil, true, true), false},
		{"connected socket, other source address", udpFrame(netip.MustParseAddr("10.0.2.3"), rigOwn, 7777, 5000, pay, nil, true, true), false},
		{"ethernet broadcast carrying unicast IP", func() []byte {
			b := std(nil)
			copy(b[0:6], header.EthernetBroadcastAddress)
			return b
		}(), true},
		{"ethernet unicast for another station", func() []byte {
			b := std(nil)
			b[5] ^= 1
			return b
		}(), false},
		{"frame cut inside the UDP header", std(nil)[:header.EthernetMinimumSize+20+7], false},
		{"frame cut inside the IP header", std(nil)[:header.EthernetMinimumSize+19], false},
		{"largest datagram for the MTU", udpFrame(rigPeer, rigOwn, 7777, 9000, bytes.Repeat([]byte{0xa5}, 1500-28), nil, true, true), true},
		{"odd length payload", udpFrame(rigPeer, rigOwn, 7777, 9000, []byte("odd"), nil, true, true), true},
	}
	for _, tt := range tests {
		f0 := fast.st.fast.rxPackets.Load()
		vf := fast.feed(t, tt.frame)
		// The sentinels to the four IPv4 sockets take the fast path too (the IPv6 one does not).
		took := fast.st.fast.rxPackets.Load()-f0 > 4
		vs := slow.feed(t, tt.frame)
		if slow.st.fast.rxPackets.Load() != 0 {
			t.Fatalf("%s: the stack without the fast path used it", tt.name)
		}
		if took != tt.fast {
			t.Errorf("%s: fast path taken = %v, want %v", tt.name, took, tt.fast)
		}
		if vf.String() != vs.String() {
			t.Errorf("%s: verdicts differ\nfast path: %v\ngVisor:    %v", tt.name, vf, vs)
		}
	}
}

// TestUDPFastPathSocketChurn floods a port with datagrams while sockets on it are opened, read,
// connected and closed over and over: the fast path's port table changes under the reader. No
// datagram may reach a socket other than the one bound at the time in a way gVisor would not
// deliver (a connected socket only from its peer), nothing may panic or race (go test -race),
// and afterwards a fresh socket gets its datagrams by the fast path.
func TestUDPFastPathSocketChurn(t *testing.T) {
	r := newUDPRig(t, true)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		peerA := buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), rigPeer, rigOwn, 7777, 9100, []byte("from 7777"))
		peerB := buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), rigPeer, rigOwn, 7778, 9100, []byte("from 7778"))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := peerA
			if i%2 == 1 {
				f = peerB
			}
			if _, err := unix.Write(r.peer, f); err != nil {
				time.Sleep(50 * time.Microsecond) // the pair is full: let the stack catch up
			}
			if i%64 == 0 {
				for _, ok := pollFrame(r.peer, 0); ok; _, ok = pollFrame(r.peer, 0) {
				} // drop the stack's ICMP answers
			}
		}
	}()
	buf := make([]byte, 256)
	for i := 0; i < 300; i++ {
		c, err := r.st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:9100"))
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		connected := i%3 == 0
		if connected {
			if err := c.Connect(netip.AddrPortFrom(rigPeer, 7777)); err != nil {
				t.Fatal(err)
			}
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if connected && from.Port() != 7777 {
				// Datagrams queued before Connect may come from either port (as in gVisor);
				// after the queue they must be the peer's.
				continue
			}
			if want := fmt.Sprintf("from %d", from.Port()); string(buf[:n]) != want {
				t.Fatalf("round %d: read %q from %v, want %q", i, buf[:n], from, want)
			}
		}
		c.Close()
	}
	close(stop)
	<-done
	if p := (*r.st.fast.ports.Load())[9100]; p != nil {
		t.Fatalf("port 9100 still registered after its last socket closed: %+v", p)
	}
	c, err := r.st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:9100"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f0 := r.st.fast.rxPackets.Load()
	if _, err := unix.Write(r.peer, buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), rigPeer, rigOwn, 7777, 9100, []byte("after"))); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("fresh socket after the churn: %v", err)
		}
		if string(buf[:n]) == "after" {
			break
		}
	}
	if r.st.fast.rxPackets.Load() == f0 {
		t.Error("the datagram after the churn did not take the fast path")
	}
}
