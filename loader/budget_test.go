package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"netipl/internal/testnet"
)

func TestDurationEnv(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 7 * time.Second, false},
		{"90s", 90 * time.Second, false},
		{"20m", 20 * time.Minute, false},
		{"0", 0, false},
		{"-1s", 0, true},
		{"15", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		getenv := func(name string) string {
			if name == envTimeout {
				return tt.value
			}
			return ""
		}
		got, err := durationEnv(getenv, envTimeout, 7*time.Second)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("durationEnv(%q) = %v, %v; want %v, error %v", tt.value, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), envTimeout+"=") {
			t.Errorf("durationEnv(%q) error %q does not name the variable", tt.value, err)
		}
	}
}

// TestBadBudgetEnv: a malformed budget in the environment (the guest's only way to set it) is a
// boot failure with one reason line, before any network traffic.
func TestBadBudgetEnv(t *testing.T) {
	for _, name := range []string{envTimeout, envStall} {
		var out, errb bytes.Buffer
		getenv := func(n string) string {
			if n == name {
				return "forever"
			}
			return ""
		}
		if code := runEnv(nil, getenv, &out, &errb); code != 1 {
			t.Errorf("%s=forever: exit %d, want 1", name, code)
		}
		want := "Network boot starting...\nnetipl: " + name + "=\"forever\" is not a duration like 90s or 20m\nFailed to load OS from network\n"
		if out.String() != want {
			t.Errorf("%s=forever: console\n%q\nwant\n%q", name, out.String(), want)
		}
	}
}

// trickleServer serves testnet.TrickleHandler in the lab's namespace on 10.0.2.2:8081.
func (l *lab) trickleServer(t *testing.T) {
	t.Helper()
	h, stop := testnet.TrickleHandler("http://10.0.2.2:8081")
	err := testnet.InNetns(l.ns, func() error {
		ln, err := net.Listen("tcp", "10.0.2.2:8081")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { stop(); srv.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("trickle server: %v", err)
	}
}

// stoppingTFTPServer serves any file on 10.0.2.2:6970 as 512-byte lock-step blocks (it ignores
// the options, as old servers do) and goes silent after block 8: a server that dies mid-file.
func (l *lab) stoppingTFTPServer(t *testing.T) {
	t.Helper()
	var conn net.PacketConn
	err := testnet.InNetns(l.ns, func() error {
		var err error
		conn, err = net.ListenPacket("udp4", "10.0.2.2:6970")
		return err
	})
	if err != nil {
		t.Fatalf("tftp server: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 4 {
				continue
			}
			var block uint16
			switch binary.BigEndian.Uint16(buf) {
			case 1: // RRQ
				block = 1
			case 4: // ACK
				block = binary.BigEndian.Uint16(buf[2:]) + 1
			default:
				continue
			}
			if block > 8 {
				continue // silent from here on
			}
			pkt := binary.BigEndian.AppendUint16(nil, 3)
			pkt = binary.BigEndian.AppendUint16(pkt, block)
			pkt = append(pkt, bytes.Repeat([]byte{byte(block)}, 512)...)
			conn.WriteTo(pkt, peer)
		}
	}()
}

// TestHostBudgets: a server that trickles or stops mid-file ends in one reason line naming the
// file and the server and "Failed to load OS from network", within the budget, never a hang.
func TestHostBudgets(t *testing.T) {
	tests := []struct {
		name     string
		bootfile string
		files    map[string][]byte
		tftp     bool
		args     []string
		reason   string
		within   time.Duration
	}{
		{"HTTP trickle", "http://10.0.2.2:8081/boot.ipxe", nil, false, []string{"-stall-timeout", "2s"},
			"netipl: http://10.0.2.2:8081/slow: no progress from server 10.0.2.2:8081 for 2s (", 10 * time.Second},
		{"TFTP server stops mid-file", "boot.ipxe", map[string][]byte{"boot.ipxe": []byte("#!ipxe\nkernel tftp://10.0.2.2:6970/vmlinuz\nboot\n")}, true,
			[]string{"-stall-timeout", "2s"},
			"netipl: tftp://10.0.2.2:6970/vmlinuz: no progress from server 10.0.2.2:6970 for 2s (", 10 * time.Second},
		{"flow budget", "http://10.0.2.2:8081/boot.ipxe", nil, false, []string{"-stall-timeout", "0", "-timeout", "4s"},
			"netipl: boot flow not done after 4s (-timeout, NETIPL_TIMEOUT), in: http GET \"http://10.0.2.2:8081/slow\"", 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.files
			if files == nil {
				files = map[string][]byte{"x": []byte("y")}
			}
			l := newLab(t, tt.bootfile, files)
			l.trickleServer(t)
			if tt.tftp {
				l.stoppingTFTPServer(t)
			}
			start := time.Now()
			con := l.bootFail(t, tt.args...)
			took := time.Since(start)
			wantFailure(t, con, tt.reason)
			if took > tt.within {
				t.Errorf("the loader gave up after %s, want within %s", took.Round(time.Millisecond), tt.within)
			}
		})
	}
}

// TestWatchProgress: the watch cancels with a *stallError naming URL and server when fewer than
// stallFloor bytes arrive in a period, and leaves a transfer alone that keeps up.
func TestWatchProgress(t *testing.T) {
	const period = 200 * time.Millisecond
	run := func(chunk int, every time.Duration, d time.Duration) error {
		cw := &countingWriter{w: &memBuffer{}}
		ctx, stop := watchProgress(context.Background(), period, cw, "tftp://10.0.2.2/k", "10.0.2.2")
		defer stop()
		buf := make([]byte, chunk)
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(every) {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			cw.WriteAt(buf, cw.n.Load())
		}
		return context.Cause(ctx)
	}
	// 1 byte per 10 ms: a trickle.
	err := run(1, 10*time.Millisecond, 2*time.Second)
	var se *stallError
	if !errors.As(err, &se) {
		t.Fatalf("trickle: cause %v, want a *stallError", err)
	}
	if se.got > 40 || se.url != "tftp://10.0.2.2/k" || se.server != "10.0.2.2" || se.period != period {
		t.Errorf("trickle: %+v", se)
	}
	if msg := se.Error(); !strings.HasPrefix(msg, "tftp://10.0.2.2/k: no progress from server 10.0.2.2 for 200ms (") {
		t.Errorf("message %q", msg)
	}
	// 64 KiB per 10 ms: one write per period is enough, so a loaded machine does not fail it.
	if err := run(stallFloor, 10*time.Millisecond, time.Second); err != nil {
		t.Errorf("steady transfer: cause %v, want none", err)
	}
}
