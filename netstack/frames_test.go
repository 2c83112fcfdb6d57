package netstack

import (
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// buildUDP returns an Ethernet frame carrying one IPv4/UDP datagram with valid checksums.
func buildUDP(srcMAC net.HardwareAddr, dstMAC tcpip.LinkAddress, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	total := header.EthernetMinimumSize + header.IPv4MinimumSize + header.UDPMinimumSize + len(payload)
	b := make([]byte, total)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(srcMAC), DstAddr: dstMAC, Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(b[header.EthernetMinimumSize:])
	s, d := tcpip.AddrFrom4(src.As4()), tcpip.AddrFrom4(dst.As4())
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(header.IPv4MinimumSize + header.UDPMinimumSize + len(payload)),
		TTL:         64, Protocol: uint8(header.UDPProtocolNumber), SrcAddr: s, DstAddr: d,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(ip[header.IPv4MinimumSize:])
	u.Encode(&header.UDPFields{SrcPort: sport, DstPort: dport, Length: uint16(header.UDPMinimumSize + len(payload))})
	copy(u.Payload(), payload)
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, s, d, uint16(len(u)))
	u.SetChecksum(^u.CalculateChecksum(checksum.Checksum(payload, xsum)))
	return b
}

func bufferOf(b []byte) buffer.Buffer { return buffer.MakeWithData(b) }
