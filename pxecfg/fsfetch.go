package pxecfg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// FSFetcher serves URLs on the given hosts from a file tree, as a TFTP or HTTP server rooted
// there would: the name after the host, leading slashes dropped, cleaned, must stay inside the
// tree. `netipl explain` and the golden tests use it over a directory (os.DirFS).
type FSFetcher struct {
	FS fs.FS
	// Hosts are the hosts served ("10.0.2.2", "[fec0::2]", "boot.example:8080"); URLs on other
	// hosts go to Next, or fail when Next is nil.
	Hosts []string
	Next  Fetcher
}

var _ Fetcher = (*FSFetcher)(nil)

// Fetch implements Fetcher.Fetch.
func (f *FSFetcher) Fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	_, host, name, err := SplitURL(url)
	if err != nil {
		return nil, err
	}
	served := false
	for _, h := range f.Hosts {
		served = served || strings.EqualFold(h, host)
	}
	if !served {
		if f.Next != nil {
			return f.Next.Fetch(ctx, url, limit)
		}
		return nil, fmt.Errorf("fetch %s: host %s is not served here", url, host)
	}
	p := path.Clean("/" + name)[1:]
	if p == "" {
		p = "."
	}
	if !fs.ValidPath(p) {
		return nil, fmt.Errorf("fetch %s: name outside the served tree", url)
	}
	file, err := f.FS.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fetch %s: %w", url, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer file.Close()
	if st, err := file.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("fetch %s: is a directory: %w", url, ErrNotFound)
	}
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("fetch %s: %w (%d bytes)", url, ErrTooLarge, limit)
	}
	return data, nil
}
