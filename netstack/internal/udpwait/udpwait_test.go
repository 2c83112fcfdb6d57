package udpwait

import (
	"context"
	"net"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

func TestReceiver(t *testing.T) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // guard: a stuck Next fails the test
	defer cancel()

	clock := faketime.NewManualClock()
	r := New(conn, clock)
	r.Arm(clock.NowMonotonic().Add(time.Second))
	peer.WriteTo([]byte("hello"), conn.LocalAddr())
	if b, err := r.Next(ctx); err != nil || string(b) != "hello" {
		t.Fatalf("Next = %q, %v; want the datagram", b, err)
	}
	// Moved later before it fires: the old timer's expiry must not end the new wait.
	r.Arm(clock.NowMonotonic().Add(3 * time.Second))
	done := make(chan []byte, 1)
	go func() { b, _ := r.Next(ctx); done <- b }()
	clock.Advance(2 * time.Second)
	select {
	case b := <-done:
		t.Fatalf("Next returned %q before the deadline", b)
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(time.Second)
	if b := <-done; b != nil {
		t.Errorf("Next at the deadline = %q, want nil", b)
	}
	r.Stop()
	// The socket is the caller's and still reads after Stop.
	peer.WriteTo([]byte("after"), conn.LocalAddr())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, _, err := conn.ReadFrom(buf); err != nil || string(buf[:n]) != "after" {
		t.Errorf("ReadFrom after Stop = %q, %v", buf[:n], err)
	}
}
