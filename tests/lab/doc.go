// Package lab is a scripted network peer for s390x netboot firmware under qemu-system-s390x.
//
// QEMU connects its virtio-net-ccw NIC to the lab with `-netdev stream` (QEMU 7.2 syntax; each
// Ethernet frame travels with a 4-byte big-endian length). The lab terminates the link in a gVisor
// stack (10.0.2.2/24, like slirp) that runs:
//   - a DHCPv4 server (insomniacslk/dhcp server4 over a gonet PacketConn): options 1, 3, 6, 15,
//     51, 54, 66, 67, 209, 210, 211; per-MAC leases; optional delay, NAKs and a second server
//     (10.0.2.3) that offers first;
//   - a TFTP server: by default the lab's own (RFC 1350/2347/2348/2349/7440: blksize, tsize,
//     timeout, windowsize; a fresh port per transfer), because pin/tftp v3 has no RFC 7440
//     windowsize (its "anticipate" mode is not RFC 7440) and, in the single-port mode a gonet
//     PacketConn needs, reaches only ~13 MB/s lock-step here, below QEMU's image over slirp;
//     `tftp pin` in a scenario selects pin/tftp v3 (Serve on a gonet PacketConn, blksize, tsize);
//   - an HTTP server (net/http ServeContent: Content-Length, Range) and a DNS server (A records,
//     for option-66 names);
//   - a pcap of every run, written at the QEMU side of the link.
//
// Faults are injected at frame level between the socket and the stack (Injector): loss,
// duplication, reordering, delay/jitter, corruption, silence after N frames; and at file level in
// the TFTP servers: an ERROR mid-file, a truncated file.
//
// Scenarios are small declarative text files (see ParseScenario and scenarios/README.md); Run
// starts QEMU with a firmware, feeds it a scenario and judges the console and the lab's event log
// against that firmware's expectations (Scenario.Expect: the common lines plus its "expect" lines;
// an "xfail" line per firmware marks a known failure). Firmware names are "qemu" (QEMU's
// s390-netboot.img) and "netipl".
package lab
