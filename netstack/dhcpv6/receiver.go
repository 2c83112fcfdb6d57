package dhcpv6

import (
	"context"
	"net"

	dhcp "github.com/insomniacslk/dhcp/dhcpv6"
	"gvisor.dev/gvisor/pkg/tcpip"

	"netipl/netstack/internal/udpwait"
)

// receiver keeps the messages for this exchange (our transaction ID and client identifier) from a
// udpwait.Receiver on the caller's socket.
type receiver struct {
	wait  *udpwait.Receiver
	xid   dhcp.TransactionID
	duid  dhcp.DUID
	stats *Stats
}

func newReceiver(conn net.PacketConn, clock tcpip.Clock, xid dhcp.TransactionID, duid dhcp.DUID, st *Stats) *receiver {
	return &receiver{wait: udpwait.New(conn, clock), xid: xid, duid: duid, stats: st}
}

// stop ends the reader goroutine without closing the caller's socket.
func (r *receiver) stop() { r.wait.Stop() }

// arm makes the next waits end at t.
func (r *receiver) arm(t tcpip.MonotonicTime) { r.wait.Arm(t) }

// next returns the next message for this exchange, or nil when the deadline passes.
func (r *receiver) next(ctx context.Context) (*dhcp.Message, error) {
	for {
		b, err := r.wait.Next(ctx)
		if err != nil || b == nil {
			return nil, err
		}
		r.stats.Received++
		m, err := dhcp.MessageFromBytes(b)
		if err != nil || m.TransactionID != r.xid || !sameDUID(m.Options.ClientID(), r.duid) {
			r.stats.Ignored++
			continue
		}
		return m, nil
	}
}

// nextOf returns the next message of type t for this exchange, or nil when the deadline passes;
// messages of other types are counted as ignored.
func (r *receiver) nextOf(ctx context.Context, t dhcp.MessageType) (*dhcp.Message, error) {
	for {
		m, err := r.next(ctx)
		if err != nil || m == nil || m.MessageType == t {
			return m, err
		}
		r.stats.Ignored++
	}
}
