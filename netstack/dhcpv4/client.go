package dhcpv4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	dhcp "github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Identity options, RFC 4578 and the list.
var (
	// ParameterRequestList is option 55 in DISCOVER and REQUEST.
	ParameterRequestList = []dhcp.OptionCode{
		dhcp.OptionSubnetMask,                // 1
		dhcp.OptionRouter,                    // 3
		dhcp.OptionDomainNameServer,          // 6
		dhcp.OptionHostName,                  // 12
		dhcp.OptionDomainName,                // 15
		dhcp.OptionBroadcastAddress,          // 28
		dhcp.OptionVendorSpecificInformation, // 43
		dhcp.OptionServerIdentifier,          // 54
		dhcp.OptionTFTPServerName,            // 66
		dhcp.OptionBootfileName,              // 67
		dhcp.OptionPXELinuxConfigFile,        // 209
		dhcp.OptionPXELinuxPathPrefix,        // 210
		dhcp.OptionPXELinuxRebootTime,        // 211
	}
	clientArch    = []byte{0x00, 0x1f}                         // option 93: 0x001F, IANA processor architecture for s390x
	clientNDI     = []byte{1, 3, 16}                           // option 94: type 1 (UNDI), version 3.16, RFC 4578 §2.2
	vendorClass   = []byte("PXEClient:Arch:00031:UNDI:003016") // option 60
	userClass     = []byte("netipl")                           // option 77
	maxMessageLen = []byte{0x05, 0xc0}                         // option 57: 1472 = 1500 - 20 (IP) - 8 (UDP)
)

// Defaults for Client fields left zero.
const (
	DefaultInitialTimeout = time.Second
	DefaultMaxTimeout     = 8 * time.Second
	DefaultTotal          = 60 * time.Second
	DefaultMaxRounds      = 10 // QEMU's s390-netboot gives up after 10 rounds
	DefaultOfferWait      = 300 * time.Millisecond
	DefaultRequestTries   = 3
	// maxOffers bounds the offers kept in one round: collection stops at the limit, so a flood of offers costs
	// neither memory nor the rest of OfferWait.
	maxOffers = 16
)

// EventType says what happened in an Event.
type EventType int

const (
	EventDiscover EventType = iota // DISCOVER sent (Round counts from 1)
	EventOffer                     // OFFER received
	EventRequest                   // REQUEST sent
	EventAck                       // ACK received: Addr is the lease
	EventNak                       // NAK received
	EventTimeout                   // a wait ended without an answer
	EventRelease                   // RELEASE sent
)

var eventNames = [...]string{"discover", "offer", "request", "ack", "nak", "timeout", "release"}

func (e EventType) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", int(e))
}

// Event reports progress; the loader turns EventDiscover into QEMU's DHCP countdown.
type Event struct {
	Type   EventType
	Round  int        // DISCOVER round, from 1
	Server netip.Addr // server identifier of an OFFER/ACK/NAK
	Addr   netip.Addr // offered or leased address
	Text   string     // NAK message (option 56)
}

// Stats counts client events (style B18).
type Stats struct {
	Sent     uint64 // messages sent
	Received uint64 // datagrams read
	Ignored  uint64 // datagrams that were not for us (xid, chaddr, op) or malformed
	Offers   uint64
	Naks     uint64
	Timeouts uint64
}

// Client acquires a DHCPv4 lease. Conn and HWAddr must be set.
type Client struct {
	// Conn is bound to 0.0.0.0:68 and may send broadcasts. The client does not close it.
	Conn net.PacketConn
	// HWAddr is the NIC's MAC address (chaddr).
	HWAddr net.HardwareAddr
	// UUID is the machine UUID for option 97; nil leaves the option out.
	UUID []byte
	// NoBroadcastFlag clears the BOOTP broadcast flag (then the stack must accept unicast to the offered address).
	NoBroadcastFlag bool
	// InitialTimeout, MaxTimeout: the wait per round starts at InitialTimeout and doubles up to MaxTimeout.
	InitialTimeout, MaxTimeout time.Duration
	// Total bounds the whole Acquire; MaxRounds bounds the number of DISCOVERs.
	Total     time.Duration
	MaxRounds int
	// OfferWait is how long to keep collecting offers after the first one while none carries a boot file.
	OfferWait time.Duration
	// Clock drives the timeouts; nil means the wall clock.
	Clock tcpip.Clock
	// Progress, if set, receives events from the calling goroutine.
	Progress func(Event)
	// Server is where DISCOVER and REQUEST go; the zero value means 255.255.255.255:67. Tests may point it elsewhere.
	Server netip.AddrPort

	Stats Stats
}

// ErrNoLease means no server gave a lease within the bounds.
var ErrNoLease = errors.New("no DHCP lease")

type reply struct {
	m     *dhcp.DHCPv4
	bootp bool
}

// Acquire runs DISCOVER/OFFER/REQUEST/ACK. Errors read like `dhcpv4: no DHCP lease after 10 rounds (44s)`.
func (c *Client) Acquire(ctx context.Context) (*Lease, error) {
	l, err := c.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcpv4: %w", err)
	}
	return l, nil
}

func (c *Client) defaults() (clock tcpip.Clock, initial, maxT, total time.Duration, rounds int, offerWait time.Duration, server netip.AddrPort) {
	clock = c.Clock
	if clock == nil {
		clock = tcpip.NewStdClock()
	}
	initial, maxT, total, rounds, offerWait = c.InitialTimeout, c.MaxTimeout, c.Total, c.MaxRounds, c.OfferWait
	if initial <= 0 {
		initial = DefaultInitialTimeout
	}
	if maxT <= 0 {
		maxT = DefaultMaxTimeout
	}
	if maxT < initial {
		maxT = initial
	}
	if total <= 0 {
		total = DefaultTotal
	}
	if rounds <= 0 {
		rounds = DefaultMaxRounds
	}
	if offerWait <= 0 {
		offerWait = DefaultOfferWait
	}
	server = c.Server
	if !server.IsValid() {
		server = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 67)
	}
	return
}

func (c *Client) acquire(ctx context.Context) (*Lease, error) {
	if c.Conn == nil || len(c.HWAddr) == 0 || len(c.HWAddr) > 16 {
		return nil, errors.New("client needs a socket and a hardware address of 1..16 bytes")
	}
	if c.UUID != nil && len(c.UUID) != 16 {
		return nil, fmt.Errorf("client UUID of %d bytes, want 16", len(c.UUID))
	}
	clock, initial, maxT, total, rounds, offerWait, server := c.defaults()
	xid, err := dhcp.GenerateTransactionID()
	if err != nil {
		return nil, fmt.Errorf("transaction id: %w", err)
	}
	rx := newReceiver(c.Conn, clock, xid, c.HWAddr, &c.Stats)
	defer rx.stop()

	start := clock.NowMonotonic()
	deadline := start.Add(total)
	timeout := initial
	emit := func(e Event) {
		if c.Progress != nil {
			c.Progress(e)
		}
	}
	backoff := func() {
		timeout *= 2
		if timeout > maxT {
			timeout = maxT
		}
	}
	ran := 0 // rounds started: the time budget can end the loop before rounds
	for round := 1; round <= rounds; round++ {
		now := clock.NowMonotonic()
		if !now.Before(deadline) {
			break
		}
		ran = round
		secs := uint16(now.Sub(start) / time.Second)
		disc, err := dhcp.New(c.identity(xid, dhcp.MessageTypeDiscover, secs)...)
		if err != nil {
			return nil, fmt.Errorf("build DISCOVER: %w", err)
		}
		emit(Event{Type: EventDiscover, Round: round})
		waitEnd := minTime(now.Add(timeout), deadline)
		rx.arm(waitEnd)
		if err := c.send(disc, server); err != nil {
			return nil, err
		}
		// Collect offers until the round's wait ends, OfferWait after the first offer, or at once when an
		// offer carries a boot file (chooseOffer would pick it over any later one).
		var offers []reply
		for {
			r, err := rx.next(ctx)
			if err != nil {
				return nil, err
			}
			if r == nil { // timer
				break
			}
			if r.bootp {
				l, err := newLease(r.m, true)
				if err != nil {
					c.Stats.Ignored++
					continue
				}
				l.HWAddr = c.HWAddr
				emit(Event{Type: EventAck, Round: round, Server: l.NextServer, Addr: l.Addr.Addr()})
				return l, nil
			}
			if r.m.MessageType() != dhcp.MessageTypeOffer || !ip4(r.m.YourIPAddr).IsValid() {
				c.Stats.Ignored++
				continue
			}
			c.Stats.Offers++
			emit(Event{Type: EventOffer, Round: round, Server: ip4(r.m.ServerIdentifier()), Addr: ip4(r.m.YourIPAddr)})
			offers = append(offers, *r)
			if len(offers) == maxOffers || hasBootFile(r.m) {
				break
			}
			if len(offers) == 1 {
				rx.arm(minTime(clock.NowMonotonic().Add(offerWait), waitEnd))
			}
		}
		if len(offers) == 0 {
			c.Stats.Timeouts++
			emit(Event{Type: EventTimeout, Round: round})
			backoff()
			continue
		}
		offer := chooseOffer(offers)
		lease, nak, err := c.request(ctx, rx, clock, offer, xid, server, start, deadline, initial, maxT, round, emit)
		if err != nil {
			return nil, err
		}
		if lease != nil {
			return lease, nil
		}
		if !nak {
			backoff()
		}
	}
	return nil, fmt.Errorf("%w after %d rounds (%s)", ErrNoLease, ran,
		clock.NowMonotonic().Sub(start).Round(time.Millisecond))
}

// request sends REQUEST for offer and waits for ACK or NAK, retransmitting with backoff.
func (c *Client) request(ctx context.Context, rx *receiver, clock tcpip.Clock, offer reply, xid dhcp.TransactionID,
	server netip.AddrPort, start, deadline tcpip.MonotonicTime, initial, maxT time.Duration, round int,
	emit func(Event)) (lease *Lease, nak bool, err error) {
	sid := offer.m.ServerIdentifier()
	timeout := initial
	for try := 0; try < DefaultRequestTries; try++ {
		now := clock.NowMonotonic()
		if !now.Before(deadline) {
			return nil, false, nil
		}
		mods := c.identity(xid, dhcp.MessageTypeRequest, uint16(now.Sub(start)/time.Second))
		mods = append(mods, dhcp.WithOption(dhcp.OptRequestedIPAddress(offer.m.YourIPAddr)))
		if sid != nil {
			mods = append(mods, dhcp.WithOption(dhcp.OptServerIdentifier(sid)))
		}
		req, err := dhcp.New(mods...)
		if err != nil {
			return nil, false, fmt.Errorf("build REQUEST: %w", err)
		}
		emit(Event{Type: EventRequest, Round: round, Server: ip4(sid), Addr: ip4(offer.m.YourIPAddr)})
		rx.arm(minTime(now.Add(timeout), deadline))
		if err := c.send(req, server); err != nil {
			return nil, false, err
		}
		for {
			r, err := rx.next(ctx)
			if err != nil {
				return nil, false, err
			}
			if r == nil {
				break
			}
			if r.bootp {
				c.Stats.Ignored++
				continue
			}
			// Answers from other servers than the one we chose are not for this REQUEST.
			if rsid := r.m.ServerIdentifier(); sid != nil && rsid != nil && !rsid.Equal(sid) {
				c.Stats.Ignored++
				continue
			}
			switch r.m.MessageType() {
			case dhcp.MessageTypeAck:
				l, err := newLease(r.m, false)
				if err != nil {
					c.Stats.Ignored++
					continue
				}
				l.HWAddr = c.HWAddr
				if !l.ServerID.IsValid() {
					l.ServerID = ip4(sid)
				}
				emit(Event{Type: EventAck, Round: round, Server: l.ServerID, Addr: l.Addr.Addr()})
				return l, false, nil
			case dhcp.MessageTypeNak:
				c.Stats.Naks++
				emit(Event{Type: EventNak, Round: round, Server: ip4(sid), Text: cstr(r.m.Options.Get(dhcp.OptionMessage))})
				return nil, true, nil
			default:
				c.Stats.Ignored++ // e.g. a late OFFER
			}
		}
		c.Stats.Timeouts++
		emit(Event{Type: EventTimeout, Round: round})
		timeout *= 2
		if timeout > maxT {
			timeout = maxT
		}
	}
	return nil, false, nil
}

// chooseOffer prefers the first offer that carries a boot file, else the first offer.
func chooseOffer(offers []reply) reply {
	for _, o := range offers {
		if hasBootFile(o.m) {
			return o
		}
	}
	return offers[0]
}

// hasBootFile reports whether m names a boot file (option 67 or the BOOTP file field). siaddr alone does not
// count: plain DHCP servers often fill it with their own address while a second server offers the boot file.
func hasBootFile(m *dhcp.DHCPv4) bool {
	return m.BootFileName != "" || len(m.Options.Get(dhcp.OptionBootfileName)) > 0
}

// identity returns the modifiers shared by DISCOVER and REQUEST.
func (c *Client) identity(xid dhcp.TransactionID, mt dhcp.MessageType, secs uint16) []dhcp.Modifier {
	mods := []dhcp.Modifier{
		dhcp.WithTransactionID(xid),
		dhcp.WithHwAddr(c.HWAddr),
		dhcp.WithMessageType(mt),
		dhcp.WithRequestedOptions(ParameterRequestList...),
		dhcp.WithGeneric(dhcp.OptionMaximumDHCPMessageSize, maxMessageLen),
		dhcp.WithGeneric(dhcp.OptionClientSystemArchitectureType, clientArch),
		dhcp.WithGeneric(dhcp.OptionClientNetworkInterfaceIdentifier, clientNDI),
		dhcp.WithGeneric(dhcp.OptionClassIdentifier, vendorClass),
		dhcp.WithGeneric(dhcp.OptionUserClassInformation, userClass),
		func(d *dhcp.DHCPv4) { d.NumSeconds = secs },
	}
	if !c.NoBroadcastFlag {
		mods = append(mods, dhcp.WithBroadcast(true))
	}
	if c.UUID != nil {
		mods = append(mods, dhcp.WithGeneric(dhcp.OptionClientMachineIdentifier, append([]byte{0}, c.UUID...)))
	}
	return mods
}

func (c *Client) send(m *dhcp.DHCPv4, to netip.AddrPort) error {
	c.Stats.Sent++
	if _, err := c.Conn.WriteTo(m.ToBytes(), net.UDPAddrFromAddrPort(to)); err != nil {
		return fmt.Errorf("send %s to %s: %w", m.MessageType(), to, err)
	}
	return nil
}

// Release sends DHCPRELEASE for l to its server (RFC 2131 §4.4.6). It does not wait for an answer.
func (c *Client) Release(l *Lease) error {
	if l == nil || l.BOOTP || !l.ServerID.IsValid() {
		return nil // nothing to release: BOOTP has no leases, and RELEASE needs a server identifier
	}
	xid, err := dhcp.GenerateTransactionID()
	if err != nil {
		return fmt.Errorf("dhcpv4: release: %w", err)
	}
	m, err := dhcp.New(
		dhcp.WithTransactionID(xid),
		dhcp.WithHwAddr(l.HWAddr),
		dhcp.WithMessageType(dhcp.MessageTypeRelease),
		dhcp.WithClientIP(l.Addr.Addr().AsSlice()),
		dhcp.WithOption(dhcp.OptServerIdentifier(l.ServerID.AsSlice())),
	)
	if err != nil {
		return fmt.Errorf("dhcpv4: build RELEASE: %w", err)
	}
	if c.Progress != nil {
		c.Progress(Event{Type: EventRelease, Server: l.ServerID, Addr: l.Addr.Addr()})
	}
	if err := c.send(m, netip.AddrPortFrom(l.ServerID, 67)); err != nil {
		return fmt.Errorf("dhcpv4: release %s: %w", l.Addr.Addr(), err)
	}
	return nil
}

func minTime(a, b tcpip.MonotonicTime) tcpip.MonotonicTime {
	if a.Before(b) {
		return a
	}
	return b
}
