package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseRRQ: any accepted RRQ has a name and a known mode, and negotiation never grants more
// than the server's limits.
func FuzzParseRRQ(f *testing.F) {
	f.Add([]byte("\x00\x01kernel.img\x00octet\x00blksize\x001428\x00"))
	f.Add([]byte("\x00\x01f\x00netascii\x00tsize\x000\x00windowsize\x0099999\x00timeout\x00300\x00"))
	f.Add([]byte("\x00\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > 2048 {
			return
		}
		r, err := parseRRQ(p)
		if err != nil {
			return
		}
		if r.name == "" || (r.mode != "octet" && r.mode != "netascii") {
			t.Fatalf("parseRRQ(%q) accepted name %q mode %q", p, r.name, r.mode)
		}
		n := negotiate(r, 1000)
		if n.blksize < 8 || n.blksize > maxBlksize || n.windowsize < 1 || n.windowsize > maxWindowsize {
			t.Fatalf("negotiate(%q) = blksize %d windowsize %d", p, n.blksize, n.windowsize)
		}
	})
}

// FuzzParseScenario: the parser never panics, and every error names the file and a line.
func FuzzParseScenario(f *testing.F) {
	paths, _ := filepath.Glob("scenarios/*.scn")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 8192 {
			return
		}
		_, err := ParseScenario("f.scn", bytes.NewReader(src))
		if err != nil && !strings.HasPrefix(err.Error(), "f.scn:") {
			t.Fatalf("ParseScenario error %q lacks the file:line prefix", err)
		}
	})
}
