package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// DHCPConfig is what the lab's DHCPv4 server hands out. Options 1 (/24), 3 and 6 (the lab),
// 51 (1 h) and 54 are always sent; the rest only when set.
type DHCPConfig struct {
	Off        bool       // no DHCP server at all
	Bootfile   string     // option 67 and the BOOTP file field
	ServerName string     // option 66 (a name resolved by the lab's DNS, or a dotted quad); "" = not sent
	SIAddr     netip.Addr // the BOOTP siaddr (next server); invalid = the lab (10.0.2.2)
	Domain     string     // option 15
	ConfigFile string     // option 209 (pxelinux configfile)
	PathPrefix string     // option 210 (pxelinux pathprefix)
	RebootTime int        // option 211 in seconds; < 0 = not sent

	Delay  time.Duration         // wait before each OFFER and ACK
	NAKs   int                   // NAK this many REQUESTs before ACKing
	Leases map[string]netip.Addr // fixed addresses by MAC ("52:54:00:12:34:56"); others get 10.0.2.15, .16, …

	// Second, when non-nil, runs a second server (10.0.2.3) that offers 200 ms before the primary,
	// with its own bootfile; both name the lab (10.0.2.2) as TFTP server (siaddr).
	Second *SecondDHCP
}

// SecondDHCP is the optional competing server.
type SecondDHCP struct {
	Bootfile string
}

// secondLead is how much earlier than the primary the second server offers.
const secondLead = 200 * time.Millisecond

// DHCP option codes the lab sets (RFC 2132, RFC 5071).
const (
	optPxeConfigFile = 209
	optPxePathPrefix = 210
	optPxeRebootTime = 211
)

type dhcpServer struct {
	l      *Lab
	cfg    DHCPConfig
	second net.PacketConn

	mu     sync.Mutex
	leases map[string]netip.Addr
	next   netip.Addr
	naks   int
}

func newDHCPServer(l *Lab, cfg DHCPConfig) *dhcpServer {
	d := &dhcpServer{l: l, cfg: cfg, leases: map[string]netip.Addr{}, next: FirstLease}
	for mac, a := range cfg.Leases {
		d.leases[strings.ToLower(mac)] = a
	}
	return d
}

func (l *Lab) startDHCP() error {
	d := newDHCPServer(l, l.cfg.DHCP)
	conn, err := l.udpConn(netip.Addr{}, 67)
	if err != nil {
		return err
	}
	if d.cfg.Second != nil {
		// Bound to its own address so its replies carry 10.0.2.3 as source; it never receives
		// (broadcasts arrive on the wildcard socket above).
		if d.second, err = l.udpConn(SecondAddr, 67); err != nil {
			return err
		}
	}
	srv, err := server4.NewServer("", nil, d.handle, server4.WithConn(conn))
	if err != nil {
		return fmt.Errorf("lab: dhcp server: %w", err)
	}
	go srv.Serve()
	return nil
}

// lease returns the address of mac, allocating the next free one.
func (d *dhcpServer) lease(mac string) netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.leases[mac]; ok {
		return a
	}
	used := map[netip.Addr]bool{}
	for _, a := range d.leases {
		used[a] = true
	}
	for used[d.next] {
		d.next = d.next.Next()
	}
	a := d.next
	d.next = d.next.Next()
	d.leases[mac] = a
	return a
}

func (d *dhcpServer) handle(conn net.PacketConn, _ net.Addr, m *dhcpv4.DHCPv4) {
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	mac := m.ClientHWAddr.String()
	mt := m.MessageType()
	d.l.Logf("dhcp: %s from %s xid %s params %v%s", mt, mac, m.TransactionID, paramList(m), archSuffix(m))
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		d.sleep()
		if d.second != nil {
			d.reply(d.second, m, dhcpv4.MessageTypeOffer, SecondAddr, d.cfg.Second.Bootfile)
			time.Sleep(secondLead) // the second server wins the race
		}
		d.reply(conn, m, dhcpv4.MessageTypeOffer, LabAddr, d.cfg.Bootfile)
	case dhcpv4.MessageTypeRequest:
		sid := m.ServerIdentifier()
		if d.second != nil && sid != nil && sid.Equal(net.IP(SecondAddr.AsSlice())) {
			d.reply(d.second, m, dhcpv4.MessageTypeAck, SecondAddr, d.cfg.Second.Bootfile)
			return
		}
		if sid != nil && !sid.Equal(net.IP(LabAddr.AsSlice())) {
			d.l.Logf("dhcp: REQUEST for server %s ignored", sid)
			return
		}
		d.mu.Lock()
		nak := d.naks < d.cfg.NAKs
		if nak {
			d.naks++
		}
		d.mu.Unlock()
		d.sleep()
		if nak {
			d.reply(conn, m, dhcpv4.MessageTypeNak, LabAddr, "")
			return
		}
		d.reply(conn, m, dhcpv4.MessageTypeAck, LabAddr, d.cfg.Bootfile)
	}
}

func (d *dhcpServer) siaddr() netip.Addr {
	if d.cfg.SIAddr.IsValid() {
		return d.cfg.SIAddr
	}
	return LabAddr
}

func (d *dhcpServer) sleep() {
	if d.cfg.Delay > 0 {
		time.Sleep(d.cfg.Delay)
	}
}

func (d *dhcpServer) reply(conn net.PacketConn, req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, server netip.Addr, bootfile string) {
	sip := net.IP(server.AsSlice())
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(mt), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sip))}
	if mt != dhcpv4.MessageTypeNak {
		yi := net.IP(d.lease(req.ClientHWAddr.String()).AsSlice())
		mods = append(mods,
			dhcpv4.WithYourIP(yi),
			dhcpv4.WithServerIP(net.IP(d.siaddr().AsSlice())), // both servers point at the lab's TFTP server
			dhcpv4.WithNetmask(net.CIDRMask(labPrefix, 32)),
			dhcpv4.WithRouter(net.IP(LabAddr.AsSlice())),
			dhcpv4.WithDNS(net.IP(LabAddr.AsSlice())),
			dhcpv4.WithLeaseTime(3600),
		)
		if bootfile != "" {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptBootFileName(bootfile)))
		}
		if c := d.cfg; server == LabAddr {
			if c.ServerName != "" {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptTFTPServerName(c.ServerName)))
			}
			if c.Domain != "" {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainName(c.Domain)))
			}
			if c.ConfigFile != "" {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(optPxeConfigFile), []byte(c.ConfigFile))))
			}
			if c.PathPrefix != "" {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(optPxePathPrefix), []byte(c.PathPrefix))))
			}
			if c.RebootTime >= 0 {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(optPxeRebootTime),
					binary.BigEndian.AppendUint32(nil, uint32(c.RebootTime)))))
			}
		}
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		d.l.Logf("dhcp: build %s: %v", mt, err)
		return
	}
	if bootfile != "" && len(bootfile) < 128 {
		resp.BootFileName = bootfile
	}
	// Logged before sending, so the log already holds the reply when the client sees it.
	d.l.Logf("dhcp: %s to %s from %s yiaddr %s bootfile %q", mt, req.ClientHWAddr, server, resp.YourIPAddr, bootfile)
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	if _, err := conn.WriteTo(resp.ToBytes(), dst); err != nil {
		d.l.Logf("dhcp: send %s: %v", mt, err)
	}
}

func paramList(m *dhcpv4.DHCPv4) []int {
	var out []int
	for _, c := range m.ParameterRequestList() {
		out = append(out, int(c.Code()))
	}
	return out
}

func archSuffix(m *dhcpv4.DHCPv4) string {
	if v := m.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(v) >= 2 {
		return fmt.Sprintf(" arch 0x%04x", binary.BigEndian.Uint16(v))
	}
	return ""
}
