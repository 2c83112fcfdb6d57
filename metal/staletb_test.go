package metal_test

import (
	"path/filepath"
	"strings"
	"testing"

	"netipl/linker"
)

// TestQEMUFrameStaleCode runs metal/testdata/staletb: code runs from 64 pages, metal takes the
// frames back (MADV_DONTNEED) and hands them out again zeroed, new code is copied in with one
// MVC per page, and every page must then run the new code. When metal cleared frames with
// clear() (XC under QEMU 7.2 TCG only drops translations that cover the first byte of each
// 256-byte block) the old code ran instead, and every store to such a page took TCG's slow
// self-modifying-code path for the rest of the boot (docs/memory.md).
func TestQEMUFrameStaleCode(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	lb := buildS390x(t, filepath.Join(dir, "staletb"), "./metal/testdata/staletb")
	mb := buildS390x(t, filepath.Join(dir, "metal"), "-ldflags=-E netipl/metal.kentry -T 0x4001000", "./metal/cmd/metal")
	img, err := linker.Assemble(mb, lb, linker.ArgvEnv("staletb", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	out, code := bootImage(t, img, "128")
	const want = "staletb: first code ran on 64 of 64 pages; after MADV_DONTNEED 64 zeroed, 64 ran the new code, 0 the old"
	if !strings.Contains(out, want) || code != 0 {
		t.Errorf("console %q, qemu exit code %d; want a line %q and exit code 0", out, code, want)
	}
}
