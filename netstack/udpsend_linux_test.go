package netstack

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// sendRig is a Stack over a frame socket pair, 10.0.2.15/24, with 10.0.2.2 (peerMAC) as a
// static neighbour, for comparing the frames the send fast path writes with gVisor's.
type sendRig struct {
	st   *Stack
	peer int
}

func newSendRig(t *testing.T, cfg Config) *sendRig {
	t.Helper()
	fd, peer := framePair(t)
	cfg.TapFD, cfg.MAC = fd, guestMAC
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	if err := st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4([4]byte{10, 0, 2, 2}), tcpip.LinkAddress(peerMAC)); err != nil {
		t.Fatal(err)
	}
	return &sendRig{st: st, peer: peer}
}

func (r *sendRig) dial(t *testing.T, laddr, raddr string) *UDPConn {
	t.Helper()
	var la netip.AddrPort
	if laddr != "" {
		la = netip.MustParseAddrPort(laddr)
	}
	c, err := r.st.DialUDP(la, netip.MustParseAddrPort(raddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendCounters are the counters a sent datagram shows in.
type sendCounters struct{ txPackets, txBytes, udpSent, ipSent, sockSent uint64 }

func (r *sendRig) counters(c *UDPConn) sendCounters {
	s, g := r.st.Stats(), r.st.Stack().Stats()
	return sendCounters{s.TxPackets, s.TxBytes, g.UDP.PacketsSent.Value(), g.IP.PacketsSent.Value(),
		c.ep.Stats().(*tcpip.TransportEndpointStats).PacketsSent.Value()}
}

func (a sendCounters) minus(b sendCounters) sendCounters {
	return sendCounters{a.txPackets - b.txPackets, a.txBytes - b.txBytes, a.udpSent - b.udpSent, a.ipSent - b.ipSent, a.sockSent - b.sockSent}
}

// write sends b with write (c.Write or gonet's) and returns the IPv4 frame that came out,
// whether the fast path wrote it, the write's error and the counters' changes.
func (r *sendRig) write(t *testing.T, c *UDPConn, write func([]byte) (int, error), b []byte) (frame []byte, fast bool, err error, d sendCounters) {
	t.Helper()
	fast0, c0 := r.st.send.txPackets.Load(), r.counters(c)
	n, err := write(b)
	if err == nil && n != len(b) {
		t.Fatalf("write of %d bytes returned %d", len(b), n)
	}
	fast = r.st.send.txPackets.Load() > fast0
	if err == nil {
		frame = readFrame(t, r.peer, header.IPv4ProtocolNumber)
	}
	return frame, fast, err, r.counters(c).minus(c0)
}

// writeBothSlow writes b on c and on its gVisor socket (c.gc) where the fast path must not
// send (when says in what state): the two must fail or succeed alike. It returns gVisor's error.
func (r *sendRig) writeBothSlow(t *testing.T, c *UDPConn, b []byte, when string) error {
	t.Helper()
	fast0 := r.st.send.txPackets.Load()
	_, err1 := c.Write(b)
	_, err2 := c.gc.Write(b)
	if fmt.Sprint(err1) != fmt.Sprint(err2) {
		t.Errorf("%s: Write %v, gVisor's path %v", when, err1, err2)
	}
	if r.st.send.txPackets.Load() != fast0 {
		t.Errorf("%s: the fast path sent", when)
	}
	return err2
}

// compare writes b once through c.Write, which must take the fast path iff wantFast, and once
// through gonet's Write (gVisor's path), and checks that the frames are identical and the
// counters moved alike. It returns the fast-path frame.
func (r *sendRig) compare(t *testing.T, c *UDPConn, b []byte, wantFast bool) []byte {
	t.Helper()
	f1, fast, err1, d1 := r.write(t, c, c.Write, b)
	if fast != wantFast {
		t.Errorf("%d-byte write: fast path %v, want %v", len(b), fast, wantFast)
	}
	f2, slow, err2, d2 := r.write(t, c, c.gc.Write, b)
	if slow {
		t.Fatalf("gonet's write went through the fast path")
	}
	if fmt.Sprint(err1) != fmt.Sprint(err2) {
		t.Errorf("%d-byte write: error %v, gVisor's path %v", len(b), err1, err2)
	}
	if !bytes.Equal(f1, f2) {
		t.Errorf("%d-byte write: frame differs from gVisor's at byte %d:\n got %x\nwant %x", len(b), firstDiff(f1, f2), f1, f2)
	}
	if d1 != d2 {
		t.Errorf("%d-byte write: counters moved by %+v, gVisor's path %+v", len(b), d1, d2)
	}
	return f1
}

// checksumEdgePayload returns an n-byte payload (n >= 3) whose UDP checksum sum, pseudo header
// included, is 0xffff: the case where RFC 768 sends all ones instead of the computed zero. The last
// aligned 16-bit word (before the padded last byte when n is odd) is chosen to make it so.
func checksumEdgePayload(n int, src, dst netip.Addr, sport, dport uint16) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	k := n - 2 - n%2
	p[k], p[k+1] = 0, 0
	ulen := uint16(header.UDPMinimumSize + n)
	u := make(header.UDP, header.UDPMinimumSize)
	u.Encode(&header.UDPFields{SrcPort: sport, DstPort: dport, Length: ulen})
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, tcpip.AddrFrom4(src.As4()), tcpip.AddrFrom4(dst.As4()), ulen)
	sum = checksum.Checksum(append(u, p...), sum)
	w := 0xffff - sum // one's complement: sum + w = 0xffff
	p[k], p[k+1] = byte(w>>8), byte(w)
	return p
}

// TestUDPSendFastPathMatchesGVisor writes datagrams of many sizes (empty, a TFTP ACK, odd
// lengths, the largest unfragmented one, a payload whose checksum computes to zero) on dialled
// and connected sockets, with default and changed TTL/TOS, through the fast path and through
// gVisor's: the frames are identical byte for byte and the counters move alike.
func TestUDPSendFastPathMatchesGVisor(t *testing.T) {
	r := newSendRig(t, Config{})
	own, peer := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2")
	dialled := r.dial(t, "10.0.2.15:5000", "10.0.2.2:7777")
	payloads := [][]byte{{}, {0, 4, 0, 1}, []byte("x"), bytes.Repeat([]byte{0xa5}, 17), bytes.Repeat([]byte{0xff}, 511),
		bytes.Repeat([]byte{1, 2, 3}, 490), make([]byte, 1472), checksumEdgePayload(100, own, peer, 5000, 7777)}
	for _, p := range payloads {
		f := r.compare(t, dialled, p, true)
		if len(f) != header.EthernetMinimumSize+header.IPv4MinimumSize+header.UDPMinimumSize+len(p) {
			t.Fatalf("%d-byte write: %d-byte frame", len(p), len(f))
		}
	}
	edge := r.compare(t, dialled, payloads[len(payloads)-1], true)
	if got := header.UDP(edge[header.EthernetMinimumSize+header.IPv4MinimumSize:]).Checksum(); got != 0xffff {
		t.Errorf("checksum-edge payload: UDP checksum %#04x, want 0xffff", got)
	}

	// A listening socket (any address, ephemeral port) connected later; TTL and TOS changed
	// before its first write.
	l, err := r.st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Connect(netip.MustParseAddrPort("10.0.2.2:69")); err != nil {
		t.Fatal(err)
	}
	l.ep.SetSockOptInt(tcpip.IPv4TTLOption, 5)
	l.ep.SetSockOptInt(tcpip.IPv4TOSOption, 0x10)
	f := r.compare(t, l, []byte("tftp ack"), true)
	ip := header.IPv4(f[header.EthernetMinimumSize:])
	if tos, _ := ip.TOS(); ip.TTL() != 5 || tos != 0x10 {
		t.Errorf("TTL %d TOS %#x, want 5 and 0x10", ip.TTL(), tos)
	}
	// Connected to another peer (through the gateway: the next hop's MAC, the peer's address).
	if err := r.st.SetGateway(peer); err != nil {
		t.Fatal(err)
	}
	if err := l.Connect(netip.MustParseAddrPort("192.0.2.9:1069")); err != nil {
		t.Fatal(err)
	}
	f = r.compare(t, l, []byte("after reconnect"), true)
	if ip := header.IPv4(f[header.EthernetMinimumSize:]); ip.DestinationAddress() != tcpip.AddrFrom4([4]byte{192, 0, 2, 9}) ||
		header.Ethernet(f).DestinationAddress() != tcpip.LinkAddress(peerMAC) {
		t.Errorf("after reconnect: frame to %s via %s", ip.DestinationAddress(), header.Ethernet(f).DestinationAddress())
	}
}

// arpFrame is an ARP message from (mac, ip) about target, to dst.
func arpFrame(op header.ARPOp, mac net.HardwareAddr, ip [4]byte, dst tcpip.LinkAddress, target [4]byte) []byte {
	f := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(mac), DstAddr: dst, Type: header.ARPProtocolNumber})
	a := header.ARP(f[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(op)
	copy(a.HardwareAddressSender(), mac)
	copy(a.ProtocolAddressSender(), ip[:])
	if op == header.ARPReply {
		copy(a.HardwareAddressTarget(), guestMAC)
	}
	copy(a.ProtocolAddressTarget(), target[:])
	return f
}

// portUnreachable is the ICMP error a host at from sends about the datagram in frame.
func portUnreachable(frame []byte, fromMAC net.HardwareAddr) []byte {
	orig := header.IPv4(frame[header.EthernetMinimumSize:])
	quote := append([]byte{}, orig[:header.IPv4MinimumSize+header.UDPMinimumSize]...)
	icmp := make(header.ICMPv4, header.ICMPv4MinimumSize)
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(header.ICMPv4PortUnreachable)
	icmp = append(icmp, quote...)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	f := make([]byte, header.EthernetMinimumSize+header.IPv4MinimumSize, header.EthernetMinimumSize+header.IPv4MinimumSize+len(icmp))
	header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(fromMAC), DstAddr: tcpip.LinkAddress(guestMAC), Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(f[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + len(icmp)), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber),
		SrcAddr: orig.DestinationAddress(), DstAddr: orig.SourceAddress()})
	fixIPChecksum(ip)
	return append(f, icmp...)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUDPSendFastPathFallbacks checks where the fast path must not be taken, and that it
// comes back where it may: an unresolved neighbour (ARP first), a neighbour whose MAC changed
// (stale until gVisor's path re-confirms it), routes or the address changed after Connect,
// a write deadline, a datagram that must be fragmented, DF turned off, a broadcast peer, an
// unconnected socket, a closed one, a pending ICMP error, and a WrapLink decorator.
func TestUDPSendFastPathFallbacks(t *testing.T) {
	r := newSendRig(t, Config{})
	ip3 := [4]byte{10, 0, 2, 3}
	mac3a := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x03}
	mac3b := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x33}

	t.Run("unresolved neighbour, then resolved", func(t *testing.T) {
		c := r.dial(t, "", "10.0.2.3:7777")
		fast0, tx0 := r.st.send.txPackets.Load(), r.st.Stats().TxPackets
		if _, err := c.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		req := readFrame(t, r.peer, header.ARPProtocolNumber)
		if r.st.send.txPackets.Load() != fast0 {
			t.Error("fast path taken before the neighbour was resolved")
		}
		if a := header.ARP(req[header.EthernetMinimumSize:]); !bytes.Equal(a.ProtocolAddressTarget(), ip3[:]) {
			t.Fatalf("ARP request for %v", a.ProtocolAddressTarget())
		}
		unix.Write(r.peer, arpFrame(header.ARPReply, mac3a, ip3, tcpip.LinkAddress(guestMAC), [4]byte{10, 0, 2, 15}))
		queued := readFrame(t, r.peer, header.IPv4ProtocolNumber) // the first datagram, sent once resolved
		if got := header.Ethernet(queued).DestinationAddress(); got != tcpip.LinkAddress(mac3a) {
			t.Fatalf("queued datagram to %s", got)
		}
		// The NIC counts a frame after the write returned: wait for both (ARP and datagram).
		waitFor(t, "the NIC's counters", func() bool { return r.st.Stats().TxPackets == tx0+2 })
		r.compare(t, c, []byte("resolved"), true)

		// The neighbour announces another MAC: the entry goes stale with it; gVisor's path
		// sends the next datagram (and moves the entry on), the one after is fast again.
		tx0 = r.st.Stats().TxPackets
		unix.Write(r.peer, arpFrame(header.ARPRequest, mac3b, ip3, header.EthernetBroadcastAddress, [4]byte{10, 0, 2, 15}))
		readFrame(t, r.peer, header.ARPProtocolNumber) // gVisor's reply
		waitFor(t, "the NIC's counters", func() bool { return r.st.Stats().TxPackets == tx0+1 })
		waitFor(t, "the neighbour entry to change", func() bool {
			ns, _ := r.st.Stack().Neighbors(NICID, ipv4.ProtocolNumber)
			for _, n := range ns {
				if n.Addr == tcpip.AddrFrom4(ip3) {
					return n.LinkAddr == tcpip.LinkAddress(mac3b)
				}
			}
			return false
		})
		f := r.compare(t, c, []byte("stale"), false)
		if got := header.Ethernet(f).DestinationAddress(); got != tcpip.LinkAddress(mac3b) {
			t.Errorf("after the MAC change: frame to %s, want %s", got, net.HardwareAddr(mac3b))
		}
		f = r.compare(t, c, []byte("delay"), true)
		if got := header.Ethernet(f).DestinationAddress(); got != tcpip.LinkAddress(mac3b) {
			t.Errorf("after the MAC change: fast frame to %s, want %s", got, net.HardwareAddr(mac3b))
		}
	})

	t.Run("route or address changed after Connect", func(t *testing.T) {
		if err := r.st.SetGateway(netip.MustParseAddr("10.0.2.2")); err != nil {
			t.Fatal(err)
		}
		c := r.dial(t, "", "192.0.2.1:7777")
		r.compare(t, c, []byte("via the gateway"), true)
		if err := r.st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4([4]byte{10, 0, 2, 4}), tcpip.LinkAddress(mac3a)); err != nil {
			t.Fatal(err)
		}
		if err := r.st.SetGateway(netip.MustParseAddr("10.0.2.4")); err != nil {
			t.Fatal(err)
		}
		// gVisor keeps the route it found at Connect: the old gateway's MAC.
		f := r.compare(t, c, []byte("gateway changed"), false)
		if got := header.Ethernet(f).DestinationAddress(); got != tcpip.LinkAddress(peerMAC) {
			t.Errorf("after SetGateway: frame to %s (gVisor's connected route keeps the old gateway)", got)
		}
		if err := c.Connect(netip.MustParseAddrPort("192.0.2.1:7777")); err != nil {
			t.Fatal(err)
		}
		f = r.compare(t, c, []byte("reconnected"), true)
		if got := header.Ethernet(f).DestinationAddress(); got != tcpip.LinkAddress(mac3a) {
			t.Errorf("after reconnecting: frame to %s, want the new gateway's %s", got, mac3a)
		}
		r.st.SetGateway(netip.MustParseAddr("10.0.2.2"))

		d := r.dial(t, "", "10.0.2.2:7777")
		r.compare(t, d, []byte("before"), true)
		if err := r.st.SetAddress(netip.MustParsePrefix("10.0.2.16/24")); err != nil {
			t.Fatal(err)
		}
		fast0 := r.st.send.txPackets.Load()
		_, err1 := d.Write([]byte("after SetAddress"))
		if err1 == nil {
			readFrame(t, r.peer, header.IPv4ProtocolNumber)
		}
		if r.st.send.txPackets.Load() != fast0 {
			t.Error("fast path taken after the address changed")
		}
		if err := r.st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("write deadline", func(t *testing.T) {
		c := r.dial(t, "", "10.0.2.2:7777")
		c.SetWriteDeadline(time.Now().Add(time.Hour))
		r.compare(t, c, []byte("deadline set"), false)
		c.SetDeadline(time.Time{})
		r.compare(t, c, []byte("deadline cleared"), true)
		c.SetWriteDeadline(time.Unix(1, 0))
		var ne net.Error
		if _, err := c.Write([]byte("late")); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("write past the deadline: %v, want a timeout", err)
		}
	})

	t.Run("fragmented datagram", func(t *testing.T) {
		c := r.dial(t, "", "10.0.2.2:7777")
		fast0 := r.st.send.txPackets.Load()
		if _, err := c.Write(make([]byte, 1473)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			f := readFrame(t, r.peer, header.IPv4ProtocolNumber)
			if ip := header.IPv4(f[header.EthernetMinimumSize:]); ip.Flags()&header.IPv4FlagMoreFragments == 0 && ip.FragmentOffset() == 0 {
				t.Errorf("frame %d is not a fragment", i)
			}
		}
		if r.st.send.txPackets.Load() != fast0 {
			t.Error("fast path taken for a datagram beyond the MTU")
		}
		r.compare(t, c, make([]byte, 1472), true)
	})

	t.Run("DF off", func(t *testing.T) {
		c := r.dial(t, "", "10.0.2.2:7777")
		c.ep.SetSockOptInt(tcpip.MTUDiscoverOption, int(tcpip.PMTUDiscoveryDont))
		fast0 := r.st.send.txPackets.Load()
		c.Write([]byte("random IP ID"))
		if f := readFrame(t, r.peer, header.IPv4ProtocolNumber); header.IPv4(f[header.EthernetMinimumSize:]).Flags()&header.IPv4FlagDontFragment != 0 {
			t.Error("DF set")
		}
		if r.st.send.txPackets.Load() != fast0 {
			t.Error("fast path taken without DF")
		}
	})

	t.Run("broadcast peer", func(t *testing.T) {
		c := r.dial(t, "", "10.0.2.255:67")
		c.ep.SocketOptions().SetBroadcast(true)
		r.compare(t, c, []byte("broadcast"), false)
	})

	t.Run("unconnected, closed", func(t *testing.T) {
		l, err := r.st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:0"))
		if err != nil {
			t.Fatal(err)
		}
		_, err1 := l.Write([]byte("x"))
		_, err2 := l.gc.Write([]byte("x"))
		if err1 == nil || fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Errorf("unconnected Write: %v, gonet %v", err1, err2)
		}
		c := r.dial(t, "", "10.0.2.2:7777")
		r.compare(t, c, []byte("open"), true)
		c.Close()
		fast0 := r.st.send.txPackets.Load()
		if _, err := c.Write([]byte("closed")); err == nil {
			t.Error("Write after Close succeeded")
		}
		if r.st.send.txPackets.Load() != fast0 {
			t.Error("fast path taken after Close")
		}
		l.Close()
	})

	t.Run("pending ICMP error", func(t *testing.T) {
		for _, path := range []string{"fast", "gonet"} {
			c := r.dial(t, "", "10.0.2.2:7779")
			write := c.Write
			if path == "gonet" {
				write = c.gc.Write
			}
			f, _, _, _ := r.write(t, c, write, []byte("to a closed port"))
			unreach := r.st.Stack().Stats().ICMP.V4.PacketsReceived.DstUnreachable
			n0 := unreach.Value()
			unix.Write(r.peer, portUnreachable(f, peerMAC))
			waitFor(t, "the ICMP error", func() bool { return unreach.Value() > n0 })
			time.Sleep(20 * time.Millisecond)
			fast0 := r.st.send.txPackets.Load()
			_, err := write([]byte("refused"))
			if err == nil || !strings.Contains(err.Error(), "connection was refused") {
				t.Errorf("%s: write after ICMP port unreachable: %v, want connection refused", path, err)
			}
			if r.st.send.txPackets.Load() != fast0 {
				t.Errorf("%s: a datagram left with the error", path)
			}
			_, fast, err, _ := r.write(t, c, write, []byte("again"))
			if err != nil || fast != (path == "fast") {
				t.Errorf("%s: the write after the error: %v, fast path %v", path, err, fast)
			}
		}
	})

	t.Run("WrapLink", func(t *testing.T) {
		w := newSendRig(t, Config{WrapLink: func(l stack.LinkEndpoint) stack.LinkEndpoint { return l }})
		c := w.dial(t, "", "10.0.2.2:7777")
		if c.send != nil {
			t.Fatal("send fast path set up under a WrapLink decorator")
		}
		if _, err := c.Write([]byte("wrapped")); err != nil {
			t.Fatal(err)
		}
		readFrame(t, w.peer, header.IPv4ProtocolNumber)
	})
}

// TestUDPSendFastPathToKernel sends datagrams of every size class through the fast path over a
// real tap to the Linux kernel in a private namespace, which verifies their checksums and
// delivers them: all arrive intact and in order, every one after the ARP exchange took the
// fast path. A datagram to a closed port of the kernel draws ICMP port unreachable, which the
// next Write reports (connection refused), as gVisor's path does.
func TestUDPSendFastPathToKernel(t *testing.T) {
	tap, echo, _ := setupTapNetns(t)
	st := stackOverTap(t, tap)
	c, err := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("10.0.2.2:7777"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 300
	got := make(chan []byte, n)
	go func() {
		buf := make([]byte, 2048)
		for {
			m, _, err := echo.ReadFrom(buf)
			if err != nil {
				close(got)
				return
			}
			got <- append([]byte{}, buf[:m]...)
		}
	}()
	fast0 := st.send.txPackets.Load()
	for i := 0; i < n; i++ {
		size := (i * 1473) / n // 0 .. 1468, and the largest unfragmented one last
		if i == n-1 {
			size = 1472
		}
		p := make([]byte, size)
		for j := range p {
			p[j] = byte(i*31 + j*7)
		}
		if _, err := c.Write(p); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		select { // lock-step, so the kernel's socket buffer never overflows
		case g := <-got:
			if !bytes.Equal(g, p) {
				t.Fatalf("datagram %d: the kernel got %d bytes, want %d (%x...)", i, len(g), len(p), g[:min(len(g), 16)])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("datagram %d (%d bytes) did not reach the kernel", i, size)
		}
	}
	if fast := st.send.txPackets.Load() - fast0; fast != n-1 {
		t.Errorf("%d datagrams took the fast path, want %d (all but the one that waited for ARP)", fast, n-1)
	}

	closed, err := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("10.0.2.2:7779"))
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	if _, err := closed.Write([]byte("nobody listens")); err != nil {
		t.Fatal(err)
	}
	unreach := st.Stack().Stats().ICMP.V4.PacketsReceived.DstUnreachable
	waitFor(t, "ICMP port unreachable from the kernel", func() bool { return unreach.Value() > 0 })
	if _, err := closed.Write([]byte("again")); err == nil || !strings.Contains(err.Error(), "connection was refused") {
		t.Errorf("write after the kernel's port unreachable: %v, want connection refused", err)
	}
	if fast := st.send.txPackets.Load() - fast0; fast != n {
		t.Errorf("%d datagrams took the fast path, want %d", fast, n)
	}
}

// TestUDPSendFastPathFullQueue fills the device queue (the peer stops reading, the tap write
// answers EAGAIN): Writes still succeed and never block, the datagrams the queue refused are
// dropped and counted (TxNoBufferSpace), every frame on the wire is an intact datagram (no
// empty ones: gonet's retry after the link's ErrWouldBlock resends a consumed reader), and once
// the queue drains the fast path sends again.
func TestUDPSendFastPathFullQueue(t *testing.T) {
	r := newSendRig(t, Config{})
	c := r.dial(t, "", "10.0.2.2:7777")
	r.compare(t, c, []byte("warm up"), true)
	if err := unix.SetNonblock(r.peer, true); err != nil {
		t.Fatal(err)
	}
	s0 := r.st.Stats()
	const n = 3000
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			p := make([]byte, 100)
			p[0], p[1] = byte(i>>8), byte(i)
			if _, err := c.Write(p); err != nil {
				done <- fmt.Errorf("write %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writes into a full device queue blocked")
	}
	var onWire []int
	buf := make([]byte, 2048)
	for {
		m, err := unix.Read(r.peer, buf)
		if err != nil {
			break
		}
		if m != sendHdrLen+100 {
			t.Fatalf("a %d-byte frame on the wire, want %d", m, sendHdrLen+100)
		}
		onWire = append(onWire, int(buf[sendHdrLen])<<8|int(buf[sendHdrLen+1]))
	}
	s := r.st.Stats()
	dropped := s.TxNoBufferSpace - s0.TxNoBufferSpace
	if dropped == 0 || len(onWire) == n {
		t.Fatalf("%d of %d datagrams on the wire, %d counted dropped: the queue never filled", len(onWire), n, dropped)
	}
	if uint64(len(onWire))+dropped != n || s.TxPackets-s0.TxPackets != uint64(len(onWire)) {
		t.Errorf("%d on the wire + %d dropped != %d written (TxPackets moved by %d)", len(onWire), dropped, n, s.TxPackets-s0.TxPackets)
	}
	for i := 1; i < len(onWire); i++ {
		if onWire[i] <= onWire[i-1] {
			t.Fatalf("datagrams out of order or repeated on the wire: %d after %d", onWire[i], onWire[i-1])
		}
	}
	unix.SetNonblock(r.peer, false)
	r.compare(t, c, []byte("drained"), true)
}
