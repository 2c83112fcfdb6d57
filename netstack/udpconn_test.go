package netstack

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// udpPair returns a guest UDPConn on 10.0.2.15:4000 and a peer UDPConn on 10.0.2.2:7777 of two
// stacks joined by a pipe.
func udpPair(t *testing.T) (guest, peer *UDPConn) {
	t.Helper()
	a, b := pipe.New(tcpip.LinkAddress(guestMAC), tcpip.LinkAddress(peerMAC), 1500)
	gs := newTestStack(t, Config{Link: a, MAC: guestMAC}, "10.0.2.15/24")
	ps := newTestStack(t, Config{Link: b, MAC: peerMAC}, "10.0.2.2/24")
	g, err := gs.ListenUDP(netip.MustParseAddrPort("10.0.2.15:4000"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ps.ListenUDP(netip.MustParseAddrPort("10.0.2.2:7777"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); p.Close() })
	return g, p
}

// TestUDPConnReads checks each read flavour: the datagram, its sender, truncation to the
// buffer, and that the next datagram is not mixed with the truncated rest.
func TestUDPConnReads(t *testing.T) {
	g, p := udpPair(t)
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.2.15:4000"))
	peer := netip.MustParseAddrPort("10.0.2.2:7777")
	for _, msg := range [][]byte{[]byte("one"), []byte("two"), bytes.Repeat([]byte("x"), 100), []byte("four")} {
		if _, err := p.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, from, err := g.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "one" || from != peer {
		t.Errorf("ReadFromUDPAddrPort = %q, %v, %v; want \"one\" from %v", buf[:n], from, err, peer)
	}
	if n, from, err := g.ReadFrom(buf); err != nil || string(buf[:n]) != "two" || from.String() != peer.String() {
		t.Errorf("ReadFrom = %q, %v, %v; want \"two\" from %v", buf[:n], from, err, peer)
	}
	if n, err := g.Read(buf[:10]); err != nil || n != 10 {
		t.Errorf("Read of a 100-byte datagram into 10 bytes = %d, %v; want 10 (truncated)", n, err)
	}
	if n, err := g.Read(buf); err != nil || string(buf[:n]) != "four" {
		t.Errorf("Read after a truncated datagram = %q, %v; want \"four\"", buf[:n], err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

// TestUDPConnDeadlines checks the read deadline: a past one fails at once, a future one ends a
// blocked read, moving it (earlier, later, cleared) takes effect, and an expired deadline
// set again to the future lets reads succeed.
func TestUDPConnDeadlines(t *testing.T) {
	g, p := udpPair(t)
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.2.15:4000"))
	buf := make([]byte, 64)

	g.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := g.Read(buf); !isTimeout(err) {
		t.Fatalf("read with a past deadline: %v; want a timeout", err)
	}
	start := time.Now()
	g.SetReadDeadline(start.Add(time.Hour))
	g.SetReadDeadline(start.Add(50 * time.Millisecond)) // moved earlier: re-arms the timer
	if _, err := g.Read(buf); !isTimeout(err) || time.Since(start) > 5*time.Second {
		t.Fatalf("read with a 50 ms deadline: %v after %v; want a timeout", err, time.Since(start))
	}
	// Expired: a new deadline in the future makes reads work again.
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	p.WriteTo([]byte("late"), to)
	if n, err := g.Read(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read after re-arming an expired deadline = %q, %v", buf[:n], err)
	}
	// Many moves of a pending deadline (a reader's per-datagram pattern), then it fires once.
	for i := 0; i < 100; i++ {
		g.SetReadDeadline(time.Now().Add(time.Duration(20+i) * time.Millisecond))
	}
	if _, err := g.Read(buf); !isTimeout(err) {
		t.Fatalf("read after 100 deadline moves: %v; want a timeout", err)
	}
	// Cleared: a read blocks until data comes.
	g.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		p.WriteTo([]byte("cleared"), to)
	}()
	if n, err := g.Read(buf); err != nil || string(buf[:n]) != "cleared" {
		t.Fatalf("read without a deadline = %q, %v", buf[:n], err)
	}
	// SetDeadline sets the read deadline too.
	g.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := g.Read(buf); !isTimeout(err) {
		t.Fatalf("read after SetDeadline: %v; want a timeout", err)
	}
}

// TestUDPConnCloseWakesReader checks that Close ends a blocked read with net.ErrClosed and that
// later reads fail the same way.
func TestUDPConnCloseWakesReader(t *testing.T) {
	g, _ := udpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := g.Read(make([]byte, 64))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	g.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked read after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked read")
	}
	if _, err := g.Read(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v; want net.ErrClosed", err)
	}
}

// TestUDPConnReadAllocs pins the point of UDPConn: reading a queued datagram allocates nothing.
func TestUDPConnReadAllocs(t *testing.T) {
	g, p := udpPair(t)
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.2.15:4000"))
	buf := make([]byte, 64)
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The first datagram waits for ARP; once it is read, the pipe delivers each write at once.
	p.WriteTo([]byte("warm"), to)
	if _, err := g.Read(buf); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n+1; i++ { // AllocsPerRun runs once more to warm up
		p.WriteTo([]byte("datagram"), to)
	}
	allocs := testing.AllocsPerRun(n, func() {
		g.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := g.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadFromUDPAddrPort + SetReadDeadline of a queued datagram: %v allocations, want 0", allocs)
	}
}
