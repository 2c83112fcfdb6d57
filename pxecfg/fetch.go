package pxecfg

import (
	"context"
	"errors"
)

// Fetcher reads one whole file named by a URL (tftp://, http:// or https://; see [SplitURL]
// for how a tftp:// URL maps to a TFTP file name). pxecfg uses it for configuration files,
// INCLUDEs, the boot file (to sniff its kind) and the small .INS side files (parmfile,
// initrd.addrsize); it never fetches kernels or initrds, which the loader streams itself.
//
// limit is the largest size the caller accepts. A larger file must fail with an error that
// wraps [ErrTooLarge] (a TFTP client aborts the transfer with an ERROR packet). A missing
// file must fail with an error that wraps [ErrNotFound], so the lookup goes on to the next
// name; any other error is reported and the lookup goes on as well.
//
// It is satisfied by the loader's adapter over netstack/tftp and netstack/httpfetch, and by
// the host tool's directory and net/http fetchers (cmd/netipl).
type Fetcher interface {
	Fetch(ctx context.Context, url string, limit int64) ([]byte, error)
}

// ErrNotFound is what a [Fetcher] wraps when the server says the file does not exist
// (TFTP error code 1, HTTP 404/410).
var ErrNotFound = errors.New("file not found")

// ErrTooLarge is what a [Fetcher] wraps when the file is larger than the caller's limit.
var ErrTooLarge = errors.New("file larger than the limit")

// Size limits for the files pxecfg fetches itself. They bound memory against hostile
// servers; they are far above anything real (the largest config seen in the wild is a few KiB).
const (
	// ConfigLimit bounds one pxelinux.cfg file or INCLUDEd file.
	ConfigLimit = 1 << 20
	// ConfigTotalLimit bounds a config and all its INCLUDEs together: without it, MaxIncludes
	// files of ConfigLimit each (256 MiB) would be fetched and kept.
	ConfigTotalLimit = 4 << 20
	// SniffLimit is how much of the boot file is fetched to decide what it is. A larger
	// boot file is a kernel image and is left to the loader.
	SniffLimit = 1 << 20
	// SideFileLimit bounds an .INS parmfile or initrd.addrsize file.
	SideFileLimit = 64 << 10
)
