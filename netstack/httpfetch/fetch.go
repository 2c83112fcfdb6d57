package httpfetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults for Client fields left zero.
const (
	DefaultMaxRedirects  = 10
	DefaultResumes       = 5
	DefaultProgressEvery = 1 << 20
	bufferSize           = 256 << 10
	// maxHeaderBytes bounds a response's header block (net/http's default is 10 MiB, a lot of a small guest's
	// memory for a hostile server to fill); real boot servers send well under 1 KiB.
	maxHeaderBytes = 64 << 10
)

// Sentinels for callers that branch (errors.Is).
var (
	// ErrTooLarge means the file is bigger than Client.MaxSize.
	ErrTooLarge = errors.New("file exceeds size limit")
	// ErrNotFound means the server answered 404 or 410.
	ErrNotFound = errors.New("file not found")
)

// StatusError is a final HTTP status other than 200/206.
type StatusError struct {
	Code   int
	Status string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string { return "server answered " + e.Status }

// Is makes errors.Is(err, ErrNotFound) true for 404 and 410.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == http.StatusNotFound || e.Code == http.StatusGone)
}

// Progress is a snapshot of a running download.
type Progress struct {
	Received int64 // bytes written so far (restarts count from 0 again)
	Size     int64 // Content-Length, or -1
	Done     bool
}

// Result describes a finished download.
type Result struct {
	Size          int64  // bytes written
	ContentLength int64  // from the first response, or -1
	URL           string // final URL after redirects
	Redirects     int
	Resumes       int // Range requests after a dropped connection
	Restarts      int // downloads started again from 0 (server ignored Range, or the file changed)
	InPlace       int // body reads that went straight into memory the writer lent (LendingWriterAt)
}

// LendingWriterAt is an io.WriterAt that can lend its destination memory, so Get reads the body
// straight into it instead of into a buffer it then copies from (boot.Mem lends the payload
// window: one copy per byte less). WritableAt returns the destination of [off, off+k) for some
// 0 < k <= n, or nil when it cannot lend that memory (Get then uses its buffer). Get fills a
// prefix of the lent slice and commits it with WriteAt(prefix, off), which the writer should
// recognise as in place and not copy; writers that wrap another forward both methods.
//
// Get never asks for more than the announced size (Content-Length) and MaxSize leave, and cuts
// a longer slice to what it asked for, so a server sending more than it announced cannot reach
// past the destination: bytes beyond what may be written are read into Get's own buffer and end
// the download with an error.
type LendingWriterAt interface {
	io.WriterAt
	WritableAt(off int64, n int) []byte
}

// Client downloads files. Dial must be set.
type Client struct {
	// Dial opens a TCP connection: gonet.DialContextTCP over the gVisor stack in the guest, a net.Dialer on the host.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies HTTPS servers; nil means BuiltinRoots.
	RootCAs *x509.CertPool
	// MaxSize is the largest file accepted, in bytes; 0 means no limit.
	MaxSize int64
	// MaxRedirects bounds the redirect chain; 0 means DefaultMaxRedirects.
	MaxRedirects int
	// Resumes bounds Range requests after dropped connections; 0 means DefaultResumes, negative means none.
	Resumes int
	// ResponseTimeout bounds the TCP connect, the wait for response headers and each read stall (TLS handshake
	// and body included); 0 means 30 s.
	ResponseTimeout time.Duration
	// OnSize, if set, is called with Content-Length before any body byte is written (once per full response), so
	// the caller can place the file or refuse it; an error ends the download and is returned wrapped.
	OnSize func(size int64) error
	// Progress, if set, is called whenever another ProgressEvery bytes have arrived, and at the end.
	Progress      func(Progress)
	ProgressEvery int64
	// UserAgent is sent with every request; empty means "netipl".
	UserAgent string
}

// Get downloads rawURL into w from offset 0. Errors read like
// `http GET "http://10.0.2.2/vmlinuz": server answered 404 Not Found`.
func (c *Client) Get(ctx context.Context, rawURL string, w io.WriterAt) (Result, error) {
	res, err := c.get(ctx, rawURL, w)
	if err != nil {
		return res, fmt.Errorf("http GET %q: %w", rawURL, err)
	}
	return res, nil
}

func (c *Client) get(ctx context.Context, rawURL string, w io.WriterAt) (Result, error) {
	res := Result{ContentLength: -1, URL: rawURL}
	if c.Dial == nil {
		return res, errors.New("no dialer (Client.Dial is nil)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return res, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return res, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	maxRedirects := c.MaxRedirects
	if maxRedirects <= 0 {
		maxRedirects = DefaultMaxRedirects
	}
	resumes := c.Resumes
	if resumes == 0 {
		resumes = DefaultResumes
	}
	timeout := c.ResponseTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	every := c.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	roots := c.RootCAs
	if roots == nil {
		roots, _ = BuiltinRoots()
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// A SYN into a black hole must not wait for the stack's own retry limit (minutes).
			dialCtx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			conn, err := c.Dial(dialCtx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("connect to %s: %w", addr, err)
			}
			return &stallConn{Conn: conn, timeout: timeout}, nil
		},
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableCompression:     true,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConnsPerHost:    1,
		ForceAttemptHTTP2:      false,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
			}
			res.Redirects++
			return nil
		},
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "netipl"
	}

	var (
		pos        int64
		total      int64  = -1 // expected size of the entity
		validator  string      // ETag or Last-Modified for If-Range
		target     = rawURL
		nextReport = every
		buf        = make([]byte, bufferSize)
	)
	lender, _ := w.(LendingWriterAt)
	report := func(done bool) {
		if c.Progress != nil {
			c.Progress(Progress{Received: pos, Size: total, Done: done})
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return res, err
		}
		req.Header.Set("User-Agent", ua)
		ranged := pos > 0
		if ranged {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", pos))
			if validator != "" {
				req.Header.Set("If-Range", validator)
			}
		}
		resp, err := hc.Do(req)
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // Get names the operation and the URL already
		}
		if err != nil {
			if attempt < resumes && pos > 0 && ctx.Err() == nil && total >= 0 {
				res.Resumes++
				continue
			}
			return res, err
		}
		target = resp.Request.URL.String()
		res.URL = target
		switch {
		case resp.StatusCode == http.StatusOK:
			if pos > 0 {
				res.Restarts++
				pos, nextReport = 0, every
			}
			total = resp.ContentLength
			if attempt == 0 || res.ContentLength < 0 {
				res.ContentLength = total
			}
			if v := resp.Header.Get("ETag"); v != "" && !strings.HasPrefix(v, "W/") {
				validator = v
			} else {
				validator = resp.Header.Get("Last-Modified")
			}
		case resp.StatusCode == http.StatusPartialContent && ranged:
			start, size, err := parseContentRange(resp.Header.Get("Content-Range"))
			if err != nil || start != pos || (total >= 0 && size != total) {
				resp.Body.Close()
				return res, fmt.Errorf("resume at %d: bad Content-Range %q (total %d)", pos,
					resp.Header.Get("Content-Range"), total)
			}
		default:
			resp.Body.Close()
			return res, &StatusError{Code: resp.StatusCode, Status: resp.Status}
		}
		if c.MaxSize > 0 && total > c.MaxSize {
			resp.Body.Close()
			return res, fmt.Errorf("%w: Content-Length %d bytes, limit %d", ErrTooLarge, total, c.MaxSize)
		}
		if c.OnSize != nil && total >= 0 && resp.StatusCode == http.StatusOK {
			if err := c.OnSize(total); err != nil {
				resp.Body.Close()
				return res, err
			}
		}
		readErr := func() error {
			defer resp.Body.Close()
			for {
				dst := buf
				if lender != nil {
					// Lend only what may still be written: the rest of the announced size and of MaxSize.
					want := int64(len(buf))
					if total >= 0 {
						want = min(want, total-pos)
					}
					if c.MaxSize > 0 {
						want = min(want, c.MaxSize-pos)
					}
					if want > 0 {
						if lent := lender.WritableAt(pos, int(want)); len(lent) > 0 {
							k := min(len(lent), int(want))
							dst = lent[:k:k]
							res.InPlace++
						}
					}
				}
				n, err := resp.Body.Read(dst)
				if n > 0 {
					if c.MaxSize > 0 && pos+int64(n) > c.MaxSize {
						return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.MaxSize)
					}
					if total >= 0 && pos+int64(n) > total {
						return fmt.Errorf("server sent more than Content-Length %d", total)
					}
					if _, werr := w.WriteAt(dst[:n], pos); werr != nil {
						return fmt.Errorf("write at offset %d: %w", pos, werr)
					}
					pos += int64(n)
					res.Size = pos
					if pos >= nextReport {
						report(false)
						nextReport = pos + every
					}
				}
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return &dropError{err}
				}
			}
		}()
		var drop *dropError
		switch {
		case readErr == nil && (total < 0 || pos == total):
			report(true)
			return res, nil
		case readErr == nil:
			readErr = &dropError{fmt.Errorf("connection closed after %d of %d bytes", pos, total)}
			drop = readErr.(*dropError)
		case errors.As(readErr, &drop):
		default:
			return res, readErr
		}
		// A dropped connection: resume only when the size is known (otherwise truncation is undetectable).
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if total < 0 {
			return res, fmt.Errorf("connection lost after %d bytes of a response without Content-Length: %w", pos, drop.err)
		}
		if attempt >= resumes {
			return res, fmt.Errorf("after %d of %d bytes: %w", pos, total, drop.err)
		}
		res.Resumes++
	}
}

// dropError marks a body read failure (connection reset, unexpected EOF, timeout) that a Range request may repair.
type dropError struct{ err error }

func (e *dropError) Error() string { return e.err.Error() }
func (e *dropError) Unwrap() error { return e.err }

// parseContentRange decodes "bytes START-END/TOTAL" (RFC 9110 §14.4).
func parseContentRange(s string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("content range %q: not a byte range", s)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("content range %q: no total", s)
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content range %q: no range", s)
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || total <= end {
		return 0, 0, fmt.Errorf("content range %q: bad numbers", s)
	}
	return start, total, nil
}

// stallConn fails a read that waits longer than timeout, so a server that stops sending mid-body cannot hang the
// download (the read error then triggers a Range resume).
type stallConn struct {
	net.Conn
	timeout time.Duration
}

func (c *stallConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}
