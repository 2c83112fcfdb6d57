package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"netipl/netstack"
	"netipl/netstack/dhcpv6"
)

// The IPv6 fallback (research/qemu-netboot.md §2.4, §9 item 10): when DHCPv4 has no answer,
// QEMU's image sends a Router Solicitation, takes the SLAAC address of the advertised prefix and
// asks DHCPv6 (Information-Request) for the boot-file URL, option 59. The loader does the same
// through the gVisor stack: SLAAC by gVisor's NDP (RFC 4862, modified EUI-64 of the MAC), the
// exchange by netstack/dhcpv6.

// Router discovery bounds: raWait is how long one solicitation round waits for an address
// (QEMU waits 4 × 1 s), rsCount and rsInterval the solicitations per round.
const (
	raWait     = 4 * time.Second
	rsCount    = 3
	rsInterval = time.Second
	// v6Poll is how often the stack's addresses are checked during raWait.
	v6Poll = 20 * time.Millisecond
)

// errNoRA means no router advertised a prefix for SLAAC.
var errNoRA = errors.New("no router advertisement with a SLAAC prefix")

// errNoBootURL means the DHCPv6 reply named no boot file.
var errNoBootURL = errors.New("dhcpv6: the reply has no boot-file URL (option 59)")

// ipv6Lease is what the IPv6 fallback learned.
type ipv6Lease struct {
	Addr  netip.Addr // the SLAAC address
	Lease *dhcpv6.Lease
}

// enableSLAAC turns on router discovery and SLAAC on the stack's NIC and (re)starts router
// solicitation. The stack is built with NDP off (IPv4 boots send no RS); gVisor starts
// soliciting when an endpoint turns from router into host, so forwarding is toggled. The
// link-local address (fe80:: + modified EUI-64) is added first, so the RS carries a source.
func enableSLAAC(st *netstack.Stack) error {
	s := st.Stack()
	ep, err := s.GetNetworkEndpoint(netstack.NICID, ipv6.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("ipv6: network endpoint: %s", err)
	}
	ndp, ok := ep.(ipv6.NDPEndpoint)
	if !ok {
		return errors.New("ipv6: the stack's IPv6 endpoint has no NDP")
	}
	cfg := ipv6.DefaultNDPConfigurations()
	cfg.MaxRtrSolicitations = rsCount
	cfg.RtrSolicitationInterval = rsInterval
	cfg.MaxRtrSolicitationDelay = 0
	cfg.HandleRAs = ipv6.HandlingRAsAlwaysEnabled
	cfg.AutoGenGlobalAddresses = true
	cfg.AutoGenTempGlobalAddresses = false
	ndp.SetNDPConfigurations(cfg)

	ll := tcpip.ProtocolAddress{
		Protocol:          ipv6.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: header.LinkLocalAddr(tcpip.LinkAddress(st.MAC())), PrefixLen: 64},
	}
	if err := s.AddProtocolAddress(netstack.NICID, ll, stack.AddressProperties{}); err != nil {
		if _, dup := err.(*tcpip.ErrDuplicateAddress); !dup {
			return fmt.Errorf("ipv6: add link-local address %s: %s", ll.AddressWithPrefix, err)
		}
	}
	if _, err := s.SetNICForwarding(netstack.NICID, ipv6.ProtocolNumber, true); err != nil {
		return fmt.Errorf("ipv6: start router solicitation: %s", err)
	}
	if _, err := s.SetNICForwarding(netstack.NICID, ipv6.ProtocolNumber, false); err != nil {
		return fmt.Errorf("ipv6: start router solicitation: %s", err)
	}
	return nil
}

// slaacAddress returns the NIC's first global IPv6 address (not link-local), if any.
func slaacAddress(st *netstack.Stack) (netip.Addr, bool) {
	for _, pa := range st.Stack().AllAddresses()[netstack.NICID] {
		if pa.Protocol != ipv6.ProtocolNumber {
			continue
		}
		a, ok := netip.AddrFromSlice(pa.AddressWithPrefix.Address.AsSlice())
		if ok && a.IsGlobalUnicast() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// waitSLAAC solicits routers until the NIC has a global address or ctx ends.
func waitSLAAC(ctx context.Context, st *netstack.Stack) (netip.Addr, error) {
	t := time.NewTicker(v6Poll)
	defer t.Stop()
	for {
		if err := enableSLAAC(st); err != nil {
			return netip.Addr{}, err
		}
		round := time.Now().Add(raWait)
		for time.Now().Before(round) {
			if a, ok := slaacAddress(st); ok {
				return a, nil
			}
			select {
			case <-ctx.Done():
				return netip.Addr{}, errNoRA
			case <-t.C:
			}
		}
	}
}

// acquireIPv6 runs the fallback until it has a SLAAC address and a DHCPv6 reply, or ctx ends;
// a failed DHCPv6 exchange is retried. The error is the last failure.
func acquireIPv6(ctx context.Context, st *netstack.Stack, m machine) (*ipv6Lease, error) {
	addr, err := waitSLAAC(ctx, st)
	if err != nil {
		return nil, err
	}
	conn, err := st.ListenUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 546))
	if err != nil {
		return nil, fmt.Errorf("dhcpv6: listen on port 546: %w", err)
	}
	defer conn.Close()
	for {
		c := &dhcpv6.Client{Conn: conn, HWAddr: m.MAC}
		lease, err := c.Acquire(ctx)
		if err == nil && lease.BootURL != "" {
			return &ipv6Lease{Addr: addr, Lease: lease}, nil
		}
		if err == nil {
			// Stateless DHCPv6 for DNS only is common: not an answer to boot from, so DHCPv4
			// (or a later reply) may still win.
			err = errNoBootURL
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("address %s from SLAAC, but %w", addr, err)
		case <-time.After(time.Second):
		}
	}
}

// v6Facts turns the DHCPv6 boot URL into the boot server and boot file QEMU's image shows: a
// tftp:// URL on an address literal is that server and its path; anything else (a name, HTTP)
// stays a URL, with its host as the server.
func v6Facts(bootURL string) (server, bootfile string, err error) {
	if bootURL == "" {
		return "", "", errNoBootURL
	}
	u, err := dhcpv6.ParseBootURL(bootURL)
	if err != nil {
		return "", "", fmt.Errorf("dhcpv6: %w", err)
	}
	if u.Scheme == "tftp" && u.Addr.IsValid() && u.Port == 69 {
		return u.Addr.String(), u.Path, nil
	}
	if u.Addr.IsValid() {
		return u.Addr.String(), u.URL, nil
	}
	return u.Host, u.URL, nil
}
