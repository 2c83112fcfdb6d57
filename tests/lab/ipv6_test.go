package lab

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func TestRouterAdvert(t *testing.T) {
	dst := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	f := routerAdvert(dst)
	if net.HardwareAddr(f[0:6]).String() != dst.String() || binary.BigEndian.Uint16(f[12:]) != 0x86dd {
		t.Fatalf("Ethernet header % x", f[:14])
	}
	ip := header.IPv6(f[14:])
	if !ip.IsValid(len(ip)) || ip.TransportProtocol() != header.ICMPv6ProtocolNumber || ip.HopLimit() != 255 {
		t.Fatalf("IPv6 header invalid: % x", f[14:54])
	}
	icmp := header.ICMPv6(ip.Payload())
	want := header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: ip.SourceAddress(), Dst: ip.DestinationAddress()})
	if icmp.Type() != header.ICMPv6RouterAdvert || icmp.Checksum() != want {
		t.Errorf("ICMPv6 type %d checksum %#x, want RA with %#x", icmp.Type(), icmp.Checksum(), want)
	}
	ra := header.NDPRouterAdvert(icmp.MessageBody())
	if !ra.OtherConfFlag() || ra.RouterLifetime().Seconds() != 1800 {
		t.Errorf("RA O flag %v lifetime %v", ra.OtherConfFlag(), ra.RouterLifetime())
	}
	it, err := ra.Options().Iter(true)
	if err != nil {
		t.Fatal(err)
	}
	var prefix string
	for {
		o, done, err := it.Next()
		if err != nil || done {
			break
		}
		if pi, ok := o.(header.NDPPrefixInformation); ok && pi.AutonomousAddressConfigurationFlag() && pi.OnLinkFlag() {
			prefix = pi.Subnet().String()
		}
	}
	if prefix != "fec0::/64" {
		t.Errorf("RA prefix = %q, want fec0::/64 with L and A", prefix)
	}
	if _, ok := isRouterSolicit(f); ok {
		t.Errorf("isRouterSolicit(RA) = true")
	}
	rs := append([]byte(nil), f...)
	rs[54] = byte(header.ICMPv6RouterSolicit)
	if mac, ok := isRouterSolicit(rs); !ok || mac.String() != LabMAC.String() {
		t.Errorf("isRouterSolicit(RS) = %v, %v", mac, ok)
	}
}

func TestEUI64(t *testing.T) {
	got := eui64(netip.MustParseAddr("fe80::"), net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56})
	if got.String() != "fe80::5054:ff:fe12:3456" {
		t.Errorf("eui64(fe80::, 52:54:00:12:34:56) = %s", got)
	}
}
