package movelong

import (
	"bytes"
	"testing"
)

// TestCopy compares Copy with copy for lengths around the MVCLE threshold and page sizes,
// unaligned offsets, short destinations or sources, and overlapping slices both ways.
func TestCopy(t *testing.T) {
	src := make([]byte, 3*4096+300)
	for i := range src {
		src[i] = byte(i*7 + i>>8)
	}
	for _, n := range []int{0, 1, 255, 256, 511, 512, 513, 1448, 1514, 4095, 4096, 4097, 8192 + 17, 3 * 4096} {
		for _, off := range []int{0, 1, 7, 4095} {
			if off+n > len(src) {
				continue
			}
			for _, dstLen := range []int{n, n + 3, n / 2} {
				want := bytes.Repeat([]byte{0xee}, dstLen+32)
				got := bytes.Repeat([]byte{0xee}, dstLen+32)
				wn := copy(want[5:5+dstLen], src[off:off+n])
				gn := Copy(got[5:5+dstLen], src[off:off+n])
				if gn != wn || !bytes.Equal(got, want) {
					t.Fatalf("n %d off %d dst %d: Copy = %d, bytes differ: %v", n, off, dstLen, gn, !bytes.Equal(got, want))
				}
			}
		}
	}
	for _, shift := range []int{-600, -1, 1, 600} {
		want := append([]byte(nil), src...)
		got := append([]byte(nil), src...)
		a, b := 1000, 1000+shift
		copy(want[a:a+5000], want[b:b+5000])
		Copy(got[a:a+5000], got[b:b+5000])
		if !bytes.Equal(got, want) {
			t.Fatalf("overlap shift %d: bytes differ", shift)
		}
	}
}

// benchSrc and benchDst are package-level so that the compiler keeps the copies.
var benchSrc, benchDst = make([]byte, 4096), make([]byte, 4096)

// BenchmarkCopy1448 is a TCP segment's payload, the receive path's copy (compare with
// BenchmarkBuiltinCopy1448 under qemu-s390x: GOOS=linux GOARCH=s390x go test -exec qemu-s390x -bench .).
func BenchmarkCopy1448(b *testing.B) {
	b.SetBytes(1448)
	for i := 0; i < b.N; i++ {
		Copy(benchDst[8:8+1448], benchSrc[16:16+1448])
	}
}

func BenchmarkBuiltinCopy1448(b *testing.B) {
	b.SetBytes(1448)
	for i := 0; i < b.N; i++ {
		copy(benchDst[8:8+1448], benchSrc[16:16+1448])
	}
}
