package pxecfg

import (
	"context"
	"errors"
	"fmt"
)

// memFetcher serves files from a map keyed by URL and records every URL asked for.
type memFetcher struct {
	files map[string]string
	errs  map[string]error // URL → error to return instead
	asked []string
}

var _ Fetcher = (*memFetcher)(nil)

// Fetch implements Fetcher.Fetch.
func (m *memFetcher) Fetch(_ context.Context, url string, limit int64) ([]byte, error) {
	m.asked = append(m.asked, url)
	if err, ok := m.errs[url]; ok {
		return nil, err
	}
	d, ok := m.files[url]
	if !ok {
		return nil, fmt.Errorf("fetch %s: %w", url, ErrNotFound)
	}
	if int64(len(d)) > limit {
		return nil, fmt.Errorf("fetch %s: %w", url, ErrTooLarge)
	}
	return []byte(d), nil
}

var errAccess = errors.New("TFTP access violation")
