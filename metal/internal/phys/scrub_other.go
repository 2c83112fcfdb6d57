//go:build !s390x

package phys

// Scrub clears n bytes at physical address a (8-byte aligned, n a multiple of 64). The
// s390x version (scrub_s390x.s) uses ordinary 8-byte stores on purpose; elsewhere (host
// tests) how the bytes get cleared does not matter.
func Scrub(a, n uintptr) { clear(Words(a, n/8)) }
