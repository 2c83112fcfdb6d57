package netstack

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// framePair returns two ends of a datagram socket pair: one carries a frame per read or write
// like a tap fd, so the tap link can be tested without root. The test owns peer.
func framePair(t testing.TB) (stackFD, peer int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// pairLink is a tap link (MTU 1500, guestMAC) over one end of a framePair and the other end;
// the link is closed and its reader joined when the test ends.
func pairLink(t *testing.T) (l *tapLink, peer int) {
	t.Helper()
	fd, peer := framePair(t)
	l, err := newTapLink(fd, 1500, tcpip.LinkAddress(guestMAC))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); l.waitReader() })
	return l, peer
}

// arpRequest is "who has target? tell 10.0.2.2" from peerMAC, broadcast.
func arpRequest(target [4]byte) []byte {
	f := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(peerMAC), DstAddr: header.EthernetBroadcastAddress, Type: header.ARPProtocolNumber})
	a := header.ARP(f[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPRequest)
	copy(a.HardwareAddressSender(), peerMAC)
	copy(a.ProtocolAddressSender(), []byte{10, 0, 2, 2})
	copy(a.ProtocolAddressTarget(), target[:])
	return f
}

// readFrame waits up to 5 s for a frame on fd whose EtherType is typ.
func readFrame(t *testing.T, fd int, typ tcpip.NetworkProtocolNumber) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 100); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		} else if n == 0 {
			continue
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n >= header.EthernetMinimumSize && header.Ethernet(buf[:n]).Type() == typ {
			return buf[:n]
		}
	}
	t.Fatalf("no frame of type %#x within 5 s", typ)
	return nil
}

// TestTapLinkAnswersARPAndOwnsFD drives the poller-based tap link over a frame-preserving socket
// pair: a broadcast ARP request for the stack's address is answered from its MAC, one for
// another address and a unicast frame for another station are not, and Close closes the fd it
// was given (Config.TapFD is taken over).
func TestTapLinkAnswersARPAndOwnsFD(t *testing.T) {
	fd, peer := framePair(t)
	st, err := New(Config{TapFD: fd, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	// Not ours: another address, and our address sent to another station's MAC.
	if _, err := unix.Write(peer, arpRequest([4]byte{10, 0, 2, 99})); err != nil {
		t.Fatal(err)
	}
	other := arpRequest([4]byte{10, 0, 2, 15})
	copy(other[0:6], []byte{0x52, 0x54, 0, 0, 0, 0x99})
	if _, err := unix.Write(peer, other); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(peer, arpRequest([4]byte{10, 0, 2, 15})); err != nil {
		t.Fatal(err)
	}
	f := readFrame(t, peer, header.ARPProtocolNumber)
	eth := header.Ethernet(f)
	a := header.ARP(f[header.EthernetMinimumSize:])
	if eth.SourceAddress() != tcpip.LinkAddress(guestMAC) || eth.DestinationAddress() != tcpip.LinkAddress(peerMAC) ||
		a.Op() != header.ARPReply || !bytes.Equal(a.ProtocolAddressSender(), []byte{10, 0, 2, 15}) ||
		!bytes.Equal(a.HardwareAddressSender(), guestMAC) {
		t.Fatalf("reply %x: want 10.0.2.15 is-at %v to %x", f, guestMAC, peerMAC)
	}
	if got := st.Stats().ARPRepliesReceived; got != 0 {
		t.Errorf("ARPRepliesReceived = %d", got)
	}
	if s := st.Stats(); s.RxPackets != 2 {
		t.Errorf("RxPackets = %d, want 2 (the unicast frame for another station is dropped at the link)", s.RxPackets)
	}
	if err := st.tap.err(); err != nil {
		t.Errorf("reader error %v", err)
	}
	st.Close()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("fd %d after Close: %v, want EBADF (the Stack owns Config.TapFD)", fd, err)
	}
}

// TestTapLinkRejectsUnpollableFD: a regular file cannot be watched by the poller, so New refuses
// it instead of starting a reader that would never wake.
func TestTapLinkRejectsUnpollableFD(t *testing.T) {
	fd, err := unix.Open(t.TempDir()+"/f", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{TapFD: fd, MAC: guestMAC}); err == nil {
		t.Fatal("New over a regular file succeeded")
	}
}
