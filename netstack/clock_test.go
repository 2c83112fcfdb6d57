package netstack

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
)

// TestClockDrivesRetransmits checks that Config.Clock is the stack's time: an unanswered ARP
// request is repeated only when the manual clock advances.
func TestClockDrivesRetransmits(t *testing.T) {
	clock := faketime.NewManualClock()
	ch := channel.New(16, 1500, tcpip.LinkAddress(guestMAC))
	st := newTestStack(t, Config{Link: ethernet.New(ch), MAC: guestMAC, Clock: clock}, "10.0.2.15/24")
	c, err := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("10.0.2.2:7777"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	arps := func(wait time.Duration) int {
		n := 0
		for {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			pkt := ch.ReadContext(ctx)
			cancel()
			if pkt == nil {
				return n
			}
			if header.Ethernet(pkt.ToView().AsSlice()).Type() == header.ARPProtocolNumber {
				n++
			}
			pkt.DecRef()
		}
	}
	if n := arps(300 * time.Millisecond); n != 1 {
		t.Fatalf("%d ARP requests before the clock moved, want 1", n)
	}
	if n := arps(200 * time.Millisecond); n != 0 {
		t.Fatalf("%d ARP retransmissions in 200 ms of real time with a stopped clock, want 0", n)
	}
	clock.Advance(2 * time.Second)
	if n := arps(300 * time.Millisecond); n < 1 {
		t.Errorf("no ARP retransmission after advancing the clock 2 s")
	}
}
