package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"netipl/boot"
)

// Adversarial review of HTTP bodies read straight into lent payload memory (3a86036): the
// loader's real writer chain (countingWriter, offsetWriter) over a real boot.Mem — mapped RAM
// (a file) with a range netipl "uses" (buffered in loader memory) and 16 MiB chunk boundaries —
// against a raw HTTP server that lies: more than Content-Length, chunked or close-delimited
// bodies past the part, a reset mid-body with a resume, a restart with another file, a bad
// Content-Range. The part is [base, base+limit); guard bytes committed right after it (or the
// end of RAM) must survive, the part must hold exactly the file, and errors must say why.

const (
	lendRAM   = 40 << 20
	lendGuard = 4096
)

// lendRig is payload memory over a RAM file, with [usedStart, usedStart+usedSize) buffered.
type lendRig struct {
	path string
	mem  *boot.Mem
}

const (
	usedStart = 15<<20 + 512<<10 // crosses the first chunk boundary (16 MiB)
	usedSize  = 1 << 20
)

func newLendRig(t *testing.T) *lendRig {
	t.Helper()
	path := t.TempDir() + "/ram"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(lendRAM); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dm, err := boot.OpenDevMem(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Close() })
	mem := boot.NewMem(dm, lendRAM, []boot.Range{{Start: usedStart, Size: usedSize}}, 8<<20)
	t.Cleanup(func() { mem.Close() })
	return &lendRig{path: path, mem: mem}
}

// guard commits a recognisable pattern at [at, at+lendGuard) (what another part placed there).
func (r *lendRig) guard(t *testing.T, at int64) []byte {
	t.Helper()
	g := bytes.Repeat([]byte{0x5a, 0xc3}, lendGuard/2)
	if _, err := r.mem.WriteAt(g, at); err != nil {
		t.Fatal(err)
	}
	return g
}

// read returns n committed bytes at off.
func (r *lendRig) read(t *testing.T, off int64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := r.mem.ReadAt(b, off); err != nil {
		t.Fatalf("read back [%#x, +%d): %v", off, n, err)
	}
	return b
}

// lendBody is n bytes that differ at every offset class (an off-by-one shows).
func lendBody(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) ^ byte(i>>8)*7 ^ byte(i>>16)*13 ^ seed
	}
	return b
}

// hostileServer answers the i-th request (0-based) with answer(i, request line + headers, conn);
// the handler writes whatever it likes and returns; the connection is then closed.
func hostileServer(t *testing.T, answer func(i int, req string, c *net.TCPConn)) (url string, requests *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	requests = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c *net.TCPConn) {
				defer c.Close()
				br := bufio.NewReader(c)
				var req strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					req.WriteString(line)
					if line == "\r\n" {
						break
					}
				}
				answer(int(requests.Add(1)-1), req.String(), c)
			}(c.(*net.TCPConn))
		}
	}()
	return "http://" + ln.Addr().String() + "/initrd", requests
}

// reset closes c with a TCP RST (a connection reset mid-body).
func reset(c *net.TCPConn) { c.SetLinger(0); c.Close() }

func TestLendAdversarial(t *testing.T) {
	const size = 3<<20 + 12345 // crosses the used range and the 16 MiB chunk boundary
	file := lendBody(size, 1)
	hdr := func(status string, extra string) []byte {
		return []byte("HTTP/1.1 " + status + "\r\n" + extra + "Connection: close\r\n\r\n")
	}
	cl := func(n int) string { return fmt.Sprintf("Content-Length: %d\r\n", n) }
	chunk := func(b []byte) []byte { return append(fmt.Appendf(nil, "%x\r\n", len(b)), append(b, "\r\n"...)...) }

	for _, tt := range []struct {
		name    string
		base    int64 // where the part starts
		limit   int64 // the part's size (MaxSize); guard bytes follow unless it ends RAM
		answer  func(i int, req string, c *net.TCPConn)
		wantN   int      // bytes of file expected in the part (0: an error is expected)
		wantErr []string // substrings of the error
		reqs    int      // requests expected (0: not checked)
	}{
		{name: "more than Content-Length", base: 13 << 20, limit: size,
			answer: func(_ int, _ string, c *net.TCPConn) {
				c.Write(hdr("200 OK", cl(size)))
				c.Write(file)
				c.Write(lendBody(1<<20, 9)) // past the announced size and the part
			}, wantN: size},
		{name: "Content-Length over the part", base: 13 << 20, limit: size - 1,
			answer: func(_ int, _ string, c *net.TCPConn) {
				c.Write(hdr("200 OK", cl(size)))
				c.Write(file)
			}, wantErr: []string{"does not fit in RAM", "Content-Length 3158073 bytes, limit 3158072"}},
		{name: "chunked past the part", base: 13 << 20, limit: size,
			answer: func(_ int, _ string, c *net.TCPConn) {
				c.Write(hdr("200 OK", "Transfer-Encoding: chunked\r\n"))
				for b := append(append([]byte{}, file...), lendBody(70000, 3)...); len(b) > 0; {
					k := min(len(b), 65536+333)
					c.Write(chunk(b[:k]))
					b = b[k:]
				}
				c.Write([]byte("0\r\n\r\n"))
			}, wantErr: []string{"does not fit in RAM", "more than 3158073 bytes"}},
		{name: "close-delimited past the end of RAM", base: lendRAM - size, limit: size,
			answer: func(_ int, _ string, c *net.TCPConn) {
				c.Write(hdr("200 OK", ""))
				c.Write(file)
				c.Write([]byte("one byte too many"))
			}, wantErr: []string{"does not fit in RAM", "more than 3158073 bytes"}},
		{name: "close-delimited, exactly the part at the end of RAM", base: lendRAM - size, limit: size,
			answer: func(_ int, _ string, c *net.TCPConn) {
				c.Write(hdr("200 OK", ""))
				c.Write(file)
			}, wantN: size},
		{name: "chunked, shorter than the part", base: 13 << 20, limit: size + 5000,
			answer: func(_ int, _ string, c *net.TCPConn) {
				c.Write(hdr("200 OK", "Transfer-Encoding: chunked\r\n"))
				for b := file; len(b) > 0; {
					k := min(len(b), 1000003)
					c.Write(chunk(b[:k]))
					b = b[k:]
				}
				c.Write([]byte("0\r\n\r\n"))
			}, wantN: size},
		{name: "reset mid-body, resumed", base: 13 << 20, limit: size,
			answer: func(i int, req string, c *net.TCPConn) {
				if i == 0 {
					c.Write(hdr("200 OK", cl(size)+"ETag: \"v1\"\r\n"))
					c.Write(file[:usedStart-13<<20+777]) // stops inside the buffered range
					time.Sleep(50 * time.Millisecond)
					reset(c)
					return
				}
				var from int
				if _, err := fmt.Sscanf(req[strings.Index(req, "Range: bytes=")+len("Range: bytes="):], "%d-", &from); err != nil {
					return
				}
				c.Write(hdr("206 Partial Content", cl(size-from)+fmt.Sprintf("Content-Range: bytes %d-%d/%d\r\n", from, size-1, size)))
				c.Write(file[from:])
			}, wantN: size, reqs: 2},
		{name: "resumed from the wrong offset", base: 13 << 20, limit: size,
			answer: func(i int, req string, c *net.TCPConn) {
				if i == 0 {
					c.Write(hdr("200 OK", cl(size)+"ETag: \"v1\"\r\n"))
					c.Write(file[:1<<20])
					time.Sleep(50 * time.Millisecond)
					reset(c)
					return
				}
				c.Write(hdr("206 Partial Content", cl(size-100)+fmt.Sprintf("Content-Range: bytes 100-%d/%d\r\n", size-1, size)))
				c.Write(file[100:])
			}, wantErr: []string{"bad Content-Range"}},
		{name: "restarted with a shorter file", base: 13 << 20, limit: size,
			answer: func(i int, req string, c *net.TCPConn) {
				if i == 0 {
					c.Write(hdr("200 OK", cl(size)+"ETag: \"v1\"\r\n"))
					c.Write(lendBody(size, 77)[:2<<20])
					time.Sleep(50 * time.Millisecond)
					reset(c)
					return
				}
				c.Write(hdr("200 OK", cl(size-(1<<20))+"ETag: \"v2\"\r\n")) // the file changed: a new 200
				c.Write(file[:size-(1<<20)])
			}, wantN: size - 1<<20, reqs: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newLendRig(t)
			end := tt.base + tt.limit
			var g []byte
			if end+lendGuard <= lendRAM {
				g = r.guard(t, end)
			}
			gBefore := r.guard(t, tt.base-lendGuard) // what the previous part left there
			url, reqs := hostileServer(t, tt.answer)
			ld := &loading{mem: r.mem, fe: &netFetcher{dial: (&net.Dialer{}).DialContext, stall: 10 * time.Second},
				layout: boot.Layout{RAM: lendRAM}, con: &console{w: io.Discard}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := ld.fetchURL(ctx, url, uint64(tt.base), uint64(tt.limit))
			if g != nil {
				if got := r.read(t, end, lendGuard); !bytes.Equal(got, g) {
					t.Errorf("the bytes after the part changed (at %#x: %x...)", end+int64(firstDifference(got, g)), got[firstDifference(got, g)])
				}
			}
			if b := r.read(t, tt.base-lendGuard, lendGuard); !bytes.Equal(b, gBefore) {
				t.Errorf("the bytes before the part changed")
			}
			if tt.wantN == 0 {
				if err == nil {
					t.Fatalf("fetch = %d bytes, want an error", n)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if n != int64(tt.wantN) {
				t.Fatalf("fetch = %d bytes, want %d", n, tt.wantN)
			}
			if got := r.read(t, tt.base, tt.wantN); !bytes.Equal(got, file[:tt.wantN]) {
				i := firstDifference(got, file)
				t.Fatalf("the part differs from the file at offset %d (%#x)", i, tt.base+int64(i))
			}
			if tt.reqs > 0 && int(reqs.Load()) != tt.reqs {
				t.Errorf("%d requests, want %d", reqs.Load(), tt.reqs)
			}
			// The buffered range is loader memory: the RAM file must not hold its bytes (they are
			// placed at the jump), and mapped bytes must be in the file.
			r.mem.Close()
			ram, err := os.ReadFile(r.path)
			if err != nil {
				t.Fatal(err)
			}
			for a := tt.base; a < tt.base+int64(tt.wantN); a += 4096 {
				inUsed := a >= usedStart && a < usedStart+usedSize
				want := file[a-tt.base]
				if inUsed {
					want = 0
				}
				if ram[a] != want {
					t.Fatalf("RAM file at %#x (used range %v): %#x, want %#x", a, inUsed, ram[a], want)
				}
			}
		})
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
