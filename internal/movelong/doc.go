// Package movelong copies bulk data with MOVE LONG EXTENDED on s390x.
//
// Why: netipl's receive path copies every byte of a download up to three times (virtio RX buffer
// to the loader, frame to the coalesced packet, packet to payload memory), and under QEMU's TCG
// (the firmware's usual home in CI and labs) how a copy is done matters more than what is copied.
// Go's memmove on s390x moves 256 bytes per MVC, and QEMU 7.2 runs each MVC as a helper call that
// probes both operands; MVCLE moves up to a page per helper call. Measured under qemu-s390x
// (BenchmarkCopy1448 against BenchmarkBuiltinCopy1448): 1448 bytes in 65 ns with MVCLE, 251 ns with copy().
//
// On other architectures Copy is the built-in copy.
package movelong
