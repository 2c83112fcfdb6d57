// Package tftp is netipl's TFTP read client.
//
// Specs: RFC 1350 (TFTP revision 2), RFC 2347 (option extension, OACK), RFC 2348 (blksize), RFC 2349 (timeout,
// tsize) and RFC 7440 (windowsize). Only reads (RRQ) in "octet" mode are supported: a boot loader never writes and
// never needs netascii.
//
// The client is written against net.PacketConn so the same code runs over a gVisor UDP endpoint (gonet) in the
// guest and over host sockets in tests and in cmd/netipl-fetch. Each transfer opens its own socket through
// Client.Listen, so the client's transfer ID (its UDP port) is fresh per transfer, as RFC 1350 §4 asks. Time comes
// from an injected tcpip.Clock so retransmits can be stepped in tests.
//
// Behaviour and deviations:
//   - Options asked: blksize (default 1428, the largest that fits an Ethernet frame without IP fragmentation and
//     QEMU's TFTP_BLOCKSIZE_MAX), tsize 0, and windowsize when Options.WindowSize > 1. The timeout option is not
//     sent: retransmission is adaptive on the client side (RFC 6298 estimator with Karn's rule).
//   - An OACK that carries an option the client did not ask for, or a value larger than asked (blksize,
//     windowsize) or outside the RFC range, is refused with ERROR 8 (RFC 2347).
//   - A server that ignores options answers DATA 1: the transfer continues with 512-byte blocks, lock-step.
//     A server that answers the option-bearing RRQ with ERROR 8 (or ERROR 4, as some old servers do) is asked
//     again once without options ("graceful fallback"); a server that does not know windowsize simply leaves it
//     out of the OACK and the transfer runs lock-step.
//   - Block numbers roll over past 65535 to 0 (the de-facto rule of tftp-hpa, atftpd, dnsmasq); a server that rolls
//     over to 1 is accepted as well. Transfers are therefore not limited to 65535 blocks.
//   - Packets from another address or port than the server's chosen TID get ERROR 5 and are otherwise ignored
//     (RFC 1350 §4); they do not abort the transfer. A socket that offers Connect(netip.AddrPort) (netstack's)
//     is connected to the TID once it is known, so ACKs skip a route lookup each; the stack then drops foreign
//     packets itself, without an ERROR 5.
//   - Windowed transfers (RFC 7440): the client acknowledges after each full window, after the last block, and at
//     once after a gap (acknowledging the last block received in order), so the server resends from there.
//   - When the client aborts (size limit, refused option, timeout, cancelled context, write error) it sends an
//     ERROR packet to the server first (on a timeout only once the server has answered: before that there is no
//     transfer to end). QEMU's SLOF client does not.
//   - In lock-step, a duplicate DATA (and a repeated OACK) is acknowledged again only when it arrives at least a
//     quarter of the retransmission timeout after our last ACK (then our ACK was probably lost); an earlier one
//     crossed our ACK on the wire, and answering it would start the Sorcerer's Apprentice loop (RFC 1123 §4.2.3.1)
//     with servers that resend on every ACK. Duplicates are not progress: they never extend the wait, so a server
//     that repeats one packet forever meets Options.Retries like a silent one.
//   - Pipelining (Options.Pipeline = W > 1, without a negotiated windowsize): QEMU's libslirp server answers
//     every ACK with its next unsent block whatever the ACK's number. The client repeats ACK 0 W-1 times after
//     the OACK and holds block 1's ACK until it sees what came of that: block 2 first (the server counts ACKs:
//     every block is then acknowledged as it arrives, W stay in flight), block 1 again (tftpd-hpa, atftpd) or
//     nothing within a short probe wait (pin/tftp, dnsmasq): lock-step. Every ACK names a block received in
//     order. Such a server never resends, so a gap or two timeouts in a row while pipelining end the session
//     (ERROR 0) and start the file again once, lock-step, on a fresh socket (Stats.Restarts). See
//     docs/protocols.md.
//   - Lost ACKs while pipelining: such a server sends one block per ACK it receives, so every lost ACK takes a
//     block out of flight for good, and after about Pipeline losses nothing arrives. When no DATA has come for a
//     quiet wait (twice the longest gap between two blocks so far, at least four OACK round trips and 2 ms, at
//     most a quarter of the retransmission timeout; looked at every half timeout until a refill has shown lost
//     ACKs, since each look interrupts the read) and none for another one (a block then was late, not lost,
//     and is acknowledged as usual), the client reads once more and sends Pipeline ACKs of the last block
//     received in order (Stats.WindowRefills, RefillACKs): the pipeline is full again. A refill whose first
//     answer comes later than a round trip went into a stall that let nothing through (twice Pipeline in
//     flight); the client then takes the next Pipeline blocks without an ACK (Stats.StalledRefills). Refills
//     are not progress: the timeout and restart rules above are unchanged. 5 % of the ACKs lost, 4 MiB on
//     loopback: 0.07 MB/s (156 timeouts, a restart) before, 32-45 MB/s after (bench/tftpackloss.sh,
//     docs/protocols.md).
//   - Each DATA is acknowledged before it is written to the io.WriterAt, so the server works on the next block
//     while this one is copied. One goroutine reads, answers and writes; the timer and the context interrupt a
//     blocked read through the socket's read deadline.
//   - Options.OnSize sees tsize before ACK 0, so a caller can place or refuse the file before any data moves.
//   - Data is written with io.WriterAt at (block-1)*blksize, so a caller can hand in a view of the final memory.
package tftp
