// Package udpwait waits for datagrams on a caller's UDP socket with a deadline on an injected tcpip.Clock, so a
// client's retransmission timers can be stepped by a faketime.ManualClock in tests. The DHCPv4 and DHCPv6 clients
// share it: each reads replies here and keeps its own filter (transaction ID, client identity).
//
// The socket stays the caller's: Stop ends the reader goroutine with a past read deadline, not by closing it.
package udpwait

import (
	"context"
	"errors"
	"net"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// maxDatagram is the largest datagram kept; DHCP replies fit a 1500-byte MTU.
const maxDatagram = 1500

// Receiver reads one socket in a goroutine and hands the datagrams to Next, which also returns when the armed
// deadline passes. The zero Receiver is not usable: use New.
type Receiver struct {
	conn  net.PacketConn
	clock tcpip.Clock

	rx    chan []byte
	done  chan struct{}
	ended chan struct{}
	fired chan struct{}
	timer tcpip.Timer
	// deadline is when the current wait ends.
	deadline tcpip.MonotonicTime
}

// New starts reading conn. The caller must call Stop.
func New(conn net.PacketConn, clock tcpip.Clock) *Receiver {
	r := &Receiver{conn: conn, clock: clock,
		rx: make(chan []byte, 16), done: make(chan struct{}), ended: make(chan struct{}), fired: make(chan struct{}, 1)}
	conn.SetReadDeadline(time.Time{})
	go r.read()
	return r
}

func (r *Receiver) read() {
	defer close(r.ended)
	for {
		buf := make([]byte, maxDatagram)
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		select {
		case r.rx <- buf[:n]:
		case <-r.done:
			return
		}
	}
}

// Stop ends the reader goroutine without closing the caller's socket: a past read deadline unblocks ReadFrom.
func (r *Receiver) Stop() {
	close(r.done)
	r.conn.SetReadDeadline(time.Unix(1, 0))
	<-r.ended
	r.conn.SetReadDeadline(time.Time{})
	if r.timer != nil {
		r.timer.Stop()
	}
}

// Arm makes the next waits end at t.
func (r *Receiver) Arm(t tcpip.MonotonicTime) {
	r.deadline = t
	d := max(t.Sub(r.clock.NowMonotonic()), 0)
	if r.timer == nil {
		r.timer = r.clock.AfterFunc(d, r.fire)
	} else {
		r.timer.Reset(d)
	}
}

func (r *Receiver) fire() {
	select {
	case r.fired <- struct{}{}:
	default:
	}
}

// Next returns the next datagram, or nil when the armed deadline passes, or the context's error.
func (r *Receiver) Next(ctx context.Context) ([]byte, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.fired:
			now := r.clock.NowMonotonic()
			if now.Before(r.deadline) {
				r.timer.Reset(r.deadline.Sub(now))
				continue
			}
			return nil, nil
		case b := <-r.rx:
			return b, nil
		}
	}
}
