package pattern

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// The stream is pinned: a change here would make guest and host disagree silently only if
// both changed, so the first bytes and the digest of 1 MiB are fixed (also checked under
// qemu-s390x, where the CPU is big-endian).
func TestFillPinned(t *testing.T) {
	b := Bytes(1<<20, 1)
	if got, want := hex.EncodeToString(b[:16]), "1ddd6c894bcee4471d6579e0a8a6cfab"; got != want {
		t.Errorf("Bytes(1<<20, 1)[:16] = %s, want %s", got, want)
	}
	sum := sha256.Sum256(b)
	if got, want := hex.EncodeToString(sum[:]), pinnedSum; got != want {
		t.Errorf("sha256(Bytes(1<<20, 1)) = %s, want %s", got, want)
	}
}

const pinnedSum = "e6295f010262d74c01286728f411315662d1642467a715b3c76529fd174a191f"

func TestFillPartialWord(t *testing.T) {
	full := Bytes(64, 7)
	for n := 0; n < 64; n++ {
		if got := Bytes(n, 7); !bytes.Equal(got, full[:n]) {
			t.Errorf("Bytes(%d, 7) = %x, want the prefix %x", n, got, full[:n])
		}
	}
	if bytes.Equal(Bytes(64, 0), make([]byte, 64)) {
		t.Errorf("Bytes(64, 0) is all zero: seed 0 must be replaced")
	}
}
