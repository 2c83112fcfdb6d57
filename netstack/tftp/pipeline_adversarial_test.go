package tftp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"netipl/internal/testnet"
)

// faultProxy sits between the client and a server on loopback and lets a test lose, repeat, hold back
// (reorder), rewrite or re-source datagrams. The client sends its RRQ to the proxy and gets the server's
// answers from the proxy's own port (as from libslirp, which answers from port 69). Like a NAT, each client
// socket gets its own server-side socket, so a restarted transfer (a fresh client socket) is a new session for
// the server and late datagrams of the old one go to the old client socket.
type faultProxy struct {
	t      testing.TB
	front  net.PacketConn
	alt    net.PacketConn // a second client-facing socket: answers re-sourced through it come from another TID
	server net.Addr

	mu    sync.Mutex
	backs map[string]*proxyFlow
	held  [2][]byte // a datagram held back per direction, sent after the next one
	n     [2]int    // datagrams seen per direction (0: client→server, 1: server→client)
	wg    sync.WaitGroup
	done  bool

	// shape decides a datagram's fate: copies to send (0 loses it), hold (send it after the next one of the same
	// direction), via (answer through alt: another source port) and a replacement for its bytes (nil: as is).
	shape func(dir, n int, p packet) (copies int, hold, via bool, repl []byte)
}

// proxyFlow is one client socket's server-side socket and the server's transfer ID seen on it.
type proxyFlow struct {
	back      net.PacketConn
	client    net.Addr
	serverTID net.Addr
}

func startFaultProxy(t testing.TB, server netip.AddrPort, shape func(dir, n int, p packet) (int, bool, bool, []byte)) *faultProxy {
	t.Helper()
	front, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	alt, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, front: front, alt: alt, server: net.UDPAddrFromAddrPort(server), shape: shape, backs: map[string]*proxyFlow{}}
	t.Cleanup(func() {
		p.mu.Lock()
		p.done = true
		front.Close()
		alt.Close()
		for _, f := range p.backs {
			f.back.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Add(1)
	go p.pump(0, front, nil)
	return p
}

// fate applies shape to pkt and returns the datagrams to send now, in order.
func (p *faultProxy) fate(dir int, pkt []byte) (send [][]byte, via bool) {
	p.n[dir]++
	copies, hold, via, repl := 1, false, false, []byte(nil)
	if p.shape != nil {
		copies, hold, via, repl = p.shape(dir, p.n[dir], packet(pkt))
	}
	if repl != nil {
		pkt = repl
	}
	if hold && copies > 0 {
		p.held[dir] = pkt
		return nil, via
	}
	for i := 0; i < copies; i++ {
		send = append(send, pkt)
	}
	if h := p.held[dir]; h != nil {
		send = append(send, h)
		p.held[dir] = nil
	}
	return send, via
}

// pump forwards datagrams read from in: from clients (dir 0, flow nil) or from the server on a flow (dir 1).
func (p *faultProxy) pump(dir int, in net.PacketConn, flow *proxyFlow) {
	defer p.wg.Done()
	buf := make([]byte, 70000)
	for {
		k, from, err := in.ReadFrom(buf)
		if err != nil {
			return
		}
		pkt := append([]byte(nil), buf[:k]...)
		p.mu.Lock()
		var out net.PacketConn
		var to net.Addr
		if dir == 0 {
			f := p.backs[from.String()]
			if f == nil && !p.done {
				back, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					p.mu.Unlock()
					p.t.Error(err)
					return
				}
				f = &proxyFlow{back: back, client: from}
				p.backs[from.String()] = f
				p.wg.Add(1)
				go p.pump(1, back, f)
			}
			if f == nil {
				p.mu.Unlock()
				return
			}
			out, to = f.back, f.serverTID
			if to == nil || packet(pkt).opcode() == opRRQ {
				to = p.server
			}
		} else {
			flow.serverTID = from
			out, to = p.front, flow.client
		}
		send, via := p.fate(dir, pkt)
		if dir == 1 && via {
			out = p.alt
		}
		p.mu.Unlock()
		for _, b := range send {
			out.WriteTo(b, to)
		}
	}
}

func (p *faultProxy) addr() netip.AddrPort { return p.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// dataBlock returns the block number of a DATA packet, or -1.
func dataBlock(p packet) int {
	if len(p) < headerLen || p.opcode() != opDATA {
		return -1
	}
	return int(p.block())
}

// withTsize returns an OACK with tsize replaced by v (other options kept).
func withTsize(p packet, v int64) []byte {
	parts := strings.Split(string(p[2:len(p)-1]), "\x00")
	var kv []string
	for i := 0; i+1 < len(parts); i += 2 {
		if strings.EqualFold(parts[i], "tsize") {
			parts[i+1] = strconv.FormatInt(v, 10)
		}
		kv = append(kv, parts[i], parts[i+1])
	}
	return oackPkt(kv...)
}

// adversarialOptions keeps the timeouts short: a wrong turn shows as a restart or an error within seconds.
var adversarialOptions = Options{Pipeline: 8, InitialTimeout: 50 * time.Millisecond, MinTimeout: 20 * time.Millisecond,
	MaxTimeout: 200 * time.Millisecond, Retries: 4}

// TestPipelineAdversarialPaths fetches from the libslirp look-alike (it counts ACKs, never resends) through a
// proxy that loses, repeats, reorders and re-sources datagrams, and from servers whose tsize lies. Each transfer
// must write exactly the file, or fail with the expected error; always within the guard time.
func TestPipelineAdversarialPaths(t *testing.T) {
	const blocks = 300
	data := pattern(blocks*1428 + 77)
	type shapeFn = func(dir, n int, p packet) (int, bool, bool, []byte)
	// inSession1 applies f to server→client DATA of the first session only (the proxy sees one RRQ per session).
	var sessions int
	var smu sync.Mutex
	countRRQ := func(dir int, p packet) int {
		smu.Lock()
		defer smu.Unlock()
		if dir == 0 && p.opcode() == opRRQ {
			sessions++
		}
		return sessions
	}
	onData := func(f func(block int) (int, bool)) shapeFn {
		return func(dir, n int, p packet) (int, bool, bool, []byte) {
			if s := countRRQ(dir, p); dir == 1 && s == 1 {
				if b := dataBlock(p); b >= 0 {
					copies, hold := f(b)
					return copies, hold, false, nil
				}
			}
			return 1, false, false, nil
		}
	}
	tests := []struct {
		name    string
		shape   shapeFn
		maxSize int64
		wantErr error // nil: the exact file
	}{
		{name: "clean", shape: onData(func(int) (int, bool) { return 1, false })},
		{name: "DATA 30 duplicated", shape: onData(func(b int) (int, bool) { return map[bool]int{true: 2, false: 1}[b == 30], false })},
		{name: "DATA 1 duplicated while probing", shape: onData(func(b int) (int, bool) { return map[bool]int{true: 2, false: 1}[b == 1], false })},
		{name: "DATA 2 duplicated while probing", shape: onData(func(b int) (int, bool) { return map[bool]int{true: 2, false: 1}[b == 2], false })},
		{name: "DATA 30 duplicated, then DATA 100 lost", shape: onData(func(b int) (int, bool) {
			switch b {
			case 30:
				return 2, false
			case 100:
				return 0, false
			}
			return 1, false
		})},
		{name: "DATA 40 and 41 swapped", shape: onData(func(b int) (int, bool) { return 1, b == 40 })},
		{name: "DATA 1 and 2 swapped", shape: onData(func(b int) (int, bool) { return 1, b == 1 })},
		{name: "last DATA duplicated", shape: onData(func(b int) (int, bool) { return map[bool]int{true: 2, false: 1}[b == blocks+1], false })},
		{name: "last two DATA swapped", shape: onData(func(b int) (int, bool) { return 1, b == blocks })},
		{name: "last DATA lost", shape: onData(func(b int) (int, bool) { return map[bool]int{true: 0, false: 1}[b == blocks+1], false })},
		{name: "every 40th ACK repeated", shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			if dir == 0 && p.opcode() == opACK && n%40 == 0 {
				return 2, false, false, nil
			}
			return 1, false, false, nil
		}},
		{name: "every 40th ACK lost", shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			if dir == 0 && p.opcode() == opACK && n%40 == 0 {
				return 0, false, false, nil
			}
			return 1, false, false, nil
		}},
		{name: "ACKs reordered in pairs", shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			return 1, dir == 0 && p.opcode() == opACK && n%2 == 0, false, nil
		}},
		{name: "server TID changes at DATA 150", shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			s := countRRQ(dir, p)
			return 1, false, dir == 1 && s == 1 && dataBlock(p) >= 150, nil
		}},
		{name: "tsize smaller than the file", wantErr: ErrProtocol, shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			if dir == 1 && p.opcode() == opOACK {
				return 1, false, false, withTsize(p, int64(len(data)-1))
			}
			return 1, false, false, nil
		}},
		{name: "tsize larger than the file", wantErr: ErrProtocol, shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			if dir == 1 && p.opcode() == opOACK {
				return 1, false, false, withTsize(p, int64(len(data)+1428))
			}
			return 1, false, false, nil
		}},
		{name: "tsize 0 for a large file", wantErr: ErrProtocol, shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			if dir == 1 && p.opcode() == opOACK {
				return 1, false, false, withTsize(p, 0)
			}
			return 1, false, false, nil
		}},
		{name: "tsize under MaxSize, file over it", maxSize: int64(len(data) / 2), wantErr: ErrTooLarge, shape: func(dir, n int, p packet) (int, bool, bool, []byte) {
			countRRQ(dir, p)
			if dir == 1 && p.opcode() == opOACK {
				return 1, false, false, withTsize(p, 1000)
			}
			return 1, false, false, nil
		}},
		{name: "tsize over MaxSize", maxSize: int64(len(data) - 1), wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			smu.Lock()
			sessions = 0
			smu.Unlock()
			s := startAckCountingServer(t, map[string][]byte{"f": data}, nil)
			p := startFaultProxy(t, s.addr(), tt.shape)
			o := adversarialOptions
			o.MaxSize = tt.maxSize
			c := &Client{Listen: hostListen, Options: o}
			m := &testnet.MemFile{}
			start := time.Now()
			res, err := c.Get(guardCtx(t), p.addr(), "f", m)
			took := time.Since(start)
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Get = %v (stats %+v); want %v", err, res.Stats, tt.wantErr)
				}
				if tt.maxSize > 0 && int64(len(m.Bytes)) > tt.maxSize {
					t.Errorf("%d bytes written past MaxSize %d", len(m.Bytes), tt.maxSize)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get = %v after %v (stats %+v)", err, took, res.Stats)
			}
			if got := m.Bytes; !bytes.Equal(got, data) || res.Size != int64(len(data)) {
				t.Fatalf("wrote %d bytes (res.Size %d), want %d; first difference at %d", len(got), res.Size, len(data), firstDifference(got, data))
			}
			t.Logf("%v, pipeline %d, stats %+v", took.Round(time.Millisecond), res.Pipeline, res.Stats)
		})
	}
}

func firstDifference(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// greedyServer answers the RRQ with an OACK and every ACK with `burst` new blocks (a server that sends blocks
// beyond any window): the client must still write exactly the file, whatever mode it settles in.
func TestPipelineGreedyServer(t *testing.T) {
	data := pattern(120*1428 + 5)
	for _, burst := range []int{2, 5} {
		t.Run(fmt.Sprint(burst), func(t *testing.T) {
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go func() {
				buf := make([]byte, 2048)
				sent := 0
				for {
					n, from, err := conn.ReadFrom(buf)
					if err != nil {
						return
					}
					switch packet(buf[:n]).opcode() {
					case opRRQ:
						sent = 0
						conn.WriteTo(oackPkt("blksize", "1428", "tsize", strconv.Itoa(len(data))), from)
					case opACK:
						for i := 0; i < burst && sent*1428 <= len(data); i++ {
							lo := sent * 1428
							hi := min(lo+1428, len(data))
							sent++
							conn.WriteTo(dataPkt(uint16(sent), data[lo:hi]), from)
						}
					}
				}
			}()
			c := &Client{Listen: hostListen, Options: adversarialOptions}
			m := &testnet.MemFile{}
			res, err := c.Get(guardCtx(t), conn.LocalAddr().(*net.UDPAddr).AddrPort(), "f", m)
			if err != nil {
				t.Fatalf("Get = %v (stats %+v)", err, res.Stats)
			}
			if !bytes.Equal(m.Bytes, data) {
				t.Fatalf("wrote %d bytes, want %d; first difference at %d", len(m.Bytes), len(data), firstDifference(m.Bytes, data))
			}
			t.Logf("pipeline %d, stats %+v", res.Pipeline, res.Stats)
		})
	}
}

// TestPipelineLossPastRollover loses a block just after libslirp's block number wrapped to 0 while
// pipelining: the client restarts lock-step and goes through the rollover again, writing exactly the
// file (no block written at a position of the first 65536).
func TestPipelineLossPastRollover(t *testing.T) {
	data := pattern(65540*8 + 3)
	s := startAckCountingServer(t, map[string][]byte{"f": data}, func(sess, b int) bool { return sess == 1 && b == 65538 })
	o := adversarialOptions
	o.BlockSize, o.Pipeline = 8, 16
	c := &Client{Listen: hostListen, Options: o}
	m := &testnet.MemFile{}
	res, err := c.Get(guardCtx(t), s.addr(), "f", m)
	if err != nil {
		t.Fatalf("Get = %v (stats %+v)", err, res.Stats)
	}
	if got := m.Bytes; !bytes.Equal(got, data) || res.Stats.Restarts != 1 {
		t.Fatalf("wrote %d bytes (first difference at %d), restarts %d; want the file after one restart",
			len(got), firstDifference(got, data), res.Stats.Restarts)
	}
}
