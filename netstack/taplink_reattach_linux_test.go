package netstack

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// readerGoroutines counts the goroutines running l's reader (a stack trace shows the receiver).
func readerGoroutines(l *tapLink) int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fmt.Sprintf("(*tapLink).readLoop(%p", l))
}

// TestTapLinkReattachOneReader: Attach(nil) followed at once by Attach(d) (no waitReader in
// between, as when a NIC is removed and another created on the same link) must leave exactly
// one reader: two would share the reader's batch views and the coalescer (silent corruption),
// and none would leave the link deaf. Every frame sent afterwards arrives once, in order.
func TestTapLinkReattachOneReader(t *testing.T) {
	fd, peer := framePair(t)
	l, err := newTapLink(fd, 1500, tcpip.LinkAddress(guestMAC))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close(); l.waitReader() }()
	rec := &frameLog{}
	l.Attach(rec)
	for i := 0; i < 50; i++ {
		l.Attach(nil)
		l.Attach(rec)
	}
	time.Sleep(50 * time.Millisecond) // let stopped readers return
	if n := readerGoroutines(l); n != 1 {
		t.Errorf("%d readers run after re-attaching, want 1", n)
	}
	var want [][]byte
	for seq := uint32(0); seq < 100; seq++ {
		f := numberedFrame(seq, 60+int(seq)*10)
		want = append(want, f)
		if _, err := unix.Write(peer, f); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.waitFrames(len(want))
	if len(got) != len(want) {
		t.Fatalf("%d frames delivered, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}
