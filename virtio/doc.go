// Package virtio is the virtio-net-ccw driver that metal (the freestanding kernel) uses for the boot
// NIC: channel-subsystem I/O, the virtio-ccw transport, split virtqueues and virtio-net.
//
// Specifications: VIRTIO 1.2 (OASIS, 2022) §2.1 device status, §2.7 split virtqueues, §4.3 virtio
// over channel I/O, §5.1 network device; z/Architecture Principles of Operation SA22-7832-13,
// chapters 13-17 (I/O instructions, SCHIB, ORB, CCW, IRB).
//
// Supported subset:
//   - Channel subsystem: STSCH, MSCH, SSCH, TSCH, CHSC "set domain attributes" to enable multiple
//     subchannel sets, SENSE ID; one format-1 CCW per channel program, prefetch allowed.
//   - NIC selection (Select): the IPLB's ssid+devno when metal has an IPLB (diag 308 subcode 6),
//     otherwise the first virtio-net (CU type 0x3832, model 1) in ssid 0..3 (0 only if CHSC fails).
//   - virtio-ccw revision 1 (SET_VIRTIO_REV); features VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC,
//     both required, nothing else (no offloads, no mergeable buffers, no event index, no control
//     queue); one RX and one TX split virtqueue of min(device maximum, 256) entries.
//   - RX: every descriptor owns one 2 KiB buffer and the ring is kept full (a buffer goes back as
//     soon as its frame is read). Frames shorter than 14 or longer than 1518 bytes are dropped and
//     counted (Stats.RxRunts, RxOversize).
//   - TX: asynchronous; completions are reclaimed on the next send. TX interrupts are suppressed
//     (VIRTQ_AVAIL_F_NO_INTERRUPT) except while a writer waits for a full ring.
//   - Notification by diag 0x500, only when the device asks (VIRTQ_USED_F_NO_NOTIFY clear).
//   - Completion signalling by classic queue indicators (SET_IND) and I/O interruptions on the
//     NIC's subchannel with the ISC metal chooses; no polling of the rings. RX interruptions are
//     suppressed from the interruption that reports frames until the reader finds the ring empty
//     (NAPI-style). Adapter (thin) interrupts are not used.
//   - Reset (VDEV_RESET + subchannel disabled) for the kernel handoff.
//
// Deviations: channel programs at set-up and reset wait by TEST SUBCHANNEL with a 1 s TOD deadline
// rather than an enabled wait (they take microseconds; metal's I/O handler is not involved).
//
// Rules: this package runs inside metal, so it never allocates, has no package initialisation and
// does not use the Go runtime; errors are Status codes with a static text table and Net.Reason
// renders the console line. Pure logic (ring math, selection, negotiation, the CCW protocol over
// the Channel interface) is host-tested against a fake device; the privileged instructions are the
// thin wrappers in css_s390x.s. docs/nic.md says how metal wires the driver to the tap fd.
package virtio
