package dhcpv4

import (
	"bytes"
	"context"
	"net"

	dhcp "github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"

	"netipl/netstack/internal/udpwait"
)

// receiver keeps the replies that belong to this exchange (BOOTREPLY, our xid, our chaddr) from a udpwait.Receiver
// on the caller's socket.
type receiver struct {
	wait  *udpwait.Receiver
	xid   dhcp.TransactionID
	hw    net.HardwareAddr
	stats *Stats
}

func newReceiver(conn net.PacketConn, clock tcpip.Clock, xid dhcp.TransactionID, hw net.HardwareAddr, st *Stats) *receiver {
	return &receiver{wait: udpwait.New(conn, clock), xid: xid, hw: hw, stats: st}
}

// stop ends the reader goroutine without closing the caller's socket.
func (r *receiver) stop() { r.wait.Stop() }

// arm makes the next waits end at t.
func (r *receiver) arm(t tcpip.MonotonicTime) { r.wait.Arm(t) }

// next returns the next reply for this exchange, or nil when the deadline passes.
func (r *receiver) next(ctx context.Context) (*reply, error) {
	for {
		b, err := r.wait.Next(ctx)
		if err != nil || b == nil {
			return nil, err
		}
		r.stats.Received++
		m, bootp, err := parseReply(b)
		if err != nil || m.OpCode != dhcp.OpcodeBootReply || m.TransactionID != r.xid ||
			!bytes.Equal(m.ClientHWAddr, r.hw) {
			r.stats.Ignored++
			continue
		}
		return &reply{m: m, bootp: bootp}, nil
	}
}
