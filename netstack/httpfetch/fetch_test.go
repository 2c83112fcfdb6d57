package httpfetch

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"netipl/internal/testnet"
)

// pattern returns n bytes that differ block to block, so misplaced writes show.
func pattern(n int) []byte { return testnet.Pattern(n, 88172645) }

var hostDial = (&net.Dialer{}).DialContext

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// dropAfter writes the first n bytes of body with the full Content-Length, then kills the connection.
func dropAfter(w http.ResponseWriter, body []byte, n int, etag string) {
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
	w.Write(body[:n])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestGet(t *testing.T) {
	body := pattern(3<<20 + 5)
	modTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var requests atomic.Int32
	var lastRange atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "file", modTime, bytes.NewReader(body))
	})
	mux.HandleFunc("/drop", func(w http.ResponseWriter, r *http.Request) {
		lastRange.Store(r.Header.Get("Range") + "|" + r.Header.Get("If-Range"))
		if requests.Add(1) == 1 {
			dropAfter(w, body, 1<<20, `"v1"`)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "file", modTime, bytes.NewReader(body))
	})
	mux.HandleFunc("/drop-norange", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			dropAfter(w, body, 1<<20, `"v1"`)
			return
		}
		w.Write(body) // ignores Range: 200 with the whole file
	})
	mux.HandleFunc("/drop-changed", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			dropAfter(w, pattern(len(body)), 1<<20, `"old"`)
			return
		}
		w.Header().Set("ETag", `"new"`)
		http.ServeContent(w, r, "file", modTime, bytes.NewReader(body))
	})
	mux.HandleFunc("/drop-badrange", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			dropAfter(w, body, 1<<20, `"v1"`)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 5-%d/%d", len(body)-1, len(body)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body[5:])
	})
	mux.HandleFunc("/drop-weak", func(w http.ResponseWriter, r *http.Request) {
		lastRange.Store(r.Header.Get("Range") + "|" + r.Header.Get("If-Range"))
		w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
		if requests.Add(1) == 1 {
			dropAfter(w, body, 1<<20, `W/"v1"`) // a weak ETag cannot validate a range: Last-Modified must be sent
			return
		}
		http.ServeContent(w, r, "file", modTime, bytes.NewReader(body))
	})
	mux.HandleFunc("/drop-overlong", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			dropAfter(w, body, 1<<20, `"v1"`)
			return
		}
		// The right Content-Range, but a body (and Content-Length) running past the announced total.
		rest := append(append([]byte(nil), body[1<<20:]...), "trailing junk"...)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", 1<<20, len(body)-1, len(body)))
		w.Header().Set("Content-Length", fmt.Sprint(len(rest)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(rest)
	})
	mux.HandleFunc("/drop-resized", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			dropAfter(w, body, 1<<20, `"v1"`)
			return
		}
		// Starts at the right offset but announces another total: the file changed under the same ETag.
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", 1<<20, len(body)-1, len(body)+1))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body[1<<20:])
	})
	mux.HandleFunc("/partial-unasked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-9/100")
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body[:10])
	})
	mux.HandleFunc("/chunked-drop", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Write(body[:1<<20]) // no Content-Length: a dropped connection cannot be told from the end
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		http.ServeContent(w, r, "file", modTime, bytes.NewReader(body))
	})
	mux.HandleFunc("/huge-header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Padding", strings.Repeat("a", maxHeaderBytes))
		w.Write(body[:10])
	})
	mux.HandleFunc("/drop-always", func(w http.ResponseWriter, r *http.Request) {
		dropAfter(w, body, 10, `"v1"`)
	})
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Header().Set("ETag", `"v1"`)
			w.Write(body[:1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // never sends the rest
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "file", modTime, bytes.NewReader(body))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			w.Write(body[i<<20 : (i+1)<<20])
			w.(http.Flusher).Flush()
		}
	})
	mux.Handle("/r1", http.RedirectHandler("/r2", http.StatusFound))
	mux.Handle("/r2", http.RedirectHandler("/file", http.StatusMovedPermanently))
	mux.Handle("/loop", http.RedirectHandler("/loop", http.StatusFound))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tt := range []struct {
		name     string
		path     string
		c        Client
		wantErr  string
		wantIs   error
		wantRes  Result
		wantBody []byte
		check    func(t *testing.T)
	}{
		{name: "plain", path: "/file", wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body))}},
		{name: "redirects", path: "/r1", wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body)), Redirects: 2}},
		{name: "redirect loop", path: "/loop", wantErr: "more than 10 redirects"},
		{name: "not found", path: "/nope", wantErr: `/nope": server answered 404 Not Found`, wantIs: ErrNotFound},
		{name: "resume after drop", path: "/drop", wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body)), Resumes: 1},
			check: func(t *testing.T) {
				if got := lastRange.Load(); got != `bytes=1048576-|"v1"` {
					t.Errorf("resume request Range|If-Range = %q, want bytes=1048576-|\"v1\"", got)
				}
			}},
		{name: "server ignores range", path: "/drop-norange", wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body)), Resumes: 1, Restarts: 1}},
		{name: "file changed", path: "/drop-changed", wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body)), Resumes: 1, Restarts: 1}},
		{name: "weak ETag", path: "/drop-weak", wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body)), Resumes: 1},
			check: func(t *testing.T) {
				if got, want := lastRange.Load(), "bytes=1048576-|"+modTime.Format(http.TimeFormat); got != want {
					t.Errorf("resume request Range|If-Range = %q, want %q", got, want)
				}
			}},
		{name: "resumed body past the total", path: "/drop-overlong", wantErr: "server sent more than Content-Length 3145733"},
		{name: "resumed total differs", path: "/drop-resized", wantErr: `resume at 1048576: bad Content-Range "bytes 1048576-3145732/3145734" (total 3145733)`},
		{name: "206 to a request without Range", path: "/partial-unasked", wantErr: "server answered 206 Partial Content"},
		{name: "drop without Content-Length", path: "/chunked-drop",
			wantErr: "connection lost after 1048576 bytes of a response without Content-Length"},
		{name: "header block too large", path: "/huge-header", wantErr: "server response headers exceeded 65536 bytes"},
		{name: "bad content-range", path: "/drop-badrange", wantErr: `resume at 1048576: bad Content-Range "bytes 5-`},
		{name: "keeps dropping", path: "/drop-always", c: Client{Resumes: 2},
			wantErr: "after 10 of 3145733 bytes: "},
		{name: "stalled server", path: "/stall", c: Client{ResponseTimeout: 200 * time.Millisecond}, wantBody: body,
			wantRes: Result{Size: int64(len(body)), ContentLength: int64(len(body)), Resumes: 1}},
		{name: "too large by Content-Length", path: "/file", c: Client{MaxSize: 1 << 20},
			wantErr: "file exceeds size limit: Content-Length 3145733 bytes, limit 1048576", wantIs: ErrTooLarge},
		{name: "too large while reading", path: "/chunked", c: Client{MaxSize: 1 << 20},
			wantErr: "file exceeds size limit: more than 1048576 bytes", wantIs: ErrTooLarge},
		{name: "chunked", path: "/chunked", wantBody: body[:3<<20],
			wantRes: Result{Size: 3 << 20, ContentLength: -1}},
	} {
		for _, lend := range []bool{false, true} {
			name := tt.name
			if lend {
				name += " lent"
			}
			t.Run(name, func(t *testing.T) {
				requests.Store(0)
				c := tt.c
				c.Dial = hostDial
				mf := &testnet.MemFile{}
				var m io.WriterAt = mf
				written := func() []byte { return mf.Bytes }
				var lf *lendingFile
				if lend {
					// Lends at most 100000 bytes at a time and refuses every third request: the body
					// arrives both ways, in pieces that do not line up with the reads.
					lf = newLendingFile(4<<20, 100000, 3, false)
					m, written = lf, lf.bytes
				}
				// A wall-clock guard: a client that waits forever fails the case instead of hanging the test binary.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				res, err := c.Get(ctx, srv.URL+tt.path, m)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("Get(%s) = %v, want error containing %q", tt.path, err, tt.wantErr)
					}
					if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
						t.Errorf("Get(%s) = %v, want errors.Is %v", tt.path, err, tt.wantIs)
					}
					if !strings.HasPrefix(err.Error(), `http GET "`+srv.URL+tt.path+`": `) {
						t.Errorf("Get(%s) error %q lacks operation and object", tt.path, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Get(%s) = %v", tt.path, err)
				}
				if !bytes.Equal(written(), tt.wantBody) {
					t.Errorf("Get(%s) wrote %d bytes, want %d", tt.path, len(written()), len(tt.wantBody))
				}
				res.URL = ""
				if lend {
					if res.InPlace == 0 || lf.inPlace == 0 || lf.copied == 0 || lf.guardTouched() {
						t.Errorf("Get(%s) with a lender: %d reads in place, %d in-place and %d copied commits, guard touched %v",
							tt.path, res.InPlace, lf.inPlace, lf.copied, lf.guardTouched())
					}
					res.InPlace = 0
				}
				if res != tt.wantRes {
					t.Errorf("Get(%s) = %+v, want %+v", tt.path, res, tt.wantRes)
				}
				if tt.check != nil {
					tt.check(t)
				}
			})
		}
	}
}

// lendingFile is a fixed window of memory followed by guard bytes, lending the window
// (LendingWriterAt) like boot.Mem lends the payload window.
type lendingFile struct {
	mu      sync.Mutex
	mem     []byte // window, then guard
	window  int
	hi      int // end of what was committed
	maxLend int // most bytes lent at once
	refuse  int // every refuse-th WritableAt returns nil (0: never)
	overLen bool
	calls   int
	inPlace int // commits of lent memory
	copied  int // commits from another buffer
}

const guardByte = 0xa5

func newLendingFile(window, maxLend, refuse int, overLen bool) *lendingFile {
	mem := make([]byte, window+4096)
	for i := window; i < len(mem); i++ {
		mem[i] = guardByte
	}
	return &lendingFile{mem: mem, window: window, maxLend: maxLend, refuse: refuse, overLen: overLen}
}

// WritableAt lends up to maxLend bytes of the window; with overLen it hands out everything from
// off on, guard included, as a careless writer might.
func (l *lendingFile) WritableAt(off int64, n int) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if off < 0 || off >= int64(l.window) || n <= 0 || (l.refuse > 0 && l.calls%l.refuse == 0) {
		return nil
	}
	if l.overLen {
		return l.mem[off:]
	}
	end := min(int(off)+min(n, l.maxLend), l.window)
	return l.mem[off:end:end]
}

func (l *lendingFile) WriteAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if off < 0 || int(off)+len(p) > l.window {
		return 0, fmt.Errorf("write [%d, %d) outside the %d-byte window", off, int(off)+len(p), l.window)
	}
	if len(p) > 0 && &p[0] == &l.mem[off] {
		l.inPlace++
	} else {
		copy(l.mem[off:], p)
		l.copied++
	}
	l.hi = max(l.hi, int(off)+len(p))
	return len(p), nil
}

func (l *lendingFile) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.mem[:l.hi]...)
}

func (l *lendingFile) guardTouched() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.mem[l.window:] {
		if b != guardByte {
			return true
		}
	}
	return false
}

// rawServer answers every connection with resp verbatim, in pieces of at most piece bytes (0:
// at once), and closes it.
func rawServer(t *testing.T, resp []byte, piece int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 4096)) // the request
				for b := resp; len(b) > 0; {
					k := len(b)
					if piece > 0 {
						k = min(k, piece)
					}
					if _, err := c.Write(b[:k]); err != nil {
						return
					}
					b = b[k:]
					if piece > 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/f"
}

// TestLendingWindowBounds: a body read straight into lent memory never reaches past what the
// size checks allow, whatever the server sends or the writer lends.
func TestLendingWindowBounds(t *testing.T) {
	body := pattern(5000)
	chunked := func(n int) []byte {
		return []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", n, body[:n]))
	}
	withLength := func(announced, sent int) []byte {
		return append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", announced)), body[:sent]...)
	}
	for _, tt := range []struct {
		name     string
		resp     []byte
		piece    int
		maxSize  int64
		window   int
		maxLend  int
		overLen  bool
		wantErr  string
		wantBody int
	}{
		{name: "more than Content-Length, careless lender", resp: withLength(1000, 5000), window: 1000, overLen: true, wantBody: 1000},
		{name: "more than Content-Length in small pieces", resp: withLength(1000, 5000), piece: 7, window: 1000, maxLend: 64, wantBody: 1000},
		{name: "chunked over MaxSize, careless lender", resp: chunked(1001), maxSize: 1000, window: 1000, overLen: true,
			wantErr: "file exceeds size limit: more than 1000 bytes"},
		{name: "chunked over MaxSize in small pieces", resp: chunked(5000), piece: 13, maxSize: 1000, window: 1000, maxLend: 300,
			wantErr: "file exceeds size limit: more than 1000 bytes"},
		{name: "chunked exactly MaxSize", resp: chunked(1000), maxSize: 1000, window: 1000, overLen: true, wantBody: 1000},
		{name: "short reads, short lends", resp: withLength(5000, 5000), piece: 11, window: 5000, maxLend: 17, wantBody: 5000},
		{name: "short body", resp: withLength(5000, 3000), window: 5000, maxLend: 4096, wantErr: "after 3000 of 5000 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lf := newLendingFile(tt.window, tt.maxLend, 0, tt.overLen)
			c := Client{Dial: hostDial, MaxSize: tt.maxSize, Resumes: -1, ResponseTimeout: 5 * time.Second}
			res, err := c.Get(context.Background(), rawServer(t, tt.resp, tt.piece), lf)
			if lf.guardTouched() {
				t.Errorf("bytes written past the %d-byte window", tt.window)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Get = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			if got := lf.bytes(); res.Size != int64(tt.wantBody) || !bytes.Equal(got, body[:tt.wantBody]) {
				t.Errorf("Get wrote %d bytes (Size %d), want the first %d of the body", len(got), res.Size, tt.wantBody)
			}
			if res.InPlace == 0 || lf.copied != 0 {
				t.Errorf("%d reads in place, %d copied commits: want every byte read in place", res.InPlace, lf.copied)
			}
		})
	}
}

// TestConnectTimeout: a connect that never completes (a SYN into a black hole) ends after ResponseTimeout.
func TestConnectTimeout(t *testing.T) {
	blackHole := func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Second): // a guard: the test fails instead of hanging
			return nil, errors.New("dial was not cancelled")
		}
	}
	c := &Client{Dial: blackHole, ResponseTimeout: 50 * time.Millisecond}
	_, err := c.Get(context.Background(), "http://10.9.9.9/kernel", &testnet.MemFile{})
	want := `http GET "http://10.9.9.9/kernel": connect to 10.9.9.9:80: context deadline exceeded`
	if err == nil || err.Error() != want {
		t.Errorf("Get through a black hole = %v, want %q", err, want)
	}
}

func TestOnSize(t *testing.T) {
	body := pattern(5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", testTime, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	var seen []int64
	refuse := errors.New("no room")
	c := &Client{Dial: hostDial, OnSize: func(n int64) error { seen = append(seen, n); return refuse }}
	m := &testnet.MemFile{}
	_, err := c.Get(context.Background(), srv.URL+"/f", m)
	if !errors.Is(err, refuse) || len(m.Bytes) != 0 || fmt.Sprint(seen) != "[5000]" {
		t.Errorf("Get with a refusing OnSize = %v, %d bytes written, sizes %v; want the refusal before any byte", err, len(m.Bytes), seen)
	}
}

func TestHTTPS(t *testing.T) {
	body := pattern(100000)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	c := &Client{Dial: hostDial, RootCAs: pool}
	m := &testnet.MemFile{}
	if _, err := c.Get(context.Background(), srv.URL+"/k", m); err != nil || !bytes.Equal(m.Bytes, body) {
		t.Fatalf("Get over HTTPS with the server's CA = %v (%d bytes)", err, len(m.Bytes))
	}
	// The committed roots.pem holds no certificate, so the built-in pool must refuse the test CA.
	c = &Client{Dial: hostDial}
	_, err := c.Get(context.Background(), srv.URL+"/k", &testnet.MemFile{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Get over HTTPS with built-in roots = %v, want a certificate error", err)
	}
	// An https → http redirect is refused.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(plain.Close)
	down := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/x", http.StatusFound))
	t.Cleanup(down.Close)
	pool.AddCert(down.Certificate())
	c = &Client{Dial: hostDial, RootCAs: pool}
	_, err = c.Get(context.Background(), down.URL+"/k", &testnet.MemFile{})
	if err == nil || !strings.Contains(err.Error(), "redirect from https to http refused") {
		t.Errorf("Get with https→http redirect = %v, want refusal", err)
	}
}

func TestParseRoots(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	var pemText bytes.Buffer
	pemText.WriteString("comment\n")
	pemText.Write(pemEncode(srv.Certificate().Raw))
	pemText.WriteString("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	if _, n := parseRoots(pemText.Bytes()); n != 1 {
		t.Errorf("parseRoots(one cert, one key, comments) = %d certificates, want 1", n)
	}
	if _, n := BuiltinRoots(); n != 0 {
		t.Logf("built-in roots.pem carries %d certificates (replaced at build time)", n)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tt := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-9/10", 0, 10, true},
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 100-199/*", 0, 0, false},
		{"bytes 5-4/10", 0, 0, false},
		{"bytes 0-10/10", 0, 0, false},
		{"items 0-9/10", 0, 0, false},
		{"bytes -5/10", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, total, err := parseContentRange(tt.in)
		if (err == nil) != tt.ok || start != tt.start || total != tt.total {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, start, total, err, tt.start, tt.total, tt.ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 0-9/10")
	f.Add("bytes 1-1/2")
	f.Fuzz(func(t *testing.T, s string) {
		start, total, err := parseContentRange(s)
		if err == nil && (start < 0 || total <= start) {
			t.Errorf("parseContentRange(%q) = %d, %d accepted", s, start, total)
		}
	})
}
