package dhcpv4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dhcp "github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// checkIdentity asserts the options every DISCOVER and REQUEST must carry.
func checkIdentity(t *testing.T, m *dhcp.DHCPv4, uuid []byte) {
	t.Helper()
	var prl []int
	for _, c := range m.ParameterRequestList() {
		prl = append(prl, int(c.Code()))
	}
	if got := fmt.Sprint(prl); got != "[1 3 6 12 15 28 43 54 66 67 209 210 211]" {
		t.Errorf("%s option 55 = %s", m.MessageType(), got)
	}
	for _, tt := range []struct {
		code dhcp.OptionCode
		want []byte
	}{
		{dhcp.OptionClientSystemArchitectureType, []byte{0x00, 0x1f}},
		{dhcp.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16}},
		{dhcp.OptionClassIdentifier, []byte("PXEClient:Arch:00031:UNDI:003016")},
		{dhcp.OptionUserClassInformation, []byte("netipl")},
	} {
		if got := m.Options.Get(tt.code); !bytes.Equal(got, tt.want) {
			t.Errorf("%s option %d = %q, want %q", m.MessageType(), tt.code.Code(), got, tt.want)
		}
	}
	got97 := m.Options.Get(dhcp.OptionClientMachineIdentifier)
	if uuid == nil && got97 != nil || uuid != nil && !bytes.Equal(got97, append([]byte{0}, uuid...)) {
		t.Errorf("%s option 97 = % x, want type 0 + % x", m.MessageType(), got97, uuid)
	}
	if !bytes.Equal(m.ClientHWAddr, clientMAC) || !m.IsBroadcast() {
		t.Errorf("%s chaddr %v broadcast %v, want %v and the broadcast flag", m.MessageType(), m.ClientHWAddr, m.IsBroadcast(), clientMAC)
	}
}

func TestAcquireOverGVisor(t *testing.T) {
	uuid := []byte("0123456789abcdef")
	lab := &labServer{
		offer: func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			// Two servers answer; the second carries a boot file and must win.
			return []*dhcp.DHCPv4{
				replyTo(req, dhcp.MessageTypeOffer, "10.0.2.9"),
				replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2", dhcp.WithOption(dhcp.OptBootFileName("s390x/kernel.img"))),
			}
		},
		answer: func(req *dhcp.DHCPv4) *dhcp.DHCPv4 {
			if !req.ServerIdentifier().Equal(mustAddr("10.0.2.2").AsSlice()) {
				return nil
			}
			return replyTo(req, dhcp.MessageTypeAck, "10.0.2.2",
				dhcp.WithOption(dhcp.OptBootFileName("s390x/kernel.img")),
				dhcp.WithOption(dhcp.OptTFTPServerName("10.0.2.4")),
				dhcp.WithGeneric(dhcp.OptionPXELinuxConfigFile, []byte("pxelinux.cfg/s390x")),
				dhcp.WithGeneric(dhcp.OptionPXELinuxPathPrefix, []byte("/srv/tftp/")),
				dhcp.WithGeneric(dhcp.OptionPXELinuxRebootTime, []byte{0, 0, 0, 30}))
		},
	}
	conn := startLab(t, lab)
	var events []string
	c := &Client{Conn: conn, HWAddr: clientMAC, UUID: uuid, OfferWait: 50 * time.Millisecond,
		Progress: func(e Event) { events = append(events, fmt.Sprintf("%s %v", e.Type, e.Server)) }}
	l, err := c.Acquire(guardCtx(t))
	if err != nil {
		t.Fatalf("Acquire = %v (stats %+v)", err, c.Stats)
	}
	want := Lease{Addr: mustPrefix("10.0.2.15/24"), Router: mustAddr("10.0.2.2"), DNS: []netip.Addr{mustAddr("10.0.2.3")},
		ServerID: mustAddr("10.0.2.2"), NextServer: mustAddr("10.0.2.2"), BootFile: "s390x/kernel.img",
		TFTPServer: "10.0.2.4", ConfigFile: "pxelinux.cfg/s390x", PathPrefix: "/srv/tftp/", RebootTime: 30, LeaseTime: time.Hour}
	if got := summary(l); got != summary(&want) {
		t.Errorf("Acquire lease\n got %s\nwant %s", got, summary(&want))
	}
	if got := strings.Join(events, ", "); got != "discover invalid IP, offer 10.0.2.9, offer 10.0.2.2, request 10.0.2.2, ack 10.0.2.2" {
		t.Errorf("events = %s", got)
	}
	bs, err := l.BootServer(context.Background(), nil)
	if err != nil || bs.Addr != mustAddr("10.0.2.4") || bs.Source != "option 66" {
		t.Errorf("BootServer = %+v, %v; want 10.0.2.4 from option 66", bs, err)
	}
	seen := lab.seen()
	if len(seen) != 2 {
		t.Fatalf("lab saw %d messages, want DISCOVER and REQUEST", len(seen))
	}
	for _, m := range seen {
		checkIdentity(t, m, uuid)
	}
	if r := seen[1]; !r.RequestedIPAddress().Equal(mustAddr("10.0.2.15").AsSlice()) {
		t.Errorf("REQUEST option 50 = %v, want 10.0.2.15", r.RequestedIPAddress())
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func summary(l *Lease) string {
	return fmt.Sprintf("addr=%v router=%v dns=%v sid=%v next=%v sname=%q file=%q 66=%q 209=%q 210=%q 211=%d lease=%v bootp=%v",
		l.Addr, l.Router, l.DNS, l.ServerID, l.NextServer, l.ServerName, l.BootFile, l.TFTPServer, l.ConfigFile,
		l.PathPrefix, l.RebootTime, l.LeaseTime, l.BOOTP)
}

func TestNakRestartsDiscovery(t *testing.T) {
	naks := 0
	lab := &labServer{
		offer: func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			return []*dhcp.DHCPv4{replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2")}
		},
		answer: func(req *dhcp.DHCPv4) *dhcp.DHCPv4 {
			if naks == 0 {
				naks++
				return replyTo(req, dhcp.MessageTypeNak, "10.0.2.2")
			}
			return replyTo(req, dhcp.MessageTypeAck, "10.0.2.2")
		},
	}
	conn := startLab(t, lab)
	var events []string
	c := &Client{Conn: conn, HWAddr: clientMAC, OfferWait: 10 * time.Millisecond,
		Progress: func(e Event) { events = append(events, e.Type.String()+e.Text) }}
	l, err := c.Acquire(guardCtx(t))
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	if l.Addr.Addr() != mustAddr("10.0.2.15") || c.Stats.Naks != 1 {
		t.Errorf("Acquire = %v, stats %+v; want 10.0.2.15 after one NAK", l.Addr, c.Stats)
	}
	if got := strings.Join(events, ","); got != "discover,offer,request,nakaddress in use,discover,offer,request,ack" {
		t.Errorf("events = %s", got)
	}
}

// TestSilentServer steps the manual clock: DISCOVERs are repeated with doubling waits until MaxRounds, and the
// whole Acquire ends with ErrNoLease.
func TestSilentServer(t *testing.T) {
	lab := &labServer{}
	conn := startLab(t, lab)
	clock := faketime.NewManualClock()
	discovers := make(chan int, 16)
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: clock, MaxRounds: 4, InitialTimeout: time.Second, MaxTimeout: 4 * time.Second,
		Progress: func(e Event) {
			if e.Type == EventDiscover {
				discovers <- e.Round
			}
		}}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(context.Background()); errc <- err }()
	var rounds []int
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		rounds = append(rounds, <-discovers)
		// The Progress callback runs before the timer is armed; wait until the lab sees the DISCOVER, which is
		// sent after arming, then step exactly the round's wait (doubling up to MaxTimeout).
		waitSeen(t, lab, i+1)
		clock.Advance(d)
	}
	err := <-errc
	if !errors.Is(err, ErrNoLease) || err.Error() != "dhcpv4: no DHCP lease after 4 rounds (11s)" {
		t.Errorf("Acquire = %v, want `dhcpv4: no DHCP lease after 4 rounds (11s)`", err)
	}
	if fmt.Sprint(rounds) != "[1 2 3 4]" || c.Stats.Timeouts != 4 {
		t.Errorf("rounds %v, stats %+v", rounds, c.Stats)
	}
	for i, m := range lab.seen() {
		if m.MessageType() != dhcp.MessageTypeDiscover || m.NumSeconds != []uint16{0, 1, 3, 7}[i] {
			t.Errorf("message %d: %s secs %d", i, m.MessageType(), m.NumSeconds)
		}
	}
}

// TestTotalBound checks that Total cuts the retries short.
func TestTotalBound(t *testing.T) {
	lab := &labServer{}
	conn := startLab(t, lab)
	clock := faketime.NewManualClock()
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: clock, Total: 2500 * time.Millisecond, MaxRounds: 100}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(context.Background()); errc <- err }()
	waitSeen(t, lab, 1)
	clock.Advance(time.Second) // round 1 ends
	waitSeen(t, lab, 2)
	clock.Advance(time.Second) // round 2 waits until min(2 s, Total)
	clock.Advance(time.Second) // past Total
	select {
	case err := <-errc:
		if !errors.Is(err, ErrNoLease) || c.Stats.Sent != 2 {
			t.Errorf("Acquire = %v after %d DISCOVERs, want ErrNoLease after 2 (1 s + 1.5 s)", err, c.Stats.Sent)
		}
		// The reason names the rounds that ran, not MaxRounds.
		if err != nil && !strings.Contains(err.Error(), "after 2 rounds") {
			t.Errorf("Acquire = %v, want it to say %q", err, "after 2 rounds")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not stop at Total")
	}
}

// waitSeen blocks until the lab has seen n messages (the pipe link delivers synchronously, so this is quick).
func waitSeen(t *testing.T, lab *labServer, n int) {
	t.Helper()
	for i := 0; i < 10000; i++ {
		if len(lab.seen()) >= n {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatalf("lab saw %d messages, want %d", len(lab.seen()), n)
}

func TestCancel(t *testing.T) {
	lab := &labServer{}
	conn := startLab(t, lab)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: faketime.NewManualClock()}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(ctx); errc <- err }()
	waitSeen(t, lab, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire after cancel = %v, want context.Canceled", err)
	}
	// The socket is the caller's: it must still work after Acquire returned.
	if _, err := conn.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
		t.Errorf("socket unusable after Acquire: %v", err)
	}
}

// guardCtx bounds an Acquire that runs on the wall clock: a client that stops making progress (a bug) fails the
// test with context.DeadlineExceeded instead of retrying for DefaultTotal.
func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRepliesNotForUs answers each REQUEST first with replies the client must drop (another transaction, another
// server, another client's chaddr), then with the real ACK, which lacks option 54: the lease takes the server
// identifier from the OFFER.
func TestRepliesNotForUs(t *testing.T) {
	otherMAC := net.HardwareAddr{0x52, 0x54, 0x00, 0x99, 0x99, 0x99}
	lab := &labServer{
		offer: func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			return []*dhcp.DHCPv4{replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2")}
		},
		answer: func(req *dhcp.DHCPv4) *dhcp.DHCPv4 { return nil },
	}
	lab.answerAll = func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
		otherXID := req.TransactionID
		otherXID[0] ^= 0xff
		wrongXID := replyTo(req, dhcp.MessageTypeAck, "10.0.2.2", dhcp.WithTransactionID(otherXID),
			dhcp.WithYourIP(net.ParseIP("10.0.2.66")))
		otherServer := replyTo(req, dhcp.MessageTypeAck, "10.0.2.9", dhcp.WithYourIP(net.ParseIP("10.0.2.77")))
		otherClient := replyTo(req, dhcp.MessageTypeAck, "10.0.2.2", dhcp.WithHwAddr(otherMAC),
			dhcp.WithYourIP(net.ParseIP("10.0.2.88")))
		ack := replyTo(req, dhcp.MessageTypeAck, "10.0.2.2")
		ack.Options.Del(dhcp.OptionServerIdentifier)
		return []*dhcp.DHCPv4{wrongXID, otherServer, otherClient, ack}
	}
	conn := startLab(t, lab)
	c := &Client{Conn: conn, HWAddr: clientMAC, OfferWait: 10 * time.Millisecond}
	l, err := c.Acquire(guardCtx(t))
	if err != nil {
		t.Fatalf("Acquire = %v (stats %+v)", err, c.Stats)
	}
	if l.Addr.Addr() != mustAddr("10.0.2.15") || l.ServerID != mustAddr("10.0.2.2") {
		t.Errorf("Acquire = addr %v server %v, want 10.0.2.15 from 10.0.2.2 (server id taken from the OFFER)", l.Addr, l.ServerID)
	}
	if c.Stats.Ignored != 3 {
		t.Errorf("stats %+v, want 3 ignored replies (xid, server, chaddr)", c.Stats)
	}
}

// TestReleaseSkipsBOOTP: a BOOTP reply is no lease, so Release sends nothing; a DHCP lease is released by unicast
// to its server with the leased address as ciaddr.
func TestReleaseSkipsBOOTP(t *testing.T) {
	lab := &labServer{}
	conn := startLab(t, lab)
	c := &Client{Conn: conn, HWAddr: clientMAC}
	bootp := &Lease{Addr: mustPrefix("10.0.2.15/24"), ServerID: mustAddr("10.0.2.2"), BOOTP: true, HWAddr: clientMAC}
	if err := c.Release(bootp); err != nil || c.Stats.Sent != 0 {
		t.Errorf("Release(BOOTP lease) = %v after %d messages, want nil and nothing sent", err, c.Stats.Sent)
	}
	lease := &Lease{Addr: mustPrefix("10.0.2.15/24"), ServerID: mustAddr("10.0.2.2"), HWAddr: clientMAC}
	if err := c.Release(lease); err != nil {
		t.Fatalf("Release = %v", err)
	}
	waitSeen(t, lab, 1)
	m := lab.seen()[0]
	if m.MessageType() != dhcp.MessageTypeRelease || !m.ClientIPAddr.Equal(net.ParseIP("10.0.2.15")) ||
		!m.ServerIdentifier().Equal(net.ParseIP("10.0.2.2")) {
		t.Errorf("lab saw %s ciaddr %v sid %v, want RELEASE of 10.0.2.15 to 10.0.2.2", m.MessageType(), m.ClientIPAddr, m.ServerIdentifier())
	}
}

// TestOfferFlood: collection stops at maxOffers, without waiting out OfferWait (the manual clock never moves).
func TestOfferFlood(t *testing.T) {
	lab := &labServer{
		offer: func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			var out []*dhcp.DHCPv4
			for range maxOffers + 4 {
				out = append(out, replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2"))
			}
			return out
		},
		answer: func(req *dhcp.DHCPv4) *dhcp.DHCPv4 { return replyTo(req, dhcp.MessageTypeAck, "10.0.2.2") },
	}
	conn := startLab(t, lab)
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: faketime.NewManualClock()}
	l, err := c.Acquire(guardCtx(t))
	if err != nil || l.Addr.Addr() != mustAddr("10.0.2.15") {
		t.Fatalf("Acquire = %v, %v (stats %+v), want 10.0.2.15 without the clock moving", l, err, c.Stats)
	}
	if c.Stats.Offers != maxOffers {
		t.Errorf("offers kept %d, want %d", c.Stats.Offers, maxOffers)
	}
}

// TestBOOTPReply: a reply to the DISCOVER without the magic cookie is a BOOTP lease, taken at once (no REQUEST).
func TestBOOTPReply(t *testing.T) {
	lab := &labServer{offerRaw: func(req *dhcp.DHCPv4) [][]byte {
		b := replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2", dhcp.WithServerIP(net.ParseIP("10.0.2.4"))).ToBytes()[:headerSize+64]
		copy(b[offCookie:], make([]byte, 64)) // a BOOTP vendor area: no cookie, no options
		copy(b[offFile:], "s390x/kernel.img\x00")
		return [][]byte{b}
	}}
	conn := startLab(t, lab)
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: faketime.NewManualClock()}
	l, err := c.Acquire(guardCtx(t))
	if err != nil {
		t.Fatalf("Acquire = %v (stats %+v)", err, c.Stats)
	}
	if !l.BOOTP || l.Addr.Addr() != mustAddr("10.0.2.15") || l.NextServer != mustAddr("10.0.2.4") || l.BootFile != "s390x/kernel.img" {
		t.Errorf("Acquire = %s, want the BOOTP lease of 10.0.2.15 with next server 10.0.2.4 and file s390x/kernel.img", summary(l))
	}
	if n := len(lab.seen()); n != 1 {
		t.Errorf("lab saw %d messages, want the DISCOVER only", n)
	}
}

// TestNakKeepsTimeout: a NAK is an answer, not a timeout, so the next DISCOVER round waits the same time (no
// backoff). Stepped on a manual clock.
func TestNakKeepsTimeout(t *testing.T) {
	var discovers atomic.Int32
	lab := &labServer{
		offer: func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			if discovers.Add(1) > 1 {
				return nil // round 2 gets no offer
			}
			// maxOffers offers end the collection at once: round 1 needs no clock step.
			var out []*dhcp.DHCPv4
			for range maxOffers {
				out = append(out, replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2"))
			}
			return out
		},
		answer: func(req *dhcp.DHCPv4) *dhcp.DHCPv4 { return replyTo(req, dhcp.MessageTypeNak, "10.0.2.2") },
	}
	conn := startLab(t, lab)
	clock := faketime.NewManualClock()
	c := &Client{Conn: conn, HWAddr: clientMAC, Clock: clock, MaxRounds: 2, InitialTimeout: time.Second}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(guardCtx(t)); errc <- err }()
	waitSeen(t, lab, 3) // DISCOVER, REQUEST (answered by a NAK), DISCOVER, all at clock time 0
	clock.Advance(999 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Acquire ended %v before round 2's 1 s wait", err)
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(time.Millisecond)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrNoLease) || c.Stats.Naks != 1 {
			t.Errorf("Acquire = %v, stats %+v; want ErrNoLease after 1 NAK", err, c.Stats)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("round 2 did not end after 1 s: the NAK doubled the wait")
	}
}

// TestOfferWaitUntilBootFile: an offer without a boot file starts the OfferWait collection; an offer with one
// ends it at once and wins. Stepped on a manual clock: the boot-file case needs no step at all, the other one
// ends exactly when OfferWait has passed.
func TestOfferWaitUntilBootFile(t *testing.T) {
	withFile := dhcp.WithOption(dhcp.OptBootFileName("s390x/kernel.img"))
	for _, tt := range []struct {
		name   string
		offers func(req *dhcp.DHCPv4) []*dhcp.DHCPv4
		step   bool   // the lease needs the clock to move by OfferWait
		server string // whose offer is requested
	}{
		{"first offer has a boot file", func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			return []*dhcp.DHCPv4{replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2", withFile)}
		}, false, "10.0.2.2"},
		{"second offer has a boot file", func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			return []*dhcp.DHCPv4{replyTo(req, dhcp.MessageTypeOffer, "10.0.2.9"),
				replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2", withFile)}
		}, false, "10.0.2.2"},
		{"boot file in the BOOTP file field", func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			return []*dhcp.DHCPv4{replyTo(req, dhcp.MessageTypeOffer, "10.0.2.2",
				func(m *dhcp.DHCPv4) { m.BootFileName = "kernel.img" })}
		}, false, "10.0.2.2"},
		{"next-server only", func(req *dhcp.DHCPv4) []*dhcp.DHCPv4 {
			return []*dhcp.DHCPv4{replyTo(req, dhcp.MessageTypeOffer, "10.0.2.9")}
		}, true, "10.0.2.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lab := &labServer{
				offer:  tt.offers,
				answer: func(req *dhcp.DHCPv4) *dhcp.DHCPv4 { return replyTo(req, dhcp.MessageTypeAck, tt.server) },
			}
			conn := startLab(t, lab)
			clock := faketime.NewManualClock()
			offered := make(chan struct{}, 4)
			c := &Client{Conn: conn, HWAddr: clientMAC, Clock: clock, OfferWait: 100 * time.Millisecond,
				Progress: func(e Event) {
					if e.Type == EventOffer {
						offered <- struct{}{}
					}
				}}
			type result struct {
				l   *Lease
				err error
			}
			done := make(chan result, 1)
			go func() { l, err := c.Acquire(guardCtx(t)); done <- result{l, err} }()
			<-offered
			if tt.step {
				select {
				case r := <-done:
					t.Fatalf("Acquire = %v, %v before OfferWait passed", r.l, r.err)
				case <-time.After(50 * time.Millisecond):
				}
				clock.Advance(99 * time.Millisecond)
				select {
				case r := <-done:
					t.Fatalf("Acquire = %v, %v 1 ms before OfferWait passed", r.l, r.err)
				case <-time.After(50 * time.Millisecond):
				}
				clock.Advance(time.Millisecond)
			}
			select {
			case r := <-done:
				if r.err != nil || r.l.ServerID != mustAddr(tt.server) {
					t.Errorf("Acquire = %v, %v (stats %+v), want the lease of %s", r.l, r.err, c.Stats, tt.server)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Acquire still collecting offers: an offer with a boot file did not end the wait")
			}
		})
	}
}
