package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"netipl/netstack/tftp"
	"netipl/pxecfg"
)

// fetchError keeps a transport's error text and adds the pxecfg sentinel for errors.Is.
type fetchError struct {
	err, kind error
}

func (e *fetchError) Error() string   { return e.err.Error() }
func (e *fetchError) Unwrap() []error { return []error{e.err, e.kind} }

// netFetcher fetches http:// and https:// URLs with net/http, and tftp:// URLs with
// netipl's TFTP client over host sockets.
type netFetcher struct {
	client  *http.Client
	tftp    *tftp.Client
	timeout time.Duration // per file, TFTP and HTTP alike
}

var _ pxecfg.Fetcher = (*netFetcher)(nil)

func newNetFetcher(timeout time.Duration) *netFetcher {
	return &netFetcher{
		timeout: timeout,
		client:  &http.Client{Timeout: timeout},
		tftp: &tftp.Client{
			Listen:  func() (net.PacketConn, error) { return net.ListenPacket("udp", ":0") },
			Options: tftp.Options{Retries: 3},
		},
	}
}

// Fetch implements pxecfg.Fetcher.Fetch.
func (f *netFetcher) Fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	scheme, host, name, err := pxecfg.SplitURL(url)
	if err != nil {
		return nil, err
	}
	if scheme == "tftp" {
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		return f.fetchTFTP(ctx, host, name, limit)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("http GET %s: %w", url, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("http GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, &fetchError{fmt.Errorf("http GET %s: %s", url, resp.Status), pxecfg.ErrNotFound}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("http GET %s: %s", url, resp.Status)
	case resp.ContentLength > limit:
		return nil, &fetchError{fmt.Errorf("http GET %s: %d bytes, limit %d", url, resp.ContentLength, limit), pxecfg.ErrTooLarge}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("http GET %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, &fetchError{fmt.Errorf("http GET %s: more than %d bytes", url, limit), pxecfg.ErrTooLarge}
	}
	return data, nil
}

// fetchTFTP reads name from host (an address, optionally with a port, or a DNS name).
func (f *netFetcher) fetchTFTP(ctx context.Context, host, name string, limit int64) ([]byte, error) {
	hostname, port := host, uint16(69)
	if h, p, err := net.SplitHostPort(host); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("tftp server %q: bad port", host)
		}
		hostname, port = h, uint16(n)
	}
	addr, err := netip.ParseAddr(strings.Trim(hostname, "[]"))
	if err != nil {
		addrs, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", hostname)
		if lerr != nil {
			return nil, fmt.Errorf("tftp server %q: %w", hostname, lerr)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("tftp server %q: no address", hostname)
		}
		addr = addrs[0]
	}
	c := *f.tftp
	c.MaxSize = limit
	var buf memBuffer
	_, err = c.Get(ctx, netip.AddrPortFrom(addr, port), name, &buf)
	switch {
	case errors.Is(err, tftp.ErrNotFound):
		return nil, &fetchError{err, pxecfg.ErrNotFound}
	case errors.Is(err, tftp.ErrTooLarge):
		return nil, &fetchError{err, pxecfg.ErrTooLarge}
	case err != nil:
		return nil, err
	}
	return buf.b, nil
}

// memBuffer is a growing in-memory io.WriterAt.
type memBuffer struct{ b []byte }

// WriteAt implements io.WriterAt.
func (m *memBuffer) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}
