package metal

// Allocation-free number formatting for the console and the platform files.

// putDec writes v in decimal at b[n:] and returns the new length (b must be large enough).
func putDec(b []byte, n int, v uint64) int {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return n + copy(b[n:], tmp[i:])
}

// putDecPad writes v right-aligned in a field of width characters.
func putDecPad(b []byte, n int, v uint64, width int) int {
	var tmp [20]byte
	m := putDec(tmp[:], 0, v)
	for ; m < width; width-- {
		b[n] = ' '
		n++
	}
	return n + copy(b[n:], tmp[:m])
}

const hexDigits = "0123456789abcdef"

// putHex writes v as 0x followed by exactly digits lowercase hex digits.
func putHex(b []byte, n int, v uint64, digits int) int {
	b[n] = '0'
	b[n+1] = 'x'
	n += 2
	return putHexRaw(b, n, v, digits)
}

// putHexRaw writes the low digits hex digits of v without a prefix.
func putHexRaw(b []byte, n int, v uint64, digits int) int {
	for i := digits - 1; i >= 0; i-- {
		b[n+i] = hexDigits[v&0xf]
		v >>= 4
	}
	return n + digits
}

func putStr(b []byte, n int, s string) int { return n + copy(b[n:], s) }

// be64 and putBE64 read and write big-endian u64 values (the machine's byte order).
func be64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func putBE64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
