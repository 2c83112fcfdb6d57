package netstack

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// withIPOption returns frame (an IPv4/UDP frame from buildUDP) with a 4-byte IPv4 option list
// (NOP NOP NOP EOL) inserted, lengths and header checksum fixed.
func withIPOption(frame []byte) []byte {
	eth, ip := frame[:header.EthernetMinimumSize], frame[header.EthernetMinimumSize:]
	out := append(append(append([]byte{}, eth...), ip[:header.IPv4MinimumSize]...), 1, 1, 1, 0)
	out = append(out, ip[header.IPv4MinimumSize:]...)
	h := header.IPv4(out[header.EthernetMinimumSize:])
	h.SetHeaderLength(header.IPv4MinimumSize + 4)
	h.SetTotalLength(h.TotalLength() + 4)
	fixIPChecksum(h)
	return out
}

func fixIPChecksum(h header.IPv4) {
	h.SetChecksum(0)
	h.SetChecksum(^h.CalculateChecksum())
}

// mutateIP returns a copy of frame with f applied to its IPv4 header and the header checksum
// recomputed if fixSum.
func mutateIP(frame []byte, f func(header.IPv4), fixSum bool) []byte {
	out := append([]byte{}, frame...)
	h := header.IPv4(out[header.EthernetMinimumSize:])
	f(h)
	if fixSum {
		fixIPChecksum(h)
	}
	return out
}

// TestUDPFastPath drives the tap link over a socket pair with frames that must and must not
// take the fast path, and checks for each whether it did, whether the socket got the datagram
// and whether the stack answered with ICMP port unreachable, as gVisor's own IPv4 input does.
func TestUDPFastPath(t *testing.T) {
	fd, peer := framePair(t)
	st, err := New(Config{TapFD: fd, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	peerIP := netip.MustParseAddr("10.0.2.2")
	if err := st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4(peerIP.As4()), tcpip.LinkAddress(peerMAC)); err != nil {
		t.Fatal(err)
	}
	any9000, err := st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:9000"))
	if err != nil {
		t.Fatal(err)
	}
	defer any9000.Close()
	dialled, err := st.DialUDP(netip.MustParseAddrPort("10.0.2.15:5000"), netip.MustParseAddrPort("10.0.2.2:7777"))
	if err != nil {
		t.Fatal(err)
	}
	defer dialled.Close()

	own, bcast := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.255")
	dst := tcpip.LinkAddress(guestMAC)
	payload := []byte("fast path payload")
	plain := buildUDP(peerMAC, dst, peerIP, own, 7777, 9000, payload)
	badUDPSum := append([]byte{}, plain...)
	badUDPSum[len(badUDPSum)-1] ^= 0xff
	tests := []struct {
		name    string
		frame   []byte
		to      *UDPConn // the socket that should get payload, or nil
		fast    bool     // delivered by the fast path
		icmp    bool     // answered with ICMP port unreachable
		dropped bool     // counted as dropped or malformed somewhere
	}{
		{name: "plain unicast to a bound port", frame: plain, to: any9000, fast: true},
		{name: "from the connected peer", frame: buildUDP(peerMAC, dst, peerIP, own, 7777, 5000, payload), to: dialled, fast: true},
		{name: "Ethernet padding after the datagram", frame: append(append([]byte{}, plain...), 0, 0, 0, 0), to: any9000, fast: true},
		{name: "bad UDP checksum (gVisor's UDP drops it)", frame: badUDPSum, fast: true, dropped: true},
		{name: "subnet broadcast", frame: buildUDP(peerMAC, header.EthernetBroadcastAddress, peerIP, bcast, 7777, 9000, payload), to: any9000},
		{name: "IP options", frame: withIPOption(plain), to: any9000},
		{name: "closed port", frame: buildUDP(peerMAC, dst, peerIP, own, 7777, 9999, payload), icmp: true},
		{name: "connected socket, other peer port", frame: buildUDP(peerMAC, dst, peerIP, own, 8888, 5000, payload), icmp: true},
		{name: "fragment (more fragments; its odd length makes it malformed)", frame: mutateIP(plain, func(h header.IPv4) { h.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0) }, true), dropped: true},
		{name: "last fragment", frame: mutateIP(plain, func(h header.IPv4) { h.SetFlagsFragmentOffset(0, 8) }, true)},
		{name: "bad IP header checksum", frame: mutateIP(plain, func(h header.IPv4) { h.SetChecksum(h.Checksum() ^ 1) }, false), dropped: true},
		{name: "UDP length beyond the IP payload", frame: mutateIP(plain, func(h header.IPv4) {
			u := header.UDP(h[header.IPv4MinimumSize:])
			u.SetLength(u.Length() + 8)
		}, true), dropped: true},
		{name: "IP total length beyond the frame", frame: mutateIP(plain, func(h header.IPv4) { h.SetTotalLength(h.TotalLength() + 8) }, true), dropped: true},
		{name: "another host's address", frame: buildUDP(peerMAC, dst, peerIP, netip.MustParseAddr("10.0.2.99"), 7777, 9000, payload), dropped: true},
		{name: "our own source address", frame: buildUDP(peerMAC, dst, own, own, 7777, 9000, payload), to: any9000},
	}
	buf := make([]byte, 2048)
	for _, tt := range tests {
		fast0 := st.fast.rxPackets.Load()
		s0, drops0 := st.Stats(), drops(st)
		if _, err := unix.Write(peer, tt.frame); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*UDPConn{any9000, dialled} {
			wait := 50 * time.Millisecond
			if c == tt.to {
				wait = 5 * time.Second
			}
			c.SetReadDeadline(time.Now().Add(wait))
			n, err := c.Read(buf)
			got := err == nil && bytes.Equal(buf[:n], payload)
			if c == tt.to && !got {
				t.Errorf("%s: socket %v did not get the datagram: %q, %v", tt.name, c.LocalAddr(), buf[:n], err)
			}
			if c != tt.to && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: socket %v read %q, %v; want nothing", tt.name, c.LocalAddr(), buf[:n], err)
			}
		}
		if fast := st.fast.rxPackets.Load() > fast0; fast != tt.fast {
			t.Errorf("%s: fast path = %v, want %v", tt.name, fast, tt.fast)
		}
		icmp := false
		for {
			f, ok := pollFrame(peer, 50*time.Millisecond)
			if !ok {
				break
			}
			if isPortUnreachable(f) {
				icmp = true
			}
		}
		if icmp != tt.icmp {
			t.Errorf("%s: ICMP port unreachable = %v, want %v", tt.name, icmp, tt.icmp)
		}
		s1 := st.Stats()
		if s1.RxPackets != s0.RxPackets+1 {
			t.Errorf("%s: RxPackets %d -> %d, want +1 whichever path", tt.name, s0.RxPackets, s1.RxPackets)
		}
		if d := drops(st) - drops0; tt.dropped != (d > 0) {
			t.Errorf("%s: %d drops counted, want dropped = %v (stats %+v)", tt.name, d, tt.dropped, s1)
		}
	}
}

// TestUDPFastPathAfterConnect checks that Connect narrows a listening socket's fast path to its
// new peer: another sender's datagram goes gVisor's way and is refused with ICMP.
func TestUDPFastPathAfterConnect(t *testing.T) {
	fd, peer := framePair(t)
	st, err := New(Config{TapFD: fd, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetAddress(netip.MustParsePrefix("10.0.2.15/24"))
	peerIP, own := netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.2.15")
	st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4(peerIP.As4()), tcpip.LinkAddress(peerMAC))
	c, err := st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:9000"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(netip.AddrPortFrom(peerIP, 7777)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sport      uint16
		fast, icmp bool
	}{{7777, true, false}, {7778, false, true}} {
		fast0 := st.fast.rxPackets.Load()
		unix.Write(peer, buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), peerIP, own, tt.sport, 9000, []byte("x")))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 64))
		if fast := st.fast.rxPackets.Load() > fast0; fast != tt.fast || (err == nil) != tt.fast {
			t.Errorf("from port %d after Connect to 7777: fast path %v, read error %v; want fast %v", tt.sport, fast, err, tt.fast)
		}
		icmp := false
		for f, ok := pollFrame(peer, 100*time.Millisecond); ok; f, ok = pollFrame(peer, 100*time.Millisecond) {
			icmp = icmp || isPortUnreachable(f)
		}
		if icmp != tt.icmp {
			t.Errorf("from port %d after Connect to 7777: ICMP port unreachable %v, want %v", tt.sport, icmp, tt.icmp)
		}
	}
}

// drops sums the counters of a frame the stack received and threw away.
func drops(st *Stack) uint64 {
	s := st.Stack().Stats()
	return s.DroppedPackets.Value() + s.IP.MalformedPacketsReceived.Value() + s.IP.InvalidDestinationAddressesReceived.Value() +
		s.UDP.MalformedPacketsReceived.Value() + s.UDP.ChecksumErrors.Value()
}

// pollFrame reads one frame from fd if one comes within wait.
func pollFrame(fd int, wait time.Duration) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 10); err != nil || n == 0 {
			continue
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			return nil, false
		}
		return buf[:n], true
	}
	return nil, false
}

// isPortUnreachable reports an Ethernet frame carrying ICMPv4 destination unreachable, port
// unreachable, with a valid ICMP checksum.
func isPortUnreachable(f []byte) bool {
	if len(f) < header.EthernetMinimumSize+header.IPv4MinimumSize+header.ICMPv4MinimumSize ||
		header.Ethernet(f).Type() != header.IPv4ProtocolNumber {
		return false
	}
	ip := header.IPv4(f[header.EthernetMinimumSize:])
	if ip.Protocol() != uint8(header.ICMPv4ProtocolNumber) {
		return false
	}
	icmp := header.ICMPv4(ip.Payload())
	return icmp.Type() == header.ICMPv4DstUnreachable && icmp.Code() == header.ICMPv4PortUnreachable &&
		checksum.Checksum(icmp, 0) == 0xffff
}

// TestUDPFastPathFollowsTheAddress checks that the fast path uses the current address: none
// before SetAddress, the new one after a change, none after the address is removed; and that
// a closed socket's port no longer qualifies.
func TestUDPFastPathFollowsTheAddress(t *testing.T) {
	fd, peer := framePair(t)
	st, err := New(Config{TapFD: fd, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:9000"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peerIP := netip.MustParseAddr("10.0.2.2")
	send := func(dst string) (fast, got bool) {
		t.Helper()
		fast0 := st.fast.rxPackets.Load()
		f := buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), peerIP, netip.MustParseAddr(dst), 7777, 9000, []byte("x"))
		if _, err := unix.Write(peer, f); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 64))
		return st.fast.rxPackets.Load() > fast0, err == nil
	}
	if fast, _ := send("10.0.2.15"); fast {
		t.Error("fast path before the stack has an address")
	}
	st.SetAddress(netip.MustParsePrefix("10.0.2.15/24"))
	if fast, got := send("10.0.2.15"); !fast || !got {
		t.Errorf("with 10.0.2.15: fast %v, delivered %v; want both", fast, got)
	}
	st.SetAddress(netip.MustParsePrefix("192.168.1.7/24"))
	if fast, _ := send("10.0.2.15"); fast {
		t.Error("fast path for the old address after SetAddress changed it")
	}
	if fast, got := send("192.168.1.7"); !fast || !got {
		t.Errorf("with 192.168.1.7: fast %v, delivered %v; want both", fast, got)
	}
	st.SetAddress(netip.Prefix{})
	if fast, _ := send("192.168.1.7"); fast {
		t.Error("fast path after the address was removed")
	}
	st.SetAddress(netip.MustParsePrefix("192.168.1.7/24"))
	c.Close()
	if fast, _ := send("192.168.1.7"); fast {
		t.Error("fast path to a closed socket's port")
	}
	if p := (*st.fast.ports.Load())[9000]; p != nil {
		t.Errorf("port 9000 still registered after Close: %+v", p)
	}
}
