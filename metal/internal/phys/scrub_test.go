package phys

import (
	"testing"
	"unsafe"
)

// TestScrub clears exactly [a, a+n) (the s390x assembly under the cross tests, the Go loop on
// the host) and leaves the words around it alone.
func TestScrub(t *testing.T) {
	tests := []struct {
		name     string
		from, to int // word indexes of the cleared range inside a 1 KiB buffer
	}{
		{"nothing", 8, 8},
		{"one block", 8, 16},
		{"a page", 16, 16 + 512},
		{"odd blocks", 3, 3 + 7*8},
	}
	for _, tt := range tests {
		buf := make([]uint64, 1024)
		for i := range buf {
			buf[i] = ^uint64(i)
		}
		Scrub(uintptr(unsafe.Pointer(&buf[tt.from])), uintptr(tt.to-tt.from)*8)
		for i, w := range buf {
			want := ^uint64(i)
			if i >= tt.from && i < tt.to {
				want = 0
			}
			if w != want {
				t.Errorf("%s: word %d = %#x, want %#x", tt.name, i, w, want)
				break
			}
		}
	}
}
