package testnet

// Pattern returns n bytes of xorshift32 output from seed (not 0): a payload with no period a
// block size could hide, so a block written at the wrong offset shows as a mismatch.
func Pattern(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
