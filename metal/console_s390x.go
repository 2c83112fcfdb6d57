package metal

// Kernel console output: a line buffer flushed to the SCLP ASCII console.

var (
	conBuf [512]byte
	conLen int
)

func kflush() {
	if conLen > 0 {
		sclpWrite(conBuf[:conLen])
		conLen = 0
	}
}

func kroom(n int) {
	if conLen+n > len(conBuf) {
		kflush()
	}
}

func kprint(s string) {
	for len(s) > 0 {
		kroom(1)
		n := copy(conBuf[conLen:], s)
		conLen += n
		s = s[n:]
	}
}

func kprintBytes(b []byte) {
	for len(b) > 0 {
		kroom(1)
		n := copy(conBuf[conLen:], b)
		conLen += n
		b = b[n:]
	}
}

func kprintDec(v uint64) {
	kroom(20)
	conLen = putDec(conBuf[:], conLen, v)
}

func kprintHex(v uint64) {
	kroom(18)
	conLen = putHex(conBuf[:], conLen, v, 16)
}

func kprintHexShort(v uint64) {
	kroom(18)
	d := 1
	for x := v >> 4; x != 0; x >>= 4 {
		d++
	}
	conLen = putHex(conBuf[:], conLen, v, d)
}

// kline prints s and a newline, then flushes.
func kline(s string) {
	kprint(s)
	kprint("\n")
	kflush()
}
