package netstack

import (
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// dropInbound is a fault injector of the kind Config.WrapLink is for: it embeds nested.Endpoint
// and drops every inbound frame while drop is set.
type dropInbound struct {
	nested.Endpoint
	drop    atomic.Bool
	dropped atomic.Int64
}

var _ stack.LinkEndpoint = (*dropInbound)(nil)

// DeliverNetworkPacket implements stack.NetworkDispatcher.DeliverNetworkPacket.
func (d *dropInbound) DeliverNetworkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if d.drop.Load() {
		d.dropped.Add(1)
		return
	}
	d.Endpoint.DeliverNetworkPacket(protocol, pkt)
}

func TestWrapLinkInjectsFaults(t *testing.T) {
	a, b := pipe.New(tcpip.LinkAddress(guestMAC), tcpip.LinkAddress(peerMAC), 1500)
	inj := &dropInbound{}
	guest := newTestStack(t, Config{Link: a, MAC: guestMAC, WrapLink: func(child stack.LinkEndpoint) stack.LinkEndpoint {
		inj.Init(child, inj)
		return inj
	}}, "10.0.2.15/24")
	peer := newTestStack(t, Config{Link: b, MAC: peerMAC}, "10.0.2.2/24")
	c := dialEcho(t, guest, peer, "10.0.2.2:7777")
	exchangeUDP(t, c, 3)

	inj.drop.Store(true)
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	c.Write([]byte("lost"))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Errorf("read %d bytes through a link that drops everything inbound", n)
	}
	if inj.dropped.Load() == 0 {
		t.Error("the injector saw no inbound frame")
	}
	inj.drop.Store(false)
	exchangeUDP(t, c, 3)
}
