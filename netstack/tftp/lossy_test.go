package tftp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"netipl/internal/testnet"
)

// lossyProxy stands between one client and a real TFTP server on loopback and drops every nth datagram in each
// direction. The client sees one peer address (the proxy) for the whole transfer; the proxy follows the server's
// transfer ID.
type lossyProxy struct {
	front, back net.PacketConn
	server      net.Addr // the server's request port

	mu        sync.Mutex
	client    net.Addr
	serverTID net.Addr
	dropped   [2]int // client→server, server→client
}

func startLossyProxy(t *testing.T, server netip.AddrPort, every int) *lossyProxy {
	t.Helper()
	front, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{front: front, back: back, server: net.UDPAddrFromAddrPort(server)}
	t.Cleanup(func() { front.Close(); back.Close() })
	go func() { // client → server
		buf := make([]byte, 70000)
		for n := 1; ; n++ {
			k, from, err := front.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = from
			to := p.serverTID
			if to == nil || packet(buf[:k]).opcode() == opRRQ {
				to = p.server
			}
			drop := n%every == 0 && packet(buf[:k]).opcode() != opRRQ
			if drop {
				p.dropped[0]++
			}
			p.mu.Unlock()
			if !drop {
				back.WriteTo(buf[:k], to)
			}
		}
	}()
	go func() { // server → client
		buf := make([]byte, 70000)
		for n := 1; ; n++ {
			k, from, err := back.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.serverTID = from
			to := p.client
			drop := n%every == 0
			if drop {
				p.dropped[1]++
			}
			p.mu.Unlock()
			if !drop && to != nil {
				front.WriteTo(buf[:k], to)
			}
		}
	}()
	return p
}

func (p *lossyProxy) addr() netip.AddrPort { return p.front.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *lossyProxy) drops() [2]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// TestLossyPath fetches through a proxy that drops every 7th datagram each way: lock-step from tftpd-hpa (short
// server retransmit timer) and windowsize 8 from atftpd. The data must arrive intact; the counters show recovery.
func TestLossyPath(t *testing.T) {
	data := pattern(120*1428 + 7)
	fast := Options{InitialTimeout: 30 * time.Millisecond, MinTimeout: 20 * time.Millisecond, MaxTimeout: 100 * time.Millisecond,
		Retries: 10}
	for _, tt := range []struct {
		name   string
		server func(t *testing.T, dir string, addr netip.AddrPort)
		window int
	}{
		{"tftpd-hpa lock-step", func(t *testing.T, dir string, addr netip.AddrPort) {
			const bin = "/usr/sbin/in.tftpd"
			if _, err := os.Stat(bin); err != nil {
				testnet.SkipOrFail(t, "tftpd-hpa not installed: %v", err)
			}
			// -T: retransmit timeout in microseconds.
			startServer(t, addr, bin, "-L", "-u", "root", "-T", "20000", "-s", dir, "-a", addr.String())
		}, 1},
		{"atftpd window 8", func(t *testing.T, dir string, addr netip.AddrPort) {
			startServer(t, addr, atftpdBinary(t), "--daemon", "--no-fork", "--logfile", "/dev/null", "--user", "root",
				"--group", "root", "--retry-timeout", "1", "--port", fmt.Sprint(addr.Port()), "--bind-address", "127.0.0.1", dir)
		}, 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := serverRoot(t, map[string][]byte{"initrd.img": data})
			addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freeUDPPort(t)))
			tt.server(t, dir, addr)
			proxy := startLossyProxy(t, addr, 7)
			o := fast
			o.WindowSize = tt.window
			o.Pipeline = 16 // as the loader asks: the probe must survive the loss and still pick lock-step or the window
			c := &Client{Listen: hostListen, Options: o}
			m := &testnet.MemFile{}
			res, err := c.Get(context.Background(), proxy.addr(), "initrd.img", m)
			if err != nil {
				t.Fatalf("Get through a lossy path = %v (stats %+v, drops %v)", err, res.Stats, proxy.drops())
			}
			if !bytes.Equal(m.Bytes, data) {
				t.Fatalf("Get through a lossy path wrote %d bytes, want %d intact", len(m.Bytes), len(data))
			}
			if res.Pipeline != 1 || res.WindowSize != tt.window {
				t.Errorf("pipeline %d, window %d; want no pipelining and window %d", res.Pipeline, res.WindowSize, tt.window)
			}
			d := proxy.drops()
			if d[0] == 0 || d[1] == 0 || res.Stats.Timeouts+res.Stats.OutOfOrder == 0 {
				t.Errorf("drops %v, stats %+v: the loss was not exercised", d, res.Stats)
			}
			t.Logf("drops client→server %d, server→client %d; stats %+v", d[0], d[1], res.Stats)
		})
	}
}

// startDelayProxy forwards between one client and a TFTP server on loopback like startLossyProxy, but delays every
// datagram by delay in each direction (order kept), which gives the path a round-trip time of 2·delay.
func startDelayProxy(tb testing.TB, server netip.AddrPort, delay time.Duration) netip.AddrPort {
	tb.Helper()
	front, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	back, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { front.Close(); back.Close() })
	type item struct {
		b   []byte
		due time.Time
		out net.PacketConn
		to  func() net.Addr
	}
	var (
		mu        sync.Mutex
		client    net.Addr
		serverTID net.Addr
	)
	pipe := func(in net.PacketConn, deliver func(pkt []byte) item, learn func(net.Addr)) {
		q := make(chan item, 4096)
		go func() {
			for it := range q {
				time.Sleep(time.Until(it.due))
				if to := it.to(); to != nil {
					it.out.WriteTo(it.b, to)
				}
			}
		}()
		go func() {
			defer close(q)
			buf := make([]byte, 70000)
			for {
				n, from, err := in.ReadFrom(buf)
				if err != nil {
					return
				}
				learn(from)
				q <- deliver(append([]byte(nil), buf[:n]...))
			}
		}()
	}
	serverAddr := net.UDPAddrFromAddrPort(server)
	pipe(front, func(pkt []byte) item {
		return item{pkt, time.Now().Add(delay), back, func() net.Addr {
			mu.Lock()
			defer mu.Unlock()
			if serverTID == nil || packet(pkt).opcode() == opRRQ {
				return serverAddr
			}
			return serverTID
		}}
	}, func(a net.Addr) { mu.Lock(); client = a; mu.Unlock() })
	pipe(back, func(pkt []byte) item {
		return item{pkt, time.Now().Add(delay), front, func() net.Addr { mu.Lock(); defer mu.Unlock(); return client }}
	}, func(a net.Addr) { mu.Lock(); serverTID = a; mu.Unlock() })
	return front.LocalAddr().(*net.UDPAddr).AddrPort()
}

// BenchmarkATFTPDOverRTT fetches 1 MB from atftpd through a proxy adding 1 ms each way (2 ms RTT, a LAN with a
// busy router or a WAN hop): lock-step against windowsize 16, the case RFC 7440 exists for. bench/protocols.sh
// prints the rows.
func BenchmarkATFTPDOverRTT(b *testing.B) {
	bin := atftpdBinary(b)
	data := pattern(1 << 20)
	dir := b.TempDir()
	os.Chmod(dir, 0o777)
	os.WriteFile(dir+"/f", data, 0o644)
	c, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	cmd := exec.Command(bin, "--daemon", "--no-fork", "--logfile", "/dev/null", "--user", "root", "--group", "root",
		"--port", fmt.Sprint(port), "--bind-address", "127.0.0.1", dir)
	if err := cmd.Start(); err != nil {
		b.Skipf("start atftpd: %v", err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, window := range []int{1, 16} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				proxy := startDelayProxy(b, addr, time.Millisecond)
				cl := &Client{Listen: hostListen, Options: Options{WindowSize: window, InitialTimeout: 100 * time.Millisecond, Retries: 20}}
				m := &testnet.MemFile{}
				if _, err := cl.Get(context.Background(), proxy, "f", m); err != nil || !bytes.Equal(m.Bytes, data) {
					b.Fatalf("Get = %v (%d bytes)", err, len(m.Bytes))
				}
			}
		})
	}
}
