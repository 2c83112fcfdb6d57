//go:build !linux

package netstack

import (
	"fmt"
	"os"
)

// OpenTap is only available on Linux.
func OpenTap(name string) (*os.File, error) {
	return nil, fmt.Errorf("netstack: tap %q: /dev/net/tun needs Linux", name)
}
