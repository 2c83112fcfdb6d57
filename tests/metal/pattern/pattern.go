// Package pattern generates the deterministic byte buffer that the torture program hashes
// in the guest and the host test hashes on the host: both sides must produce the same bytes
// on a big-endian s390x and a little-endian amd64, so words are stored little-endian explicitly.
package pattern

import "encoding/binary"

// Fill fills b with the xorshift64* stream that starts from seed (a zero seed is replaced
// by a fixed non-zero one, since xorshift never leaves zero).
func Fill(b []byte, seed uint64) {
	x := seed
	if x == 0 {
		x = 0x9e3779b97f4a7c15
	}
	var w [8]byte
	for i := 0; i < len(b); i += 8 {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		binary.LittleEndian.PutUint64(w[:], x*0x2545f4914f6cdd1d)
		copy(b[i:], w[:])
	}
}

// Bytes returns n bytes of the stream from seed.
func Bytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	Fill(b, seed)
	return b
}
