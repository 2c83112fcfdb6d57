package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The lab's IPv6 side (only when Config.IPv6 is set): a router on fec0::/64 (slirp's site-local
// prefix) that answers Router Solicitations with an RA (prefix for SLAAC, O flag), and a stateless
// DHCPv6 server that answers Information-Requests with a boot-file URL (option 59).
var (
	LabAddr6   = netip.MustParseAddr("fec0::2")
	labPrefix6 = netip.MustParsePrefix("fec0::/64")
)

// IPv6Config enables the IPv6 side.
type IPv6Config struct {
	BootURL string // DHCPv6 option 59, e.g. tftp://[fec0::2]/boot.cfg; "" = not sent
}

// eui64 returns prefix::<modified EUI-64 of mac>.
func eui64(prefix netip.Addr, mac net.HardwareAddr) netip.Addr {
	b := prefix.As16()
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}

func tcpipAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

// setupIPv6 adds fec0::2/64 and the link-local address to the NIC, routes fec0::/64 and
// fe80::/64, joins the DHCPv6 servers' group and starts the DHCPv6 server.
func (l *Lab) setupIPv6() error {
	linkLocal := eui64(netip.MustParseAddr("fe80::"), LabMAC)
	for _, a := range []netip.Addr{LabAddr6, linkLocal} {
		pa := tcpip.ProtocolAddress{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpipAddr(a), PrefixLen: 64}}
		if err := l.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("lab: add address %s: %s", a, err)
		}
	}
	routes := l.stack.GetRouteTable()
	for _, p := range []string{"fec0::/64", "fe80::/64"} {
		pfx := netip.MustParsePrefix(p)
		sn, err := tcpip.NewSubnet(tcpipAddr(pfx.Addr()), tcpip.MaskFromBytes(net.CIDRMask(64, 128)))
		if err != nil {
			return fmt.Errorf("lab: subnet %s: %v", p, err)
		}
		routes = append(routes, tcpip.Route{Destination: sn, NIC: nicID})
	}
	l.stack.SetRouteTable(routes)
	if err := l.stack.JoinGroup(ipv6.ProtocolNumber, nicID, tcpipAddr(netip.MustParseAddr("ff02::1:2"))); err != nil {
		return fmt.Errorf("lab: join ff02::1:2: %s", err)
	}
	conn, err := l.udpConn(netip.IPv6Unspecified(), dhcpv6.DefaultServerPort)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			l.answerDHCPv6(conn, peer, buf[:n])
		}
	}()
	return nil
}

func (l *Lab) answerDHCPv6(conn net.PacketConn, peer net.Addr, p []byte) {
	d, err := dhcpv6.FromBytes(p)
	if err != nil {
		l.Logf("dhcp6: malformed message from %v: %v", peer, err)
		return
	}
	msg, ok := d.(*dhcpv6.Message)
	if !ok {
		return
	}
	l.Logf("dhcp6: %s from %v", msg.MessageType, peer)
	switch msg.MessageType {
	case dhcpv6.MessageTypeInformationRequest, dhcpv6.MessageTypeSolicit:
	default:
		return
	}
	mods := []dhcpv6.Modifier{dhcpv6.WithServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: LabMAC})}
	if u := l.cfg.IPv6.BootURL; u != "" {
		mods = append(mods, dhcpv6.WithOption(dhcpv6.OptBootFileURL(u)))
	}
	reply, err := dhcpv6.NewReplyFromMessage(msg, mods...)
	if err != nil {
		l.Logf("dhcp6: build reply: %v", err)
		return
	}
	l.Logf("dhcp6: REPLY to %v boot-url %q", peer, l.cfg.IPv6.BootURL)
	if _, err := conn.WriteTo(reply.ToBytes(), peer); err != nil {
		l.Logf("dhcp6: send reply: %v", err)
	}
}

// routerAdvert builds the Ethernet frame of an RA for fec0::/64 (on-link, autonomous) with the
// O flag, sent from the lab's link-local address to dst (the soliciting host's MAC, all-nodes).
func routerAdvert(dst net.HardwareAddr) []byte {
	src := eui64(netip.MustParseAddr("fe80::"), LabMAC)
	all := netip.MustParseAddr("ff02::1")
	icmp := make([]byte, 16+8+32)
	icmp[0] = byte(header.ICMPv6RouterAdvert)
	icmp[4] = 64                               // cur hop limit
	icmp[5] = 0x40                             // O: other configuration by DHCPv6
	binary.BigEndian.PutUint16(icmp[6:], 1800) // router lifetime
	opt := icmp[16:]
	opt[0], opt[1] = 1, 1 // source link-layer address
	copy(opt[2:8], LabMAC)
	pi := opt[8:]
	pi[0], pi[1], pi[2], pi[3] = 3, 4, 64, 0xc0 // prefix information, L+A
	binary.BigEndian.PutUint32(pi[4:], 86400)
	binary.BigEndian.PutUint32(pi[8:], 14400)
	p := labPrefix6.Addr().As16()
	copy(pi[16:], p[:])
	cs := header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: header.ICMPv6(icmp), Src: tcpipAddr(src), Dst: tcpipAddr(all)})
	binary.BigEndian.PutUint16(icmp[2:], cs)

	f := make([]byte, 14+40)
	copy(f[0:6], dst)
	copy(f[6:12], LabMAC)
	binary.BigEndian.PutUint16(f[12:], 0x86dd)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	ip[6], ip[7] = 58, 255
	s, d := src.As16(), all.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	return append(f, icmp...)
}

// isRouterSolicit reports whether frame is an ICMPv6 Router Solicitation and returns its source MAC.
func isRouterSolicit(frame []byte) (net.HardwareAddr, bool) {
	if len(frame) < 14+40+4 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd || frame[14+6] != 58 {
		return nil, false
	}
	return net.HardwareAddr(frame[6:12]), frame[14+40] == byte(header.ICMPv6RouterSolicit)
}
