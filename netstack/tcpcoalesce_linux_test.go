package netstack

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"
)

// TestTCPBulkOverTapCoalesced downloads 8 MiB from the Linux kernel over a real tap: the bytes
// arrive intact, frames were merged, and gVisor saw no checksum error in the merged packets.
func TestTCPBulkOverTapCoalesced(t *testing.T) {
	tap, _, tcpL := setupTapNetns(t)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i*7/13 + i>>16)
	}
	go func() {
		c, err := tcpL.Accept()
		if err != nil {
			return
		}
		c.Write(want)
		c.Close()
	}()
	st, err := New(Config{TapFD: dupTap(t, tap), MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := st.DialTCP(ctx, netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("after %d bytes: %v", len(got), err)
	}
	for i := range got {
		if i >= len(want) || got[i] != want[i] {
			t.Fatalf("byte %d differs (got %d bytes, want %d)", i, len(got), len(want))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	gs := st.Stack().Stats()
	if n := gs.TCP.ChecksumErrors.Value(); n != 0 {
		t.Errorf("gVisor counted %d TCP checksum errors", n)
	}
	if st.framesMerged() == 0 {
		t.Errorf("no frame was merged (stats %+v)", st.Stats())
	}
	t.Logf("%d frames merged; %+v", st.framesMerged(), st.Stats())
}
