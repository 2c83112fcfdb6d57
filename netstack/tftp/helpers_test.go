package tftp

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"netipl/internal/testnet"
)

// hangGuard bounds every scripted transfer in wall time. The scripts drive the client on a manual clock, so a client
// that stops answering the script (a bug) would otherwise wait forever; with the guard the test fails with the
// cancelled Get's error instead of hanging until the test binary's timeout.
const hangGuard = 15 * time.Second

// guardCtx returns a context that is cancelled after hangGuard or when the test ends.
func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

func hostListen() (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }

// pattern returns n bytes that differ block to block, so misplaced writes show (the same bytes
// in every run).
func pattern(n int) []byte { return testnet.Pattern(n, 2463534242) }

// scriptServer is a hand-driven TFTP peer on loopback for the bad-server cases.
type scriptServer struct {
	t    *testing.T
	conn net.PacketConn
}

func newScriptServer(t *testing.T) *scriptServer {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &scriptServer{t: t, conn: c}
}

func (s *scriptServer) addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// recv waits for the next packet; the 10 s deadline is only a guard against a hung test.
func (s *scriptServer) recv() (packet, net.Addr) {
	s.t.Helper()
	buf := make([]byte, 70000)
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := s.conn.ReadFrom(buf)
	if err != nil {
		s.t.Errorf("script server: receive: %v", err)
		return nil, nil
	}
	return packet(buf[:n]), from
}

// recvTimeout returns nil when nothing arrives within d (used to assert silence).
func (s *scriptServer) recvTimeout(d time.Duration) packet {
	buf := make([]byte, 70000)
	s.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := s.conn.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return packet(buf[:n])
}

func (s *scriptServer) send(to net.Addr, b []byte) {
	if _, err := s.conn.WriteTo(b, to); err != nil {
		s.t.Errorf("script server: send: %v", err)
	}
}

func dataPkt(block uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, opDATA)
	b = binary.BigEndian.AppendUint16(b, block)
	return append(b, payload...)
}

func oackPkt(kv ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, opOACK)
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func errPkt(code uint16, msg string) []byte { return appendERROR(nil, code, msg) }

// wantACK checks that p is an ACK for block.
func wantACK(t *testing.T, p packet, block uint16) {
	t.Helper()
	if len(p) != 4 || p.opcode() != opACK || p.block() != block {
		t.Errorf("got packet % x, want ACK %d", []byte(p), block)
	}
}

// wantERROR checks that p is an ERROR with code.
func wantERROR(t *testing.T, p packet, code uint16) {
	t.Helper()
	e, err := parseERROR(p)
	if err != nil || e.Code != code {
		t.Errorf("got packet % x, want ERROR code %d", []byte(p), code)
	}
}

// rrqOptions decodes an RRQ into file name and options.
func rrqOptions(t *testing.T, p packet) (string, map[string]string) {
	t.Helper()
	if p.opcode() != opRRQ {
		t.Fatalf("got opcode %d, want RRQ", p.opcode())
	}
	rest := p[2:]
	name, rest, err := cstring(rest)
	if err != nil {
		t.Fatalf("RRQ name: %v", err)
	}
	mode, rest, err := cstring(rest)
	if err != nil || mode != "octet" {
		t.Fatalf("RRQ mode %q, %v", mode, err)
	}
	opts := map[string]string{}
	for len(rest) > 0 {
		k, r, err := cstring(rest)
		if err != nil {
			t.Fatalf("RRQ option: %v", err)
		}
		v, r, err := cstring(r)
		if err != nil {
			t.Fatalf("RRQ option value: %v", err)
		}
		opts[k] = v
		rest = r
	}
	return name, opts
}

// windowServer sends data the RFC 7440 way after an OACK (or without one when oack is nil): on ACK n it sends the
// next window blocks. rollTo is the block number after 65535 (0 or 1). mangle may replace a DATA packet (by absolute
// block index) with other packets, e.g. to duplicate, drop or reorder.
type windowServer struct {
	s       *scriptServer
	data    []byte
	blk     int
	window  int
	rollTo  int
	oack    []byte
	mangle  func(abs int, pkt []byte) [][]byte
	mangled map[int]bool // blocks already mangled once
}

func (w *windowServer) wire(abs int) uint16 {
	if abs <= 65535 {
		return uint16(abs)
	}
	span := 65536 - w.rollTo
	return uint16((abs-65536)%span + w.rollTo)
}

// serve answers the RRQ that was already read from client.
func (w *windowServer) serve(client net.Addr) {
	t := w.s.t
	blocks := len(w.data)/w.blk + 1
	acked := 0
	if w.oack != nil {
		w.s.send(client, w.oack)
		p, _ := w.s.recv()
		if p == nil {
			return
		}
		wantACK(t, p, 0)
	}
	if w.mangled == nil {
		w.mangled = map[int]bool{}
	}
	for acked < blocks {
		for abs := acked + 1; abs <= acked+w.window && abs <= blocks; abs++ {
			lo := (abs - 1) * w.blk
			hi := min(lo+w.blk, len(w.data))
			pkt := dataPkt(w.wire(abs), w.data[lo:hi])
			if w.mangle != nil && !w.mangled[abs] {
				w.mangled[abs] = true
				for _, q := range w.mangle(abs, pkt) {
					w.s.send(client, q)
				}
				continue
			}
			w.s.send(client, pkt)
		}
		p, _ := w.s.recv()
		if p == nil {
			return
		}
		if p.opcode() != opACK {
			t.Errorf("window server: got opcode %d, want ACK", p.opcode())
			return
		}
		// Map the wire number back to an absolute block at or after the last ACK.
		got := p.block()
		found := false
		for abs := acked; abs <= acked+w.window; abs++ {
			if (abs == 0 && got == 0) || (abs > 0 && w.wire(abs) == got) {
				acked, found = abs, true
				break
			}
		}
		if !found {
			t.Errorf("window server: ACK %d outside window after %d", got, acked)
			return
		}
	}
}
