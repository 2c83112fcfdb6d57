package dhcpv6

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	dhcp "github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

var clientMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

func newStack(t *testing.T, ep stack.LinkEndpoint, addr string) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	t.Cleanup(func() { s.Close(); s.Wait() })
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	p := netip.MustParsePrefix(addr)
	pa := tcpip.ProtocolAddress{Protocol: ipv6.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()}}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress(%v): %v", addr, err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s
}

func udp6(t *testing.T, s *stack.Stack, port uint16, group string) *gonet.UDPConn {
	t.Helper()
	var wq waiter.Queue
	ep, err := s.NewEndpoint(udp.ProtocolNumber, ipv6.ProtocolNumber, &wq)
	if err != nil {
		t.Fatalf("NewEndpoint: %v", err)
	}
	if err := ep.Bind(tcpip.FullAddress{NIC: 1, Port: port}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if group != "" {
		g := tcpip.AddrFromSlice(netip.MustParseAddr(group).AsSlice())
		if err := ep.SetSockOpt(&tcpip.AddMembershipOption{NIC: 1, MulticastAddr: g}); err != nil {
			t.Fatalf("join %s: %v", group, err)
		}
	}
	c := gonet.NewUDPConn(&wq, ep)
	t.Cleanup(func() { c.Close() })
	return c
}

// lab is a scripted DHCPv6 server on the far stack.
type lab struct {
	mu     sync.Mutex
	seen   []*dhcp.Message
	answer func(m *dhcp.Message) []*dhcp.Message
}

func (l *lab) serve(conn net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := dhcp.MessageFromBytes(buf[:n])
		if err != nil {
			continue
		}
		l.mu.Lock()
		l.seen = append(l.seen, m)
		l.mu.Unlock()
		if l.answer == nil {
			continue
		}
		for _, r := range l.answer(m) {
			conn.WriteTo(r.ToBytes(), from)
		}
	}
}

func (l *lab) messages() []*dhcp.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*dhcp.Message(nil), l.seen...)
}

func startLab(t *testing.T, l *lab) net.PacketConn {
	t.Helper()
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 1500)
	cs := newStack(t, a, "fe80::5054:ff:fe12:3456/64")
	ls := newStack(t, b, "fe80::2/64")
	go l.serve(udp6(t, ls, 547, "ff02::1:2"))
	return udp6(t, cs, 546, "")
}

var serverDUID = &dhcp.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x55, 0x0a, 0, 2, 2}}

func reply(req *dhcp.Message, t dhcp.MessageType, mods ...dhcp.Modifier) *dhcp.Message {
	m := &dhcp.Message{MessageType: t, TransactionID: req.TransactionID}
	m.AddOption(req.GetOneOption(dhcp.OptionClientID))
	m.AddOption(dhcp.OptServerID(serverDUID))
	for _, mod := range mods {
		mod(m)
	}
	return m
}

func withBootURL(u string) dhcp.Modifier {
	return dhcp.WithOption(dhcp.OptBootFileURL(u))
}

func withAddr(a string) dhcp.Modifier {
	return dhcp.WithIANA(dhcp.OptIAAddress{IPv6Addr: net.ParseIP(a), PreferredLifetime: time.Hour, ValidLifetime: 2 * time.Hour})
}

func TestInformationRequest(t *testing.T) {
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		return []*dhcp.Message{reply(m, dhcp.MessageTypeReply, withBootURL("tftp://[fec0::2]/s390x/kernel.img"),
			dhcp.WithDNS(net.ParseIP("fec0::3")), dhcp.WithDomainSearchList("lab.example"))}
	}}
	conn := startLab(t, l)
	c := &Client{Conn: conn, HWAddr: clientMAC}
	lease, err := c.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire = %v (stats %+v)", err, c.Stats)
	}
	if got := fmt.Sprintf("%v %v %v %q", lease.Addr, lease.DNS, lease.DomainSearch, lease.BootURL); got !=
		`invalid IP [fec0::3] [lab.example] "tftp://[fec0::2]/s390x/kernel.img"` {
		t.Errorf("lease = %s", got)
	}
	msgs := l.messages()
	if len(msgs) != 1 || msgs[0].MessageType != dhcp.MessageTypeInformationRequest {
		t.Fatalf("lab saw %v, want one INFORMATION-REQUEST", msgs)
	}
	checkIdentity(t, msgs[0])
}

func checkIdentity(t *testing.T, m *dhcp.Message) {
	t.Helper()
	o := m.Options
	if cid := o.ClientID(); cid == nil || cid.String() != "DUID-LL{HWType=Ethernet HWAddr=52:54:00:12:34:56}" {
		t.Errorf("%s client id = %v", m.MessageType, cid)
	}
	if got := fmt.Sprint(o.RequestedOptions()); got != "DNS, Domain Search List, Boot File URL, Boot File Parameters" {
		t.Errorf("%s ORO = %s", m.MessageType, got)
	}
	if got := o.ArchTypes(); len(got) != 1 || uint16(got[0]) != 0x1f {
		t.Errorf("%s option 61 = %v, want [0x1f]", m.MessageType, got)
	}
	if got := o.VendorClass(343); len(got) != 1 || string(got[0]) != "PXEClient:Arch:00031:UNDI:003016" {
		t.Errorf("%s vendor class = %q", m.MessageType, got)
	}
	if got := o.UserClasses(); len(got) != 1 || string(got[0]) != "netipl" {
		t.Errorf("%s user class = %q", m.MessageType, got)
	}
	if nii := m.GetOneOption(dhcp.OptionNII); nii == nil || fmt.Sprintf("% x", nii.ToBytes()) != "01 03 10" {
		t.Errorf("%s option 62 = %v", m.MessageType, nii)
	}
}

func TestStateful(t *testing.T) {
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		switch m.MessageType {
		case dhcp.MessageTypeSolicit:
			// A preferred server without a boot URL loses to an equal one with a URL; the bad one is ignored.
			return []*dhcp.Message{
				reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::100")),
				reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::200"), withBootURL("http://[fec0::2]/k")),
				reply(m, dhcp.MessageTypeAdvertise, dhcp.WithOption(&dhcp.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail})),
			}
		case dhcp.MessageTypeRequest:
			ia := m.Options.OneIANA()
			if ia == nil || ia.Options.OneAddress() == nil {
				return nil
			}
			return []*dhcp.Message{reply(m, dhcp.MessageTypeReply, withAddr(ia.Options.OneAddress().IPv6Addr.String()),
				withBootURL("http://[fec0::2]/k"))}
		}
		return nil
	}}
	conn := startLab(t, l)
	var events []string
	c := &Client{Conn: conn, HWAddr: clientMAC, Stateful: true, AdvertiseWait: 50 * time.Millisecond,
		Progress: func(e Event) { events = append(events, e.Type.String()) }}
	lease, err := c.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire = %v (stats %+v)", err, c.Stats)
	}
	if lease.Addr != netip.MustParseAddr("fec0::200") || lease.ValidLifetime != 2*time.Hour || lease.BootURL != "http://[fec0::2]/k" {
		t.Errorf("lease = %+v", lease)
	}
	if got := strings.Join(events, ","); got != "solicit,advertise,advertise,request,reply" {
		t.Errorf("events = %s", got)
	}
	for _, m := range l.messages() {
		checkIdentity(t, m)
	}
}

func TestRejectedReply(t *testing.T) {
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		switch m.MessageType {
		case dhcp.MessageTypeSolicit:
			return []*dhcp.Message{reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::100"), dhcp.WithPreference(255))}
		case dhcp.MessageTypeRequest:
			return []*dhcp.Message{reply(m, dhcp.MessageTypeReply,
				dhcp.WithOption(&dhcp.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "pool empty"}))}
		}
		return nil
	}}
	conn := startLab(t, l)
	// Preference 255 ends the advertise collection at once, so no timer is involved: the manual clock never moves,
	// and a client that waited for AdvertiseWait anyway would be stopped by the guard context.
	c := &Client{Conn: conn, HWAddr: clientMAC, Stateful: true, MaxRounds: 2, Clock: faketime.NewManualClock()}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(guardCtx(t)); errc <- err }()
	err := <-errc
	want := `dhcpv6: no DHCPv6 reply after 2 rounds (0s); last reply refused: server status NoAddrsAvail: "pool empty"`
	if !errors.Is(err, ErrNoReply) || err.Error() != want || c.Stats.Rejected != 2 {
		t.Errorf("Acquire = %v, stats %+v; want %q after 2 rejected replies", err, c.Stats, want)
	}
}

// guardCtx bounds a test's Acquire in wall time, so a client that waits forever fails the test instead of hanging.
func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestAdvertiseChoice: preference beats a boot URL; an Advertise with an error status, or for another client, is
// dropped; a Reply from another server than the one requested is ignored.
func TestAdvertiseChoice(t *testing.T) {
	otherClient := &dhcp.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 9, 9, 9}}
	otherServer := &dhcp.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x55, 0, 6, 6, 6}}
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		switch m.MessageType {
		case dhcp.MessageTypeSolicit:
			notOurs := reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::400"), dhcp.WithPreference(255))
			notOurs.UpdateOption(dhcp.OptClientID(otherClient))
			return []*dhcp.Message{
				notOurs,
				reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::300"), dhcp.WithPreference(200),
					dhcp.WithOption(&dhcp.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail})),
				reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::200"), withBootURL("http://[fec0::2]/k")),
				reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::100"), dhcp.WithPreference(10)),
			}
		case dhcp.MessageTypeRequest:
			ia := m.Options.OneIANA()
			if ia == nil || ia.Options.OneAddress() == nil {
				return nil
			}
			rogue := reply(m, dhcp.MessageTypeReply, withAddr("fec0::666"))
			rogue.UpdateOption(dhcp.OptServerID(otherServer))
			return []*dhcp.Message{rogue, reply(m, dhcp.MessageTypeReply, withAddr(ia.Options.OneAddress().IPv6Addr.String()))}
		}
		return nil
	}}
	conn := startLab(t, l)
	c := &Client{Conn: conn, HWAddr: clientMAC, Stateful: true, AdvertiseWait: 50 * time.Millisecond}
	lease, err := c.Acquire(guardCtx(t))
	if err != nil {
		t.Fatalf("Acquire = %v (stats %+v)", err, c.Stats)
	}
	if lease.Addr != netip.MustParseAddr("fec0::100") {
		t.Errorf("lease address %v, want fec0::100 (preference 10 beats a boot URL at preference 0)", lease.Addr)
	}
	if c.Stats.Advertises != 2 || c.Stats.Ignored != 3 {
		t.Errorf("stats %+v, want 2 advertises taken and 3 messages ignored (other client, error status, other server)", c.Stats)
	}
}

// TestAdvertiseFlood: collection stops at maxAdvertises, without waiting out AdvertiseWait (the clock never moves).
func TestAdvertiseFlood(t *testing.T) {
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		switch m.MessageType {
		case dhcp.MessageTypeSolicit:
			var out []*dhcp.Message
			for range maxAdvertises + 4 {
				out = append(out, reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::100")))
			}
			return out
		case dhcp.MessageTypeRequest:
			return []*dhcp.Message{reply(m, dhcp.MessageTypeReply, withAddr("fec0::100"))}
		}
		return nil
	}}
	conn := startLab(t, l)
	c := &Client{Conn: conn, HWAddr: clientMAC, Stateful: true, Clock: faketime.NewManualClock()}
	lease, err := c.Acquire(guardCtx(t))
	if err != nil || lease.Addr != netip.MustParseAddr("fec0::100") {
		t.Fatalf("Acquire = %v, %v (stats %+v), want fec0::100 without the clock moving", lease, err, c.Stats)
	}
	if c.Stats.Advertises != maxAdvertises {
		t.Errorf("advertises kept %d, want %d", c.Stats.Advertises, maxAdvertises)
	}
}

// TestZeroLifetime: a Reply whose address has a zero valid lifetime is rejected (back to Solicit).
func TestZeroLifetime(t *testing.T) {
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		switch m.MessageType {
		case dhcp.MessageTypeSolicit:
			return []*dhcp.Message{reply(m, dhcp.MessageTypeAdvertise, withAddr("fec0::100"), dhcp.WithPreference(255))}
		case dhcp.MessageTypeRequest:
			return []*dhcp.Message{reply(m, dhcp.MessageTypeReply,
				dhcp.WithIANA(dhcp.OptIAAddress{IPv6Addr: net.ParseIP("fec0::100"), PreferredLifetime: 0, ValidLifetime: 0}))}
		}
		return nil
	}}
	conn := startLab(t, l)
	var texts []string
	c := &Client{Conn: conn, HWAddr: clientMAC, Stateful: true, MaxRounds: 1, Clock: faketime.NewManualClock(),
		Progress: func(e Event) {
			if e.Type == EventRejected {
				texts = append(texts, e.Text)
			}
		}}
	_, err := c.Acquire(guardCtx(t))
	if !errors.Is(err, ErrNoReply) || fmt.Sprint(texts) != "[IA_NA address fec0::100 has a zero valid lifetime]" {
		t.Errorf("Acquire = %v, rejections %q; want ErrNoReply after the zero-lifetime reply", err, texts)
	}
}

// TestStatelessErrorStatus: in stateless mode a Reply with an error status is refused and the client keeps
// listening: a second server's good Reply in the same round is taken.
func TestStatelessErrorStatus(t *testing.T) {
	other := &dhcp.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x55, 0, 7, 7, 7}}
	l := &lab{answer: func(m *dhcp.Message) []*dhcp.Message {
		refusal := reply(m, dhcp.MessageTypeReply, dhcp.WithOption(&dhcp.OptStatusCode{StatusCode: iana.StatusUnspecFail, StatusMessage: "broken"}))
		good := reply(m, dhcp.MessageTypeReply, withBootURL("tftp://[fec0::2]/k"))
		good.UpdateOption(dhcp.OptServerID(other))
		return []*dhcp.Message{refusal, good}
	}}
	conn := startLab(t, l)
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: faketime.NewManualClock()}
	lease, err := c.Acquire(guardCtx(t))
	if err != nil || lease.BootURL != "tftp://[fec0::2]/k" || c.Stats.Rejected != 1 {
		t.Errorf("Acquire = %+v, %v, stats %+v; want the second server's boot URL after one refusal", lease, err, c.Stats)
	}
}

func TestSilentServer(t *testing.T) {
	l := &lab{}
	conn := startLab(t, l)
	clock := faketime.NewManualClock()
	c := &Client{Conn: conn, HWAddr: clientMAC, MaxRounds: 3, InitialTimeout: time.Second, MaxTimeout: 2 * time.Second, Clock: clock}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(context.Background()); errc <- err }()
	// Step exactly each round's wait (1 s, then doubled to the 2 s cap): the manual clock fires a timer at its
	// deadline, so the client reads exactly that time.
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 2 * time.Second} {
		waitMessages(t, l, i+1)
		clock.Advance(d)
	}
	err := <-errc
	if !errors.Is(err, ErrNoReply) || err.Error() != "dhcpv6: no DHCPv6 reply after 3 rounds (5s)" || c.Stats.Timeouts != 3 {
		t.Errorf("Acquire = %v, stats %+v", err, c.Stats)
	}
	for i, m := range l.messages() {
		if m.Options.ElapsedTime() != []time.Duration{0, time.Second, 3 * time.Second}[i] {
			t.Errorf("message %d elapsed time %v", i, m.Options.ElapsedTime())
		}
	}
}

func waitMessages(t *testing.T, l *lab, n int) {
	t.Helper()
	for i := 0; i < 10000; i++ {
		if len(l.messages()) >= n {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatalf("lab saw %d messages, want %d", len(l.messages()), n)
}

// FuzzNewLease feeds server messages through the library parser and the lease extraction: no panic, and an accepted
// stateful lease has a usable address.
func FuzzNewLease(f *testing.F) {
	req := &dhcp.Message{MessageType: dhcp.MessageTypeRequest}
	req.AddOption(dhcp.OptClientID(&dhcp.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: clientMAC}))
	f.Add(reply(req, dhcp.MessageTypeReply, withAddr("fec0::200"), withBootURL("tftp://[fec0::2]/k")).ToBytes())
	f.Add(reply(req, dhcp.MessageTypeReply, dhcp.WithDNS(net.ParseIP("fec0::3"))).ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1500 {
			return
		}
		m, err := dhcp.MessageFromBytes(b)
		if err != nil {
			return
		}
		l, err := newLease(m, true)
		if err != nil {
			return
		}
		if !l.Addr.Is6() || l.Addr.IsUnspecified() || l.Addr.IsMulticast() || l.ValidLifetime == 0 {
			t.Errorf("newLease(% x) accepted address %v lifetime %v", b, l.Addr, l.ValidLifetime)
		}
	})
}
