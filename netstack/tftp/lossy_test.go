package tftp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
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
				skipOrFail(t, "tftpd-hpa not installed: %v", err)
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
			c := &Client{Listen: hostListen, Options: o}
			m := &memFile{}
			res, err := c.Get(context.Background(), proxy.addr(), "initrd.img", m)
			if err != nil {
				t.Fatalf("Get through a lossy path = %v (stats %+v, drops %v)", err, res.Stats, proxy.drops())
			}
			if !bytes.Equal(m.bytes(), data) {
				t.Fatalf("Get through a lossy path wrote %d bytes, want %d intact", len(m.bytes()), len(data))
			}
			d := proxy.drops()
			if d[0] == 0 || d[1] == 0 || res.Stats.Timeouts+res.Stats.OutOfOrder == 0 {
				t.Errorf("drops %v, stats %+v: the loss was not exercised", d, res.Stats)
			}
			t.Logf("drops client→server %d, server→client %d; stats %+v", d[0], d[1], res.Stats)
		})
	}
}
