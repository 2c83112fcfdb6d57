package lab

import (
	"io"
	"testing"
)

// BenchmarkTFTP runs BenchTFTP once per iteration (for profiling; numbers come from bench/lab.sh).
func BenchmarkTFTP(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := BenchTFTP(io.Discard, 16<<20); err != nil {
			b.Fatal(err)
		}
	}
}
