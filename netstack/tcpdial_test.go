package netstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// TestMoveLongWriterMatchesSliceWriter: the writer DialTCP's reads use fills and advances its
// slice exactly as gVisor's SliceWriter does, short write included, for random write sequences.
func TestMoveLongWriterMatchesSliceWriter(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	src := make([]byte, 1<<16)
	rng.Read(src)
	for round := 0; round < 200; round++ {
		size := rng.Intn(20000)
		want, got := make([]byte, size), make([]byte, size)
		sw, mw := tcpip.SliceWriter(want), moveLongWriter(got)
		for {
			b := src[rng.Intn(1000):]
			b = b[:rng.Intn(3000)]
			n1, err1 := sw.Write(b)
			n2, err2 := mw.Write(b)
			if n1 != n2 || !errors.Is(err2, err1) || len(sw) != len(mw) {
				t.Fatalf("round %d: SliceWriter wrote %d (%v, %d left), moveLongWriter %d (%v, %d left)", round, n1, err1, len(sw), n2, err2, len(mw))
			}
			if err1 != nil || len(sw) == 0 {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: contents differ", round)
		}
	}
}

// tcpPipePair is two stacks joined by a gVisor pipe and a TCP listener on the peer at
// 10.0.2.2:8080 whose connections serve runs.
func tcpPipePair(t *testing.T, serve func(net.Conn)) (guest *Stack) {
	t.Helper()
	a, b := pipe.New(tcpip.LinkAddress(guestMAC), tcpip.LinkAddress(peerMAC), 1500)
	guest = newTestStack(t, Config{Link: a, MAC: guestMAC}, "10.0.2.15/24")
	peer := newTestStack(t, Config{Link: b, MAC: peerMAC}, "10.0.2.2/24")
	l, err := peer.ListenTCP(netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return guest
}

func dialPeer(t *testing.T, guest *Stack) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := guest.DialTCP(ctx, netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDialTCPReads: a 3 MiB stream arrives intact through reads of every size (below and above
// movelong's threshold and the segment size), then io.EOF.
func TestDialTCPReads(t *testing.T) {
	want := make([]byte, 3<<20)
	rand.New(rand.NewSource(2)).Read(want)
	guest := tcpPipePair(t, func(c net.Conn) {
		c.Write(want)
		c.Close()
	})
	c := dialPeer(t, guest)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got []byte
	sizes := []int{1, 100, 511, 512, 600, 1448, 4096, 70000}
	for i := 0; ; i++ {
		buf := make([]byte, sizes[i%len(sizes)])
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d; contents equal: %v", len(got), len(want), bytes.Equal(got, want))
	}
}

// TestDialTCPBlockedReads: a read that waits ends at its deadline with a timeout error, and one
// that waits when the connection is closed returns at once.
func TestDialTCPBlockedReads(t *testing.T) {
	hold := make(chan struct{})
	guest := tcpPipePair(t, func(c net.Conn) { <-hold; c.Close() })
	defer close(hold)
	c := dialPeer(t, guest)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 100)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 100)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read on a closed connection returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked read did not return after Close")
	}
}

// TestDialTCPFailures: a refused connection and a cancelled context are errors that say so.
func TestDialTCPFailures(t *testing.T) {
	guest := tcpPipePair(t, func(c net.Conn) { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := guest.DialTCP(ctx, netip.MustParseAddrPort("10.0.2.2:8081")); err == nil || !strings.Contains(err.Error(), "connect tcp 10.0.2.2:8081") {
		t.Errorf("dial to a closed port: %v, want a connect error", err)
	}
	cancelled, stop := context.WithCancel(context.Background())
	stop()
	if _, err := guest.DialTCP(cancelled, netip.MustParseAddrPort("10.0.2.2:8080")); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v, want context.Canceled", err)
	}
}
