package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"netipl/boot"
	"netipl/internal/testnet"
	"netipl/pxecfg"
)

// TestSniffedBootfileNotFetchedTwice: a boot file under pxecfg.SniffLimit that pxecfg sniffs as
// a kernel is placed from the sniffed bytes, not downloaded again; other files still stream.
func TestSniffedBootfileNotFetchedTwice(t *testing.T) {
	kernel := bytes.Repeat([]byte("kernel!"), 40000) // 280000 bytes, under SniffLimit
	other := bytes.Repeat([]byte("x"), 5000)
	var mu sync.Mutex
	rrqs := map[string]int{}
	host := testnet.PinTFTP(t, map[string][]byte{"kernel.img": kernel, "other.img": other}, func(name string) {
		mu.Lock()
		rrqs[name]++
		mu.Unlock()
	}).String()

	fe := &netFetcher{listenUDP: func() (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }}
	var out bytes.Buffer
	ld := &loading{fe: fe, mem: boot.NewMem(nil, 64<<20, nil, 64<<20), con: &console{w: &out}, server: host, layout: boot.Layout{RAM: 64 << 20}}
	ctx := context.Background()
	kurl, ourl := "tftp://"+host+"/kernel.img", "tftp://"+host+"/other.img"

	sniffed, err := fe.Fetch(ctx, kurl, pxecfg.SniffLimit)
	if err != nil || !bytes.Equal(sniffed, kernel) {
		t.Fatalf("Fetch(kernel) = %d bytes, %v", len(sniffed), err)
	}
	n, err := ld.fetchURL(ctx, kurl, 0, 64<<20)
	if err != nil || n != int64(len(kernel)) {
		t.Fatalf("fetchURL(kernel) = %d, %v", n, err)
	}
	got := make([]byte, len(kernel))
	if _, err := ld.mem.ReadAt(got, 0); err != nil || !bytes.Equal(got, kernel) {
		t.Errorf("kernel bytes in memory differ (%v)", err)
	}
	// The sniffed copy is used once: a second load of the same URL downloads it.
	if _, err := ld.fetchURL(ctx, kurl, 1<<20, 64<<20); err != nil {
		t.Fatalf("second fetchURL(kernel): %v", err)
	}
	// A file Fetch did not just return is streamed.
	if _, err := fe.Fetch(ctx, kurl, pxecfg.SniffLimit); err != nil {
		t.Fatal(err)
	}
	if _, err := ld.fetchURL(ctx, ourl, 2<<20, 64<<20); err != nil {
		t.Fatalf("fetchURL(other): %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if rrqs["kernel.img"] != 3 || rrqs["other.img"] != 1 {
		t.Errorf("read requests %v, want kernel.img 3 (sniff, second load, fetch) and other.img 1", rrqs)
	}
	if c := strings.Count(out.String(), "TFTP: Received kernel.img (273 KBytes) in "); c != 2 {
		t.Errorf("console has %d kernel Received lines, want 2:\n%s", c, out.String())
	}
}

// TestReplayTooLarge: a sniffed file over the load limit is refused as ErrTooLarge, before any
// byte is written.
func TestReplayTooLarge(t *testing.T) {
	var buf memBuffer
	_, err := replay(fetchedFile{url: "tftp://h/k", data: make([]byte, 100)}, &buf, 99, nil)
	if !errors.Is(err, pxecfg.ErrTooLarge) || len(buf.b) != 0 {
		t.Errorf("replay over limit = %v (%d bytes written), want ErrTooLarge and nothing written", err, len(buf.b))
	}
}

// TestPipelineFor: -window 1 (or 0) turns TFTP pipelining off with the window; otherwise it is
// at least tftpPipeline.
func TestPipelineFor(t *testing.T) {
	for _, tt := range []struct{ window, want int }{{0, 1}, {1, 1}, {2, 48}, {16, 48}, {48, 48}, {64, 64}} {
		if got := pipelineFor(tt.window); got != tt.want {
			t.Errorf("pipelineFor(%d) = %d, want %d", tt.window, got, tt.want)
		}
	}
}

// TestStreamLendsPayloadMemory: an HTTP download into payload memory goes through the loader's
// writers (progress counting, placement at a base address) into memory boot.Mem lends: the body
// lands in the mapped RAM, every byte is counted, and a writer that lends nothing still works.
func TestStreamLendsPayloadMemory(t *testing.T) {
	const ram = 8 << 20
	path := t.TempDir() + "/ram"
	if err := os.WriteFile(path, make([]byte, ram), 0o600); err != nil {
		t.Fatal(err)
	}
	dm, err := boot.OpenDevMem(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	mem := boot.NewMem(dm, ram, nil, 1<<20)
	defer mem.Close()

	// The wrappers lend what boot.Mem lends, at the placed address, and count committed bytes.
	const base = 3 << 20
	cw := &countingWriter{w: offsetWriter{mem, base}}
	lent := cw.WritableAt(10, 100)
	want := mem.WritableAt(base+10, 100)
	if len(lent) != 100 || &lent[0] != &want[0] {
		t.Fatalf("countingWriter{offsetWriter{Mem}}.WritableAt(10, 100) = %d bytes, not Mem's memory at base+10", len(lent))
	}
	copy(lent, "lent bytes")
	if n, err := cw.WriteAt(lent[:10], 10); n != 10 || err != nil || cw.n.Load() != 10 {
		t.Fatalf("commit = %d, %v; counted %d", n, err, cw.n.Load())
	}
	got := make([]byte, 10)
	if _, err := mem.ReadAt(got, base+10); err != nil || string(got) != "lent bytes" {
		t.Errorf("committed bytes read back %q, %v", got, err)
	}
	if b := (&countingWriter{w: &memBuffer{}}).WritableAt(0, 10); b != nil {
		t.Errorf("a writer that lends nothing lent %d bytes", len(b))
	}

	body := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "initrd", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	fe := &netFetcher{dial: (&net.Dialer{}).DialContext, stall: 10 * time.Second}
	n, err := fe.Stream(context.Background(), srv.URL+"/initrd", offsetWriter{mem, base}, ram-base, nil, nil)
	if err != nil || n != int64(len(body)) {
		t.Fatalf("Stream = %d, %v", n, err)
	}
	back := make([]byte, len(body))
	if _, err := mem.ReadAt(back, base); err != nil || !bytes.Equal(back, body) {
		t.Fatalf("payload memory differs from the body (%v)", err)
	}
	// Mapped memory is the file standing in for RAM: the body must be there, in place.
	if err := mem.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(file[base:base+len(body)], body) {
		t.Errorf("RAM file does not hold the body at %#x (%v)", base, err)
	}
}

// TestFetchBothReadings: a name with two readings (pxecfg.Source URL, then QEMU's Alt) loads
// from the first that exists; when neither loads, the one error names both.
func TestFetchBothReadings(t *testing.T) {
	files := map[string][]byte{"cfg/k.img": []byte("first reading"), "k.img": []byte("second reading"),
		"big.img": bytes.Repeat([]byte("b"), 3<<20)}
	host := testnet.PinTFTP(t, files, nil).String()
	fe := &netFetcher{listenUDP: func() (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }}
	ld := &loading{fe: fe, mem: boot.NewMem(nil, 64<<20, nil, 64<<20), con: &console{w: io.Discard}, server: host,
		layout: boot.Layout{RAM: 64 << 20}}
	url := func(name string) string { return "tftp://" + host + "/" + name }
	tests := []struct {
		url, alt string
		want     string // the URL loaded, or the error's text up to the server's answer
		notFound bool
	}{
		{url("cfg/k.img"), url("k.img"), url("cfg/k.img"), false},
		{url("cfg/nothere"), url("k.img"), url("k.img"), false},
		{url("cfg/nothere"), url("nothere"), "nothere not found (tried cfg/nothere, then nothere): ", true},
		{url("cfg/nothere"), "", `tftp RRQ "cfg/nothere"`, true},
		{url("cfg/nothere"), url("big.img"), "cfg/nothere not found, then big.img does not fit in RAM: 1 MiB free at 0x0 (", false},
	}
	for _, tt := range tests {
		limit := uint64(64 << 20)
		if strings.Contains(tt.alt, "big") {
			limit = 1 << 20
		}
		name := tt.url[strings.LastIndex(tt.url, "/")+1:]
		_, got, err := ld.fetch(context.Background(), pxecfg.Source{Name: name, URL: tt.url, Alt: tt.alt}, 0, limit)
		if strings.HasPrefix(tt.want, "tftp://") {
			if err != nil || got != tt.want {
				t.Errorf("fetch(%s, else %s) = %s, %v; want %s", tt.url, tt.alt, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || isNotFound(err) != tt.notFound {
			t.Errorf("fetch(%s, else %s) error = %v (not found: %v); want %q... (not found: %v)", tt.url, tt.alt, err, isNotFound(err), tt.want, tt.notFound)
		}
	}
}
