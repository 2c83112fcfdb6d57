package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"netipl/boot"
	"netipl/pxecfg"
)

// TestSniffedBootfileNotFetchedTwice: a boot file under pxecfg.SniffLimit that pxecfg sniffs as
// a kernel is placed from the sniffed bytes, not downloaded again; other files still stream.
func TestSniffedBootfileNotFetchedTwice(t *testing.T) {
	kernel := bytes.Repeat([]byte("kernel!"), 40000) // 280000 bytes, under SniffLimit
	other := bytes.Repeat([]byte("x"), 5000)
	var mu sync.Mutex
	rrqs := map[string]int{}
	srv := pintftp.NewServer(func(name string, rf io.ReaderFrom) error {
		mu.Lock()
		rrqs[name]++
		mu.Unlock()
		b := map[string][]byte{"kernel.img": kernel, "other.img": other}[name]
		if b == nil {
			return fmt.Errorf("file not found")
		}
		rf.(pintftp.OutgoingTransfer).SetSize(int64(len(b)))
		_, err := rf.ReadFrom(bytes.NewReader(b))
		return err
	}, nil)
	srv.SetTimeout(2 * time.Second)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go srv.Serve(conn)
	t.Cleanup(srv.Shutdown)
	host := conn.LocalAddr().String()

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
