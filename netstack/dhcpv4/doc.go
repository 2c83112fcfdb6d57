// Package dhcpv4 is netipl's DHCPv4 client: it obtains an address and the boot parameters (boot server, boot file,
// pxelinux options) and releases the lease before the kernel starts. Messages are built and parsed with
// github.com/insomniacslk/dhcp/dhcpv4; this package adds the exchange, the timing and the boot-parameter rules.
//
// Specs: RFC 2131 (DHCP), RFC 2132 (options), RFC 3396 (long options), RFC 4578 (PXE options 93, 94, 97),
// RFC 5071 (PXELINUX options 209, 210, 211), RFC 951 (BOOTP replies without the magic cookie).
//
// The client runs over a net.PacketConn bound to 0.0.0.0:68 that may send to 255.255.255.255:67 (in the guest a
// gVisor UDP endpoint with broadcast allowed). Time comes from an injected tcpip.Clock so retransmits can be stepped.
//
// Exchange:
//   - DISCOVER and REQUEST carry the same identity: 55 = [1 3 6 12 15 28 43 54 66 67 209 210 211],
//     93 = 0x001F (s390x), 94 = UNDI 3.16, 97 = client UUID (when known), 60 = "PXEClient:Arch:00031:UNDI:003016",
//     77 = "netipl" (a plain string, as iPXE sends it, not RFC 3004 length-prefixed), 57 = 1472. The broadcast
//     flag is set by default so replies reach a client that has no address yet.
//   - The first offer that carries a boot file (option 67 or the BOOTP file field) is taken at once. Until one
//     arrives, offers are collected for OfferWait after the first one (within the round's timeout), at most 16,
//     and the first offer wins. siaddr (next-server) alone does not end the wait: a plain DHCP server often
//     fills it with its own address while a second server offers the boot file. A one-server network with a
//     boot file (QEMU's slirp, dnsmasq with dhcp-boot) thus costs no wait at all.
//   - REQUEST is retransmitted with backoff; a NAK restarts from DISCOVER. A BOOTP reply (no magic cookie) to the
//     DISCOVER is accepted as a lease, as SLOF does.
//   - Timeouts double from InitialTimeout up to MaxTimeout; the whole Acquire is bounded by Total and MaxRounds.
//   - Option overload (52) is honoured: options found in the file and sname fields are merged after those of the
//     options field (RFC 2131 §4.1, RFC 3396 concatenation), and those fields then carry no names.
//   - RELEASE is unicast to the server identifier from the leased address.
//
// Boot server (Lease.BootServer) follows QEMU's s390-netboot (SLOF libnet dhcp.c): option 66 as a dotted quad or a
// name resolved by DNS; if that fails, siaddr; without 66, siaddr, then sname (address or name). Deviation: when
// none of these gives an address, the server identifier (54) is used, since it is usually the boot server too.
package dhcpv4
