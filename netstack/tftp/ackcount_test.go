package tftp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"netipl/netstack"

	"netipl/internal/testnet"
)

// ackCountingServer behaves like libslirp's TFTP server (QEMU's -netdev user,tftp=, src/tftp.c): it answers from
// the port it listens on, accepts blksize (capped at 1428) and tsize, and answers EVERY ACK of a session with the
// next block it has not sent yet, whatever block number the ACK carries. After the short last block the session is
// gone and further ACKs are ignored; an ERROR ends the session; a new RRQ from the same client port replaces it.
// Blocks are never sent twice, so a lost one is never resent.
//
// On top of that it checks the client: every ACK must name a block the server has sent (or 0), so a client that
// acknowledges data it has not received is caught.
type ackCountingServer struct {
	t     testing.TB
	conn  net.PacketConn
	files map[string][]byte
	// drop, if set, is asked before each DATA is sent (session number from 1, block number); true loses it.
	drop func(session, block int) bool

	mu         sync.Mutex
	sessions   map[string]*ackSession
	started    int   // sessions begun (RRQs)
	acks       int   // ACKs received
	maxAhead   int   // most blocks sent and not yet acknowledged, over all sessions
	ahead      []int // blocks sent and not yet acknowledged when each block was sent (index: blocks sent so far)
	violations []string
}

type ackSession struct {
	n       int // session number
	data    []byte
	blk     int
	sent    int // blocks sent (block_nr)
	highAck int // highest block acknowledged
}

func startAckCountingServer(t testing.TB, files map[string][]byte, drop func(session, block int) bool) *ackCountingServer {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveAckCounting(t, c, files, drop)
}

// serveAckCounting runs the ACK-counting server on c until the test ends.
func serveAckCounting(t testing.TB, c net.PacketConn, files map[string][]byte, drop func(session, block int) bool) *ackCountingServer {
	s := &ackCountingServer{t: t, conn: c, files: files, drop: drop, sessions: map[string]*ackSession{}}
	done := make(chan struct{})
	go func() { defer close(done); s.serve() }()
	t.Cleanup(func() {
		c.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, v := range s.violations {
			t.Errorf("ack-counting server: %s", v)
		}
	})
	return s
}

func (s *ackCountingServer) addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *ackCountingServer) stats() (sessions, acks, maxAhead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.acks, s.maxAhead
}

// aheadSince is the most blocks in flight (sent, not acknowledged) when the server sent its nth block or a later
// one, over all sessions.
func (s *ackCountingServer) aheadSince(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	most := 0
	for _, a := range s.ahead[min(n, len(s.ahead)):] {
		most = max(most, a)
	}
	return most
}

func (s *ackCountingServer) serve() {
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		p := packet(buf[:n])
		s.mu.Lock()
		key := from.String()
		switch p.opcode() {
		case opRRQ:
			delete(s.sessions, key)
			s.rrq(p, from, key)
		case opACK:
			s.acks++
			if sess := s.sessions[key]; sess != nil && len(p) >= headerLen {
				b := int(p.block())
				if sent := sess.sent; b > sent%65536 && sent < 65536 {
					s.violations = append(s.violations, fmt.Sprintf("session %d: ACK %d for a block not sent yet (%d sent)", sess.n, b, sess.sent))
				}
				if b > sess.highAck {
					sess.highAck = b
				}
				s.next(sess, from, key)
			}
		case opERROR:
			delete(s.sessions, key)
		}
		s.mu.Unlock()
	}
}

func (s *ackCountingServer) rrq(p packet, from net.Addr, key string) {
	parts := strings.Split(string(p[2:]), "\x00")
	if len(parts) < 2 {
		return
	}
	data, ok := s.files[parts[0]]
	if !ok {
		s.conn.WriteTo(appendERROR(nil, ErrCodeNotFound, "File not found"), from)
		return
	}
	s.started++
	sess := &ackSession{n: s.started, data: data, blk: 512}
	var opts []string
	for i := 2; i+1 < len(parts); i += 2 {
		switch strings.ToLower(parts[i]) {
		case "tsize":
			opts = append(opts, "tsize", strconv.Itoa(len(data)))
		case "blksize":
			v, _ := strconv.Atoi(parts[i+1])
			if v > 0 {
				sess.blk = min(v, 1428)
				opts = append(opts, "blksize", strconv.Itoa(sess.blk))
			}
		}
	}
	s.sessions[key] = sess
	if len(opts) > 0 {
		s.conn.WriteTo(oackPkt(opts...), from)
		return
	}
	s.next(sess, from, key)
}

// next sends the session's next unsent block (libslirp's tftp_send_next_block).
func (s *ackCountingServer) next(sess *ackSession, to net.Addr, key string) {
	lo := min(sess.sent*sess.blk, len(sess.data))
	hi := min(lo+sess.blk, len(sess.data))
	sess.sent++
	ahead := sess.sent - sess.highAck
	s.maxAhead = max(s.maxAhead, ahead)
	s.ahead = append(s.ahead, ahead)
	if s.drop == nil || !s.drop(sess.n, sess.sent) {
		pkt := binary.BigEndian.AppendUint16(nil, opDATA)
		pkt = binary.BigEndian.AppendUint16(pkt, uint16(sess.sent))
		s.conn.WriteTo(append(pkt, sess.data[lo:hi]...), to)
	}
	if hi-lo < sess.blk {
		delete(s.sessions, key)
	}
}

// TestPipelineAckCounting fetches from the libslirp look-alike: every size keeps Pipeline blocks in flight, with
// every ACK naming a block already received, and gives the exact bytes.
func TestPipelineAckCounting(t *testing.T) {
	const blk = 1428
	files := map[string][]byte{
		"empty": nil, "one": {7}, "short": pattern(blk - 1), "block": pattern(blk), "two": pattern(blk + 1),
		"window": pattern(16 * blk), "window+1": pattern(16*blk + 1), "big": pattern(3<<20 + 17),
	}
	s := startAckCountingServer(t, files, nil)
	for _, tt := range []struct {
		file     string
		pipeline int
		want     int // Result.Pipeline
	}{
		{"empty", 16, 1},
		{"one", 16, 1},
		{"short", 16, 1},
		{"block", 16, 16},
		{"two", 16, 16},
		{"window", 16, 16},
		{"window+1", 16, 16},
		{"big", 16, 16},
		{"big", 2, 2},
		{"big", 0, 1},
		{"big", 1, 1},
	} {
		t.Run(fmt.Sprintf("%s/%d", tt.file, tt.pipeline), func(t *testing.T) {
			c := &Client{Listen: hostListen, Options: Options{Pipeline: tt.pipeline}}
			m := &testnet.MemFile{}
			res, err := c.Get(guardCtx(t), s.addr(), tt.file, m)
			if err != nil {
				t.Fatalf("Get(%q) = %v", tt.file, err)
			}
			if want := files[tt.file]; !bytes.Equal(m.Bytes, want) || res.Size != int64(len(want)) {
				t.Errorf("Get(%q) wrote %d bytes (res.Size %d), want %d", tt.file, len(m.Bytes), res.Size, len(want))
			}
			if res.Pipeline != tt.want || res.WindowSize != 1 || res.Stats.Restarts != 0 {
				t.Errorf("Get(%q) pipeline %d window %d restarts %d, want pipeline %d, window 1, no restart (stats %+v)",
					tt.file, res.Pipeline, res.WindowSize, res.Stats.Restarts, tt.want, res.Stats)
			}
		})
	}
	if _, _, ahead := s.stats(); ahead != 16 {
		t.Errorf("at most %d blocks were in flight, want 16", ahead)
	}
	t.Run("rollover", func(t *testing.T) {
		// More than 65535 blocks: libslirp's block number wraps to 0 (it sends (n+1) & 0xffff).
		data := pattern(65540*8 + 3)
		s := startAckCountingServer(t, map[string][]byte{"f": data}, nil)
		c := &Client{Listen: hostListen, Options: Options{BlockSize: 8, Pipeline: 16}}
		m := &testnet.MemFile{}
		res, err := c.Get(guardCtx(t), s.addr(), "f", m)
		if err != nil {
			t.Fatalf("Get = %v", err)
		}
		if !bytes.Equal(m.Bytes, data) || res.Pipeline != 16 || res.Stats.Restarts != 0 {
			t.Errorf("Get wrote %d bytes (equal %v), pipeline %d, restarts %d; want the file pipelined without restart",
				len(m.Bytes), bytes.Equal(m.Bytes, data), res.Pipeline, res.Stats.Restarts)
		}
	})
}

// TestPipelineLoss loses blocks on the libslirp look-alike: the client cannot get them again from such a server,
// so it starts over on a fresh socket in lock-step and still writes the exact bytes.
func TestPipelineLoss(t *testing.T) {
	data := pattern(200*1428 + 99)
	fast := Options{Pipeline: 8, InitialTimeout: 50 * time.Millisecond, MinTimeout: 20 * time.Millisecond,
		MaxTimeout: 200 * time.Millisecond}
	for _, tt := range []struct {
		name string
		drop func(session, block int) bool
	}{
		// A gap: block 51 never comes, 52 does.
		{"middle", func(sess, b int) bool { return sess == 1 && b == 51 }},
		// The first block: 2 arrives first.
		{"first", func(sess, b int) bool { return sess == 1 && b == 1 }},
		// The last block: nothing follows it, only the timeout tells.
		{"last", func(sess, b int) bool { return sess == 1 && b == 201 }},
		// Everything after block 100: the server goes quiet mid-file.
		{"tail", func(sess, b int) bool { return sess == 1 && b > 100 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startAckCountingServer(t, map[string][]byte{"f": data}, tt.drop)
			c := &Client{Listen: hostListen, Options: fast}
			m := &testnet.MemFile{}
			res, err := c.Get(guardCtx(t), s.addr(), "f", m)
			if err != nil {
				t.Fatalf("Get = %v (stats %+v)", err, res.Stats)
			}
			if !bytes.Equal(m.Bytes, data) {
				t.Errorf("Get wrote %d bytes, want %d (equal %v)", len(m.Bytes), len(data), bytes.Equal(m.Bytes, data))
			}
			if sessions, _, _ := s.stats(); res.Stats.Restarts != 1 || sessions != 2 || res.Pipeline != 1 {
				t.Errorf("restarts %d, server sessions %d, pipeline %d; want 1 restart, 2 sessions, lock-step after it",
					res.Stats.Restarts, sessions, res.Pipeline)
			}
		})
	}
	t.Run("lost again after the restart", func(t *testing.T) {
		s := startAckCountingServer(t, map[string][]byte{"f": data}, func(sess, b int) bool { return b == 60 }) // every session
		o := fast
		o.Retries = 2
		c := &Client{Listen: hostListen, Options: o}
		m := &testnet.MemFile{}
		res, err := c.Get(guardCtx(t), s.addr(), "f", m)
		if err == nil {
			t.Fatalf("Get succeeded with block 60 lost in every session (%d bytes)", len(m.Bytes))
		}
		if res.Stats.Restarts != 1 {
			t.Errorf("restarts %d, want exactly 1 (then lock-step gives up): %v", res.Stats.Restarts, err)
		}
	})
}

// TestPipelineOverNetstack runs the pipelined client on netipl's own stack (netstack.UDPConn, which the client
// connects to the server's transfer ID) against the ACK-counting server on a second stack, joined by a pipe: the
// guest's path to QEMU's slirp with the NIC replaced by the pipe.
func TestPipelineOverNetstack(t *testing.T) {
	// The optional socket method the client connects through (transfer.connect).
	var _ interface {
		Connect(netip.AddrPort) error
		Write([]byte) (int, error)
	} = (*netstack.UDPConn)(nil)
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 1500)
	newNetstack := func(link stack.LinkEndpoint, mac, prefix string) *netstack.Stack {
		hw, _ := net.ParseMAC(mac)
		st, err := netstack.New(netstack.Config{Link: link, MAC: hw})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.SetAddress(netip.MustParsePrefix(prefix)); err != nil {
			t.Fatal(err)
		}
		return st
	}
	guest := newNetstack(a, "52:54:00:12:34:56", "10.0.2.15/24")
	host := newNetstack(b, "52:55:0a:00:02:02", "10.0.2.2/24")
	sconn, err := host.ListenUDP(netip.MustParseAddrPort("10.0.2.2:69"))
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(2<<20 + 5)
	s := serveAckCounting(t, sconn, map[string][]byte{"initrd": data}, nil)
	listen := func() (net.PacketConn, error) { return guest.ListenUDP(netip.MustParseAddrPort("10.0.2.15:0")) }
	c := &Client{Listen: listen, Options: Options{Pipeline: 16}}
	m := &testnet.MemFile{}
	res, err := c.Get(guardCtx(t), netip.MustParseAddrPort("10.0.2.2:69"), "initrd", m)
	if err != nil {
		t.Fatalf("Get = %v (stats %+v)", err, res.Stats)
	}
	if !bytes.Equal(m.Bytes, data) || res.Pipeline != 16 || res.Stats.Restarts != 0 {
		t.Errorf("Get wrote %d bytes (equal %v), pipeline %d, stats %+v; want the file, pipeline 16, no restart",
			len(m.Bytes), bytes.Equal(m.Bytes, data), res.Pipeline, res.Stats)
	}
	if _, _, ahead := s.stats(); ahead != 16 {
		t.Errorf("at most %d blocks in flight, want 16", ahead)
	}
}
