package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"netipl/netstack/dns"
	"netipl/netstack/httpfetch"
	"netipl/netstack/tftp"
	"netipl/pxecfg"
)

// netFetcher fetches tftp://, http:// and https:// URLs over the loader's stack: small files for
// pxecfg (Fetch) and kernels and initrds straight into payload memory (Stream).
type netFetcher struct {
	// listenUDP opens a fresh UDP socket for one TFTP transfer.
	listenUDP func() (net.PacketConn, error)
	// dial opens a TCP connection (HTTP).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// resolver turns host names into addresses (option 6 servers); nil means names fail.
	resolver *dns.Resolver
	// window is the TFTP windowsize asked for (RFC 7440); servers that do not know it run lock-step.
	window int
}

var _ pxecfg.Fetcher = (*netFetcher)(nil)

// fetchError keeps a transport's error text and adds the pxecfg sentinel for errors.Is.
type fetchError struct{ err, kind error }

func (e *fetchError) Error() string   { return e.err.Error() }
func (e *fetchError) Unwrap() []error { return []error{e.err, e.kind} }

// classify maps the transports' sentinels onto pxecfg's.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tftp.ErrNotFound), errors.Is(err, httpfetch.ErrNotFound):
		return &fetchError{err, pxecfg.ErrNotFound}
	case errors.Is(err, tftp.ErrTooLarge), errors.Is(err, httpfetch.ErrTooLarge):
		return &fetchError{err, pxecfg.ErrTooLarge}
	}
	return err
}

func isNotFound(err error) bool { return errors.Is(err, pxecfg.ErrNotFound) }

// Fetch implements pxecfg.Fetcher.Fetch.
func (f *netFetcher) Fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	var buf memBuffer
	_, err := f.Stream(ctx, url, &buf, limit, nil, nil)
	if err != nil {
		return nil, err
	}
	return buf.b, nil
}

// Stream downloads url into w from offset 0, refusing files larger than limit. onSize sees the
// announced size (TFTP tsize, HTTP Content-Length) before any data; progress sees bytes so far.
func (f *netFetcher) Stream(ctx context.Context, url string, w io.WriterAt, limit int64, onSize func(int64) error, progress func(got, size int64)) (int64, error) {
	scheme, host, name, err := pxecfg.SplitURL(url)
	if err != nil {
		return 0, err
	}
	switch scheme {
	case "tftp":
		server, err := f.tftpServer(ctx, host)
		if err != nil {
			return 0, err
		}
		c := tftp.Client{Listen: f.listenUDP, Options: tftp.Options{MaxSize: limit, WindowSize: f.window, OnSize: onSize, ProgressEvery: 4 << 20}}
		if progress != nil {
			c.Progress = func(p tftp.Progress) { progress(p.Received, p.Size) }
		}
		res, err := c.Get(ctx, server, name, w)
		return res.Size, classify(err)
	case "http", "https":
		c := httpfetch.Client{Dial: f.dial, MaxSize: limit, OnSize: onSize, ProgressEvery: 4 << 20}
		if progress != nil {
			c.Progress = func(p httpfetch.Progress) { progress(p.Received, p.Size) }
		}
		res, err := c.Get(ctx, url, w)
		return res.Size, classify(err)
	}
	return 0, fmt.Errorf("fetch %s: unsupported scheme %q", url, scheme)
}

// tftpServer resolves "host[:port]" of a tftp:// URL.
func (f *netFetcher) tftpServer(ctx context.Context, host string) (netip.AddrPort, error) {
	h, port := host, uint16(69)
	if hh, p, err := net.SplitHostPort(host); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("tftp server %q: bad port", host)
		}
		h, port = hh, uint16(n)
	}
	a, err := f.lookup(ctx, strings.Trim(h, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("tftp server %q: %w", h, err)
	}
	return netip.AddrPortFrom(a, port), nil
}

// lookup resolves a host: an address literal, else DNS.
func (f *netFetcher) lookup(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	if f.resolver == nil {
		return netip.Addr{}, fmt.Errorf("dns lookup %q: %w", host, dns.ErrNoServers)
	}
	as, err := f.resolver.LookupHost(ctx, host)
	if err != nil {
		return netip.Addr{}, err
	}
	return as[0], nil
}

// memBuffer is a growing in-memory io.WriterAt for small files.
type memBuffer struct{ b []byte }

// WriteAt implements io.WriterAt.
func (m *memBuffer) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// offsetWriter writes at base + off (a file placed at a physical address).
type offsetWriter struct {
	w    io.WriterAt
	base int64
}

// WriteAt implements io.WriterAt.
func (o offsetWriter) WriteAt(p []byte, off int64) (int, error) { return o.w.WriteAt(p, o.base+off) }
