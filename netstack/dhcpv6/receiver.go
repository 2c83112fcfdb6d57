package dhcpv6

import (
	"context"
	"net"
	"time"

	dhcp "github.com/insomniacslk/dhcp/dhcpv6"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// receiver reads the caller's socket in a goroutine, keeps the messages for this exchange (our transaction ID and
// client identifier) and multiplexes them with a deadline driven by the injected clock.
type receiver struct {
	conn  net.PacketConn
	clock tcpip.Clock
	xid   dhcp.TransactionID
	duid  dhcp.DUID
	stats *Stats

	rx       chan []byte
	done     chan struct{}
	ended    chan struct{}
	fired    chan struct{}
	timer    tcpip.Timer
	deadline tcpip.MonotonicTime
}

func newReceiver(conn net.PacketConn, clock tcpip.Clock, xid dhcp.TransactionID, duid dhcp.DUID, st *Stats) *receiver {
	r := &receiver{conn: conn, clock: clock, xid: xid, duid: duid, stats: st,
		rx: make(chan []byte, 16), done: make(chan struct{}), ended: make(chan struct{}), fired: make(chan struct{}, 1)}
	conn.SetReadDeadline(time.Time{})
	go r.read()
	return r
}

func (r *receiver) read() {
	defer close(r.ended)
	for {
		buf := make([]byte, 1500)
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
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

// stop ends the reader goroutine without closing the caller's socket.
func (r *receiver) stop() {
	close(r.done)
	r.conn.SetReadDeadline(time.Unix(1, 0))
	<-r.ended
	r.conn.SetReadDeadline(time.Time{})
	if r.timer != nil {
		r.timer.Stop()
	}
}

func (r *receiver) arm(t tcpip.MonotonicTime) {
	r.deadline = t
	d := max(t.Sub(r.clock.NowMonotonic()), 0)
	if r.timer == nil {
		r.timer = r.clock.AfterFunc(d, r.fire)
	} else {
		r.timer.Reset(d)
	}
}

func (r *receiver) fire() {
	select {
	case r.fired <- struct{}{}:
	default:
	}
}

// next returns the next message for this exchange, or nil when the deadline passes.
func (r *receiver) next(ctx context.Context) (*dhcp.Message, error) {
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
			r.stats.Received++
			m, err := dhcp.MessageFromBytes(b)
			if err != nil || m.TransactionID != r.xid || !sameDUID(m.Options.ClientID(), r.duid) {
				r.stats.Ignored++
				continue
			}
			return m, nil
		}
	}
}
