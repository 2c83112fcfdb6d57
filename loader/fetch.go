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
	"sync"
	"sync/atomic"
	"time"

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
	// window is the TFTP windowsize asked for (RFC 7440). When the server negotiates none, the client
	// keeps tftpPipeline blocks (or window, if more) in flight against servers that answer every ACK
	// with their next block (QEMU's slirp; tftp.Options.Pipeline); other servers run lock-step. 1 (or 0)
	// turns both off.
	window int
	// stall is the progress deadline of one file: a transfer that moves fewer than stallFloor
	// bytes in any stall period (from the request on) is aborted. 0 means no deadline.
	stall time.Duration

	mu sync.Mutex
	// last is the last small file Fetch returned whole, so a boot file pxecfg sniffed as a
	// kernel is not downloaded a second time (takeFetched).
	last fetchedFile
}

// fetchedFile is one file Fetch downloaded: its bytes and how long that took.
type fetchedFile struct {
	url  string
	data []byte
	took time.Duration
}

// tftpPipeline is the TFTP pipeline depth against servers that count ACKs (QEMU's slirp). Deeper than
// the windowsize asked of real servers because it only ever runs against a server in the same QEMU
// process: 48 blocks (about 70 KB) hide the latency of QEMU handling queued ACKs in batches (a 20 MB
// initrd over slirp: 13.5 MB/s at 16, 15.0 at 48, 15.2 at 128, medians of 9 A/B rounds) and fit the
// NIC's 256-entry receive ring and the stack's 4 MiB socket buffer many times over.
const tftpPipeline = 48

// pipelineFor is the TFTP pipeline depth for a -window value: off (1) when the window is, else
// tftpPipeline or the window if that is larger.
func pipelineFor(window int) int {
	if window <= 1 {
		return 1
	}
	return max(window, tftpPipeline)
}

// stallFloor is how many bytes a transfer must move per stall period to count as progressing:
// a server trickling a few bytes per period (each one resetting the protocols' own read
// timeouts) is cut off as if it had stopped.
const stallFloor = 64 << 10

// stallError is the reason a stalled transfer was aborted.
type stallError struct {
	url, server string
	period      time.Duration
	got, total  int64
}

func (e *stallError) Error() string {
	return fmt.Sprintf("%s: no progress from server %s for %s (%d bytes in that time, %d in all; at least %d KiB per %s needed)",
		e.url, e.server, e.period, e.got, e.total, stallFloor>>10, e.period)
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
	start := time.Now()
	_, err := f.Stream(ctx, url, &buf, limit, nil, nil)
	if err != nil {
		return nil, err
	}
	if limit <= pxecfg.SniffLimit {
		f.mu.Lock()
		f.last = fetchedFile{url: url, data: buf.b, took: time.Since(start)}
		f.mu.Unlock()
	}
	return buf.b, nil
}

// takeFetched hands over the file the last Fetch returned if it was url, once; callers must
// not change the bytes.
func (f *netFetcher) takeFetched(url string) (fetchedFile, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.last
	if last.url != url || last.url == "" {
		return fetchedFile{}, false
	}
	f.last = fetchedFile{}
	return last, true
}

// replay writes an already fetched file to w as Stream would: onSize sees its size first and
// a file over limit is refused.
func replay(file fetchedFile, w io.WriterAt, limit int64, onSize func(int64) error) (int64, error) {
	n := int64(len(file.data))
	if n > limit {
		return 0, &fetchError{fmt.Errorf("%s: %d bytes, limit %d", file.url, n, limit), pxecfg.ErrTooLarge}
	}
	if onSize != nil {
		if err := onSize(n); err != nil {
			return 0, err
		}
	}
	if _, err := w.WriteAt(file.data, 0); err != nil {
		return 0, fmt.Errorf("%s: write: %w", file.url, err)
	}
	return n, nil
}

// Stream downloads url into w from offset 0, refusing files larger than limit. onSize sees the
// announced size (TFTP tsize, HTTP Content-Length) before any data; progress sees bytes so far.
func (f *netFetcher) Stream(ctx context.Context, url string, w io.WriterAt, limit int64, onSize func(int64) error, progress func(got, size int64)) (int64, error) {
	scheme, host, name, err := pxecfg.SplitURL(url)
	if err != nil {
		return 0, err
	}
	if f.stall > 0 {
		cw := &countingWriter{w: w}
		w = cw
		var stop func()
		ctx, stop = watchProgress(ctx, f.stall, cw, url, host)
		defer stop()
		n, err := f.stream(ctx, scheme, host, name, url, w, limit, onSize, progress)
		if err != nil {
			if cause := context.Cause(ctx); errors.As(cause, new(*stallError)) {
				return n, cause
			}
		}
		return n, err
	}
	return f.stream(ctx, scheme, host, name, url, w, limit, onSize, progress)
}

// watchProgress returns a context that is cancelled with a *stallError once cw gains fewer
// than stallFloor bytes in a period; stop ends the watch.
func watchProgress(parent context.Context, period time.Duration, cw *countingWriter, url, server string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		last := int64(0)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				now := cw.n.Load()
				if now-last < stallFloor {
					cancel(&stallError{url: url, server: server, period: period, got: now - last, total: now})
					return
				}
				last = now
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// countingWriter counts the bytes written through it (restarted HTTP downloads count again).
type countingWriter struct {
	w io.WriterAt
	n atomic.Int64
}

// WriteAt implements io.WriterAt.
func (c *countingWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// WritableAt implements httpfetch.LendingWriterAt when w does (nil otherwise); the bytes count
// when they are committed with WriteAt.
func (c *countingWriter) WritableAt(off int64, n int) []byte { return writableAt(c.w, off, n) }

// writableAt lends w's memory at off if w lends memory (boot.Mem does: the payload window).
func writableAt(w io.WriterAt, off int64, n int) []byte {
	if l, ok := w.(httpfetch.LendingWriterAt); ok {
		return l.WritableAt(off, n)
	}
	return nil
}

// stream runs one transfer with the scheme's client.
func (f *netFetcher) stream(ctx context.Context, scheme, host, name, url string, w io.WriterAt, limit int64, onSize func(int64) error, progress func(got, size int64)) (int64, error) {
	switch scheme {
	case "tftp":
		server, err := f.tftpServer(ctx, host)
		if err != nil {
			return 0, err
		}
		c := tftp.Client{Listen: f.listenUDP, Options: tftp.Options{MaxSize: limit, WindowSize: f.window, Pipeline: pipelineFor(f.window), OnSize: onSize, ProgressEvery: 4 << 20}}
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

// WritableAt implements httpfetch.LendingWriterAt when w does (nil otherwise).
func (o offsetWriter) WritableAt(off int64, n int) []byte { return writableAt(o.w, o.base+off, n) }
