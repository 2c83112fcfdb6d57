// Package dhcpv6 is netipl's DHCPv6 client for IPv6 network boot: it asks for the boot-file URL (option 59), its
// parameters (60), DNS servers (23) and the domain search list (24), and, in stateful mode, an address (IA_NA).
// Messages are built and parsed with github.com/insomniacslk/dhcp/dhcpv6. It is used when there is no IPv4 lease.
//
// Specs: RFC 8415 (DHCPv6), RFC 5970 (network boot options 59-62), RFC 3646 (DNS options), RFC 4578 §2.2 (NII).
//
// SLAAC itself (router solicitation, prefix information, EUI-64 address) is done by the gVisor stack's NDP; this
// package only needs a socket bound to [::]:546 on the NIC (with a link-local address) that can send to
// [ff02::1:2]:547. The router advertisement's M flag selects Stateful (Solicit/Advertise/Request/Reply with IA_NA),
// the O flag or no flag the stateless Information-Request that QEMU's s390-netboot sends.
//
// Every request carries: Client Identifier = DUID-LL (Ethernet, MAC); Elapsed Time; Option Request = [23 24 59 60];
// Client Architecture (61) = 0x001F; NII (62) = UNDI 3.16; Vendor Class (16) = enterprise 343 (Intel, as PXE
// clients use) "PXEClient:Arch:00031:UNDI:003016"; User Class (15) = "netipl".
//
// Replies must carry our transaction ID and Client Identifier. Among Advertises, the highest preference wins, then
// one carrying a boot-file URL, then the first; preference 255 is taken at once (RFC 8415 §18.2.1), and collection
// also ends at 16 Advertises. A Reply whose IA_NA status is not Success restarts from Solicit; in stateless mode a
// Reply with an error status is refused and the client keeps listening for another server. The final error names the
// last refusal. Timeouts double from InitialTimeout up to MaxTimeout; the whole exchange is bounded by Total and
// MaxRounds (RFC 8415's MRC/MRD, with small boot-friendly values).
package dhcpv6

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	dhcp "github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Identity values.
var (
	requestedOptions = []dhcp.OptionCode{
		dhcp.OptionDNSRecursiveNameServer, // 23
		dhcp.OptionDomainSearchList,       // 24
		dhcp.OptionBootfileURL,            // 59
		dhcp.OptionBootfileParam,          // 60
	}
	archS390x       = iana.Arch(0x001f) // RFC 5970 §3.3 with the IANA processor architecture type for s390x
	vendorClassData = []byte("PXEClient:Arch:00031:UNDI:003016")
	userClass       = []byte("netipl")
)

const enterpriseIntel = 343 // IANA enterprise number used by PXE clients in the vendor class

// Defaults for Client fields left zero.
const (
	DefaultInitialTimeout = time.Second
	DefaultMaxTimeout     = 8 * time.Second
	DefaultTotal          = 30 * time.Second
	DefaultMaxRounds      = 10
	DefaultAdvertiseWait  = 300 * time.Millisecond
	requestTries          = 3
	// maxAdvertises bounds the Advertises kept in one round: collection stops at the limit, so a flood costs
	// neither memory nor the rest of AdvertiseWait.
	maxAdvertises = 16
)

// EventType says what happened in an Event.
type EventType int

const (
	EventSolicit     EventType = iota // SOLICIT sent
	EventAdvertise                    // ADVERTISE received
	EventRequest                      // REQUEST sent
	EventInfoRequest                  // INFORMATION-REQUEST sent
	EventReply                        // REPLY accepted
	EventTimeout                      // a wait ended without an answer
	EventRejected                     // REPLY with an error status
)

var eventNames = [...]string{"solicit", "advertise", "request", "information-request", "reply", "timeout", "rejected"}

func (e EventType) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", int(e))
}

// Event reports progress.
type Event struct {
	Type  EventType
	Round int
	Text  string // status message of a rejected REPLY
}

// Stats counts client events.
type Stats struct {
	Sent, Received, Ignored, Advertises, Timeouts, Rejected uint64
}

// Lease is what the client learned. Addr is invalid in stateless mode (the address comes from SLAAC).
type Lease struct {
	Addr              netip.Addr
	PreferredLifetime time.Duration
	ValidLifetime     time.Duration
	DNS               []netip.Addr
	DomainSearch      []string
	BootURL           string   // option 59
	BootParams        []string // option 60
	ServerID          []byte   // server DUID, wire form
}

// Client runs the DHCPv6 exchange. Conn and HWAddr must be set.
type Client struct {
	// Conn is bound to [::]:546 on the boot NIC. The client does not close it.
	Conn net.PacketConn
	// HWAddr is the NIC's MAC (DUID-LL, IAID).
	HWAddr net.HardwareAddr
	// Stateful asks for an address (IA_NA) with Solicit/Request; otherwise Information-Request.
	Stateful bool
	// Server is where messages go; the zero value means [ff02::1:2]:547.
	Server netip.AddrPort
	// Zone is the interface name for the multicast destination on host sockets ("" over gVisor).
	Zone string

	InitialTimeout, MaxTimeout, Total time.Duration
	MaxRounds                         int
	AdvertiseWait                     time.Duration
	Clock                             tcpip.Clock
	Progress                          func(Event)

	Stats Stats
}

// ErrNoReply means no server answered within the bounds.
var ErrNoReply = errors.New("no DHCPv6 reply")

// Acquire runs the exchange. Errors read like `dhcpv6: no DHCPv6 reply after 10 rounds (30s)`.
func (c *Client) Acquire(ctx context.Context) (*Lease, error) {
	l, err := c.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcpv6: %w", err)
	}
	return l, nil
}

func (c *Client) duid() dhcp.DUID {
	return &dhcp.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: c.HWAddr}
}

func (c *Client) iaid() [4]byte {
	var id [4]byte
	copy(id[:], c.HWAddr[len(c.HWAddr)-4:])
	return id
}

// newMessage builds a client message with the identity options.
func (c *Client) newMessage(t dhcp.MessageType, xid dhcp.TransactionID, elapsed time.Duration) *dhcp.Message {
	m := &dhcp.Message{MessageType: t, TransactionID: xid}
	m.AddOption(dhcp.OptClientID(c.duid()))
	m.AddOption(dhcp.OptElapsedTime(elapsed))
	m.AddOption(dhcp.OptRequestedOption(requestedOptions...))
	m.AddOption(dhcp.OptClientArchType(archS390x))
	m.AddOption(&dhcp.OptNetworkInterfaceID{Typ: dhcp.NII_PXE_GEN_I, Major: 3, Minor: 16})
	m.AddOption(&dhcp.OptVendorClass{EnterpriseNumber: enterpriseIntel, Data: [][]byte{vendorClassData}})
	m.AddOption(&dhcp.OptUserClass{UserClasses: [][]byte{userClass}})
	return m
}

func (c *Client) acquire(ctx context.Context) (*Lease, error) {
	if c.Conn == nil || len(c.HWAddr) < 4 {
		return nil, errors.New("client needs a socket and a hardware address of at least 4 bytes")
	}
	clock := c.Clock
	if clock == nil {
		clock = tcpip.NewStdClock()
	}
	initial, maxT, total, rounds, advWait := c.InitialTimeout, c.MaxTimeout, c.Total, c.MaxRounds, c.AdvertiseWait
	if initial <= 0 {
		initial = DefaultInitialTimeout
	}
	if maxT < initial {
		maxT = max(DefaultMaxTimeout, initial)
	}
	if total <= 0 {
		total = DefaultTotal
	}
	if rounds <= 0 {
		rounds = DefaultMaxRounds
	}
	if advWait <= 0 {
		advWait = DefaultAdvertiseWait
	}
	server := c.Server
	if !server.IsValid() {
		server = netip.AddrPortFrom(netip.MustParseAddr("ff02::1:2").WithZone(c.Zone), dhcp.DefaultServerPort)
	}
	xid, err := dhcp.GenerateTransactionID()
	if err != nil {
		return nil, fmt.Errorf("transaction id: %w", err)
	}
	rx := newReceiver(c.Conn, clock, xid, c.duid(), &c.Stats)
	defer rx.stop()
	start := clock.NowMonotonic()
	deadline := start.Add(total)
	timeout := initial
	lastRejection := "" // why the last Reply was refused, for the final error
	emit := func(e Event) {
		if e.Type == EventRejected {
			lastRejection = e.Text
		}
		if c.Progress != nil {
			c.Progress(e)
		}
	}
	backoff := func() { timeout = min(2*timeout, maxT) }
	elapsed := func() time.Duration { return clock.NowMonotonic().Sub(start) }

	for round := 1; round <= rounds; round++ {
		now := clock.NowMonotonic()
		if !now.Before(deadline) {
			break
		}
		waitEnd := minTime(now.Add(timeout), deadline)
		if !c.Stateful {
			emit(Event{Type: EventInfoRequest, Round: round})
			rx.arm(waitEnd)
			if err := c.send(c.newMessage(dhcp.MessageTypeInformationRequest, xid, elapsed()), server); err != nil {
				return nil, err
			}
			for {
				m, err := rx.nextOf(ctx, dhcp.MessageTypeReply)
				if err != nil {
					return nil, err
				}
				if m == nil {
					break
				}
				l, err := newLease(m, false)
				if err != nil {
					// One server's error status does not end the exchange: another may still answer.
					c.Stats.Rejected++
					emit(Event{Type: EventRejected, Round: round, Text: err.Error()})
					continue
				}
				emit(Event{Type: EventReply, Round: round})
				return l, nil
			}
			c.Stats.Timeouts++
			emit(Event{Type: EventTimeout, Round: round})
			backoff()
			continue
		}

		sol := c.newMessage(dhcp.MessageTypeSolicit, xid, elapsed())
		sol.AddOption(&dhcp.OptIANA{IaId: c.iaid()})
		emit(Event{Type: EventSolicit, Round: round})
		rx.arm(waitEnd)
		if err := c.send(sol, server); err != nil {
			return nil, err
		}
		var advs []*dhcp.Message
		for {
			m, err := rx.nextOf(ctx, dhcp.MessageTypeAdvertise)
			if err != nil {
				return nil, err
			}
			if m == nil {
				break
			}
			if m.Options.ServerID() == nil || m.Options.OneIANA() == nil {
				c.Stats.Ignored++
				continue
			}
			if st := m.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
				c.Stats.Ignored++ // e.g. NoAddrsAvail: RFC 8415 §18.2.9 says ignore such an Advertise
				continue
			}
			c.Stats.Advertises++
			emit(Event{Type: EventAdvertise, Round: round})
			advs = append(advs, m)
			if m.Options.Preference() == 255 || len(advs) == maxAdvertises {
				break
			}
			if len(advs) == 1 {
				rx.arm(minTime(clock.NowMonotonic().Add(advWait), waitEnd))
			}
		}
		if len(advs) == 0 {
			c.Stats.Timeouts++
			emit(Event{Type: EventTimeout, Round: round})
			backoff()
			continue
		}
		adv := chooseAdvertise(advs)
		l, err := c.request(ctx, rx, clock, adv, xid, server, deadline, initial, maxT, round, elapsed, emit)
		if err != nil || l != nil {
			return l, err
		}
	}
	err = fmt.Errorf("%w after %d rounds (%s)", ErrNoReply, rounds, elapsed().Round(time.Millisecond))
	if lastRejection != "" {
		err = fmt.Errorf("%w; last reply refused: %s", err, lastRejection)
	}
	return nil, err
}

func (c *Client) request(ctx context.Context, rx *receiver, clock tcpip.Clock, adv *dhcp.Message, xid dhcp.TransactionID,
	server netip.AddrPort, deadline tcpip.MonotonicTime, initial, maxT time.Duration, round int,
	elapsed func() time.Duration, emit func(Event)) (*Lease, error) {
	timeout := initial
	for try := 0; try < requestTries; try++ {
		now := clock.NowMonotonic()
		if !now.Before(deadline) {
			return nil, nil
		}
		req := c.newMessage(dhcp.MessageTypeRequest, xid, elapsed())
		req.AddOption(dhcp.OptServerID(adv.Options.ServerID()))
		req.AddOption(adv.Options.OneIANA())
		emit(Event{Type: EventRequest, Round: round})
		rx.arm(minTime(now.Add(timeout), deadline))
		if err := c.send(req, server); err != nil {
			return nil, err
		}
		for {
			m, err := rx.nextOf(ctx, dhcp.MessageTypeReply)
			if err != nil {
				return nil, err
			}
			if m == nil {
				break
			}
			if sid := m.Options.ServerID(); sid == nil || !sid.Equal(adv.Options.ServerID()) {
				c.Stats.Ignored++
				continue
			}
			l, err := newLease(m, true)
			if err != nil {
				c.Stats.Rejected++
				emit(Event{Type: EventRejected, Round: round, Text: err.Error()})
				return nil, nil // back to Solicit
			}
			emit(Event{Type: EventReply, Round: round})
			return l, nil
		}
		c.Stats.Timeouts++
		emit(Event{Type: EventTimeout, Round: round})
		timeout = min(2*timeout, maxT)
	}
	return nil, nil
}

// chooseAdvertise picks by preference, then by the presence of a boot-file URL, then arrival order.
func chooseAdvertise(advs []*dhcp.Message) *dhcp.Message {
	best := advs[0]
	score := func(m *dhcp.Message) int {
		s := int(m.Options.Preference()) * 2
		if m.Options.BootFileURL() != "" {
			s++
		}
		return s
	}
	for _, a := range advs[1:] {
		if score(a) > score(best) {
			best = a
		}
	}
	return best
}

// newLease extracts the lease; stateful replies must carry an IA_NA address with status Success.
func newLease(m *dhcp.Message, stateful bool) (*Lease, error) {
	if st := m.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("server status %s: %q", st.StatusCode, st.StatusMessage)
	}
	l := &Lease{BootURL: m.Options.BootFileURL(), BootParams: m.Options.BootFileParam()}
	if sid := m.Options.ServerID(); sid != nil {
		l.ServerID = sid.ToBytes()
	}
	for _, ip := range m.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip); ok {
			l.DNS = append(l.DNS, a.Unmap())
		}
	}
	if dsl := m.Options.DomainSearchList(); dsl != nil {
		l.DomainSearch = dsl.Labels
	}
	if stateful {
		ia := m.Options.OneIANA()
		if ia == nil {
			return nil, errors.New("reply without IA_NA")
		}
		if st := ia.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
			return nil, fmt.Errorf("IA_NA status %s: %q", st.StatusCode, st.StatusMessage)
		}
		addr := ia.Options.OneAddress()
		if addr == nil {
			return nil, errors.New("IA_NA without an address")
		}
		a, ok := netip.AddrFromSlice(addr.IPv6Addr)
		if !ok || !a.Is6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return nil, fmt.Errorf("IA_NA address %v unusable", addr.IPv6Addr)
		}
		if addr.ValidLifetime == 0 {
			return nil, fmt.Errorf("IA_NA address %v has a zero valid lifetime", a)
		}
		l.Addr, l.PreferredLifetime, l.ValidLifetime = a, addr.PreferredLifetime, addr.ValidLifetime
	}
	return l, nil
}

func (c *Client) send(m *dhcp.Message, to netip.AddrPort) error {
	c.Stats.Sent++
	ua := &net.UDPAddr{IP: to.Addr().AsSlice(), Port: int(to.Port()), Zone: to.Addr().Zone()}
	if _, err := c.Conn.WriteTo(m.ToBytes(), ua); err != nil {
		return fmt.Errorf("send %s to %s: %w", m.MessageType, to, err)
	}
	return nil
}

func minTime(a, b tcpip.MonotonicTime) tcpip.MonotonicTime {
	if a.Before(b) {
		return a
	}
	return b
}

// sameDUID compares a reply's client identifier with ours.
func sameDUID(a, b dhcp.DUID) bool {
	return a != nil && b != nil && bytes.Equal(a.ToBytes(), b.ToBytes())
}
