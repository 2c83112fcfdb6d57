package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func hostListen() (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }

// fakeServer answers queries on loopback with answer(q) -> packets to send (already packed), by query.
type fakeServer struct {
	conn    net.PacketConn
	queries chan string
}

func startFake(t *testing.T, answer func(req dnsmessage.Message) [][]byte) (*fakeServer, uint16) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFake(t, c, answer)
}

// serveFake answers queries arriving on c.
func serveFake(t *testing.T, c net.PacketConn, answer func(req dnsmessage.Message) [][]byte) (*fakeServer, uint16) {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	f := &fakeServer{conn: c, queries: make(chan string, 100)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if err := m.Unpack(buf[:n]); err != nil || len(m.Questions) != 1 {
				continue
			}
			f.queries <- m.Questions[0].Name.String() + " " + m.Questions[0].Type.String()
			for _, p := range answer(m) {
				c.WriteTo(p, from)
			}
		}
	}()
	return f, uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

func reply(req dnsmessage.Message, rcode dnsmessage.RCode, answers ...dnsmessage.Resource) []byte {
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: req.ID, Response: true, RecursionAvailable: true, RCode: rcode},
		Questions: req.Questions,
		Answers:   answers,
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// echo packs req itself with answers but the QR bit clear: a query, not a response.
func echo(req dnsmessage.Message, answers ...dnsmessage.Resource) []byte {
	m := dnsmessage.Message{Header: req.Header, Questions: req.Questions, Answers: answers}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func rr(name string, body dnsmessage.ResourceBody) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: 60}, Body: body}
}

// zone answers from a small table; anything else is NXDOMAIN.
func zone(req dnsmessage.Message) [][]byte {
	q := req.Questions[0]
	name := strings.ToLower(q.Name.String())
	switch {
	case name == "tftp.lab." && q.Type == dnsmessage.TypeA:
		return [][]byte{reply(req, dnsmessage.RCodeSuccess, rr("tftp.lab.", &dnsmessage.AResource{A: [4]byte{10, 0, 2, 2}}))}
	case name == "tftp.lab." && q.Type == dnsmessage.TypeAAAA:
		return [][]byte{reply(req, dnsmessage.RCodeSuccess, rr("tftp.lab.", &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("fec0::2").As16()}))}
	case name == "boot.lab." && q.Type == dnsmessage.TypeA:
		return [][]byte{reply(req, dnsmessage.RCodeSuccess,
			rr("boot.lab.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("srv.lab.")}),
			rr("srv.lab.", &dnsmessage.AResource{A: [4]byte{10, 0, 2, 9}}),
			rr("other.lab.", &dnsmessage.AResource{A: [4]byte{6, 6, 6, 6}}))}
	case name == "spoofed.lab.":
		bad := req
		bad.ID++
		other := req
		other.Questions = []dnsmessage.Question{{Name: dnsmessage.MustNewName("x.lab."), Type: q.Type, Class: q.Class}}
		return [][]byte{
			reply(bad, dnsmessage.RCodeSuccess, rr("spoofed.lab.", &dnsmessage.AResource{A: [4]byte{6, 6, 6, 6}})),
			reply(other, dnsmessage.RCodeSuccess, rr("x.lab.", &dnsmessage.AResource{A: [4]byte{6, 6, 6, 6}})),
			[]byte("garbage"),
			echo(req, rr("spoofed.lab.", &dnsmessage.AResource{A: [4]byte{6, 6, 6, 6}})), // not a response (QR clear)
			reply(req, dnsmessage.RCodeSuccess, rr("spoofed.lab.", &dnsmessage.AResource{A: [4]byte{10, 0, 2, 7}})),
		}
	case name == "chaos.lab." && q.Type == dnsmessage.TypeA:
		chaos := rr("chaos.lab.", &dnsmessage.AResource{A: [4]byte{6, 6, 6, 6}})
		chaos.Header.Class = dnsmessage.ClassCHAOS
		return [][]byte{reply(req, dnsmessage.RCodeSuccess, chaos, rr("chaos.lab.", &dnsmessage.AResource{A: [4]byte{10, 0, 2, 8}}))}
	case name == "loop.lab." && q.Type == dnsmessage.TypeA:
		return [][]byte{reply(req, dnsmessage.RCodeSuccess,
			rr("loop.lab.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("loop2.lab.")}),
			rr("loop2.lab.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("loop.lab.")}))}
	case name == "silent.lab.":
		return nil
	case name == "fail.lab.":
		return [][]byte{reply(req, dnsmessage.RCodeServerFailure)}
	case name == "kernel.example.com." && q.Type == dnsmessage.TypeA:
		return [][]byte{reply(req, dnsmessage.RCodeSuccess, rr("kernel.example.com.", &dnsmessage.AResource{A: [4]byte{10, 0, 2, 3}}))}
	}
	return [][]byte{reply(req, dnsmessage.RCodeNameError)}
}

func TestLookupHost(t *testing.T) {
	_, port := startFake(t, zone)
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tt := range []struct {
		host    string
		search  []string
		want    string
		wantErr string
		wantIs  error
	}{
		{host: "tftp.lab", want: "[10.0.2.2 fec0::2]"},
		{host: "TFTP.Lab.", want: "[10.0.2.2 fec0::2]"},
		{host: "boot.lab", want: "[10.0.2.9]"},
		{host: "spoofed.lab", want: "[10.0.2.7]"},
		{host: "chaos.lab", want: "[10.0.2.8]"},
		{host: "10.0.2.44", want: "[10.0.2.44]"},
		{host: "[fec0::9]", want: "[fec0::9]"},
		{host: "kernel", search: []string{"nowhere.org", "example.com"}, want: "[10.0.2.3]"},
		{host: "missing.lab", wantErr: `dns lookup "missing.lab" (A): server 127.0.0.1: no such host`, wantIs: ErrNotFound},
		{host: "loop.lab", wantErr: `dns lookup "loop.lab" (A): server 127.0.0.1: no such host`, wantIs: ErrNotFound},
		{host: "fail.lab", wantErr: `dns lookup "fail.lab" (A): server 127.0.0.1: server answered ServerFailure`},
	} {
		t.Run(tt.host, func(t *testing.T) {
			r := &Resolver{Servers: []netip.Addr{lo}, Port: port, Listen: hostListen, Search: tt.search, Timeout: 2 * time.Second}
			got, err := r.LookupHost(context.Background(), tt.host)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("LookupHost(%q) = %v, %v; want error %q", tt.host, got, err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("LookupHost(%q) = %v, want errors.Is %v", tt.host, err, tt.wantIs)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("LookupHost(%q) = %v, %v; want %s", tt.host, got, err, tt.want)
			}
		})
	}
}

func TestSilentServerFallsBack(t *testing.T) {
	// A server that never answers: each try times out (2 tries for A, 2 for AAAA).
	_, sport := startFake(t, func(dnsmessage.Message) [][]byte { return nil })
	_, port := startFake(t, zone)
	r := &Resolver{Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Port: sport, Listen: hostListen,
		Timeout: 30 * time.Millisecond, Attempts: 2}
	_, err := r.LookupHost(context.Background(), "tftp.lab")
	if err == nil || !strings.Contains(err.Error(), "no answer (timeout)") || r.Stats.Timeouts != 4 {
		t.Errorf("LookupHost against a silent server = %v, stats %+v; want timeout after 2 tries per type", err, r.Stats)
	}
	// A dead first server (nothing listens on 127.0.0.3) fails over to the second.
	r = &Resolver{Servers: []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.1")}, Port: port,
		Listen: func() (net.PacketConn, error) { return net.ListenPacket("udp4", "0.0.0.0:0") }, Timeout: 30 * time.Millisecond, Attempts: 1}
	got, err := r.Lookup(context.Background(), "tftp.lab", dnsmessage.TypeA)
	if err != nil || fmt.Sprint(got) != "[10.0.2.2]" {
		t.Errorf("Lookup with a dead first server = %v, %v; want [10.0.2.2] from the second", got, err)
	}
}

// TestServerOrder: NXDOMAIN is a definite answer (the next server is not asked); SERVFAIL moves on to the next
// server at once (no second try at the failing one).
func TestServerOrder(t *testing.T) {
	// Two fake servers on one port, at 127.0.0.1 and 127.0.0.2.
	first, port := startFake(t, func(req dnsmessage.Message) [][]byte {
		if strings.HasPrefix(req.Questions[0].Name.String(), "gone.") {
			return [][]byte{reply(req, dnsmessage.RCodeNameError)}
		}
		return [][]byte{reply(req, dnsmessage.RCodeServerFailure)}
	})
	c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Skipf("second loopback address: %v", err)
	}
	second, _ := serveFake(t, c, func(req dnsmessage.Message) [][]byte {
		name := req.Questions[0].Name.String()
		return [][]byte{reply(req, dnsmessage.RCodeSuccess, rr(name, &dnsmessage.AResource{A: [4]byte{10, 0, 2, 5}}))}
	})
	r := &Resolver{Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}, Port: port,
		Listen: func() (net.PacketConn, error) { return net.ListenPacket("udp4", "0.0.0.0:0") }, Timeout: time.Second, Attempts: 3}
	if got, err := r.Lookup(context.Background(), "gone.lab", dnsmessage.TypeA); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(gone.lab) = %v, %v; want ErrNotFound from the first server", got, err)
	}
	if n := len(second.queries); n != 0 {
		t.Errorf("second server got %d queries after the first said NXDOMAIN, want 0", n)
	}
	got, err := r.Lookup(context.Background(), "boot.lab", dnsmessage.TypeA)
	if err != nil || fmt.Sprint(got) != "[10.0.2.5]" {
		t.Errorf("Lookup(boot.lab) = %v, %v; want [10.0.2.5] from the second server", got, err)
	}
	if n := len(first.queries); n != 2 {
		t.Errorf("first server got %d queries (gone.lab, boot.lab), want 2: SERVFAIL is not retried", n)
	}
}

// TestOffPathAnswer: an answer with the right ID and question from another port than the server's is ignored.
func TestOffPathAnswer(t *testing.T) {
	forger, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { forger.Close() })
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port := serveFake(t, srv, func(req dnsmessage.Message) [][]byte {
		return [][]byte{reply(req, dnsmessage.RCodeSuccess, rr("tftp.lab.", &dnsmessage.AResource{A: [4]byte{10, 0, 2, 2}}))}
	})
	// The client's socket is wrapped so that each query first makes the forger send a matching answer to it.
	r := &Resolver{Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Port: port, Timeout: 2 * time.Second}
	r.Listen = func() (net.PacketConn, error) {
		c, err := hostListen()
		if err != nil {
			return nil, err
		}
		return &forgingConn{PacketConn: c, forger: forger}, nil
	}
	got, err := r.Lookup(context.Background(), "tftp.lab", dnsmessage.TypeA)
	if err != nil || fmt.Sprint(got) != "[10.0.2.2]" || r.Stats.Ignored != 1 {
		t.Errorf("Lookup = %v, %v, stats %+v; want [10.0.2.2] with the forged answer ignored", got, err, r.Stats)
	}
}

// forgingConn sends, for each query written, a matching answer (6.6.6.6) from forger to the query's source.
type forgingConn struct {
	net.PacketConn
	forger net.PacketConn
}

func (c *forgingConn) WriteTo(b []byte, to net.Addr) (int, error) {
	var q dnsmessage.Message
	if err := q.Unpack(b); err == nil {
		c.forger.WriteTo(reply(q, dnsmessage.RCodeSuccess, rr(q.Questions[0].Name.String(), &dnsmessage.AResource{A: [4]byte{6, 6, 6, 6}})),
			c.PacketConn.LocalAddr())
	}
	return c.PacketConn.WriteTo(b, to)
}

func TestNoServers(t *testing.T) {
	r := &Resolver{Listen: hostListen}
	if _, err := r.LookupHost(context.Background(), "x.lab"); !errors.Is(err, ErrNoServers) {
		t.Errorf("LookupHost without servers = %v, want ErrNoServers", err)
	}
}

// TestDnsmasq resolves against a real dnsmasq on loopback.
func TestDnsmasq(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dnsmasq not installed: %v", err)
		}
		t.Skipf("dnsmasq not installed: %v", err)
	}
	c, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	cmd := exec.Command(bin, "--no-daemon", "--keep-in-foreground", "--port", fmt.Sprint(port), "--listen-address=127.0.0.1",
		"--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root",
		"--address=/tftp.lab/10.0.2.2", "--address=/tftp.lab/fec0::2", "--pid-file=")
	if err := cmd.Start(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("start dnsmasq: %v", err)
		}
		t.Skipf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := &Resolver{Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Port: uint16(port), Listen: hostListen,
		Timeout: 100 * time.Millisecond, Attempts: 30} // retries cover dnsmasq's start-up
	got, err := r.LookupHost(context.Background(), "tftp.lab")
	if err != nil || fmt.Sprint(got) != "[10.0.2.2 fec0::2]" {
		t.Errorf("LookupHost(tftp.lab) via dnsmasq = %v, %v; want [10.0.2.2 fec0::2]", got, err)
	}
	if _, err := r.LookupHost(context.Background(), "nothing.invalid"); err == nil {
		t.Errorf("LookupHost(nothing.invalid) via dnsmasq succeeded, want an error")
	}
}

func FuzzParseAnswer(f *testing.F) {
	req := dnsmessage.Message{Header: dnsmessage.Header{ID: 7}, Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("boot.lab."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	for _, p := range zone(req) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1500 {
			return
		}
		addrs, err := parseAnswer(b, 7, req.Questions[0])
		if err == nil && len(addrs) == 0 {
			t.Errorf("parseAnswer(% x) = no addresses and no error", b)
		}
		for _, a := range addrs {
			if !a.Is4() {
				t.Errorf("parseAnswer(% x) returned %v for an A query", b, a)
			}
		}
	})
}

// TestParseAnswerPointerLoop: an answer whose name is a compression pointer to itself ends as a malformed message,
// not a loop.
func TestParseAnswerPointerLoop(t *testing.T) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("a."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	msg := []byte{
		0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header: ID 7, response, 1 question, 1 answer
		1, 'a', 0, 0, 1, 0, 1, // question a. A IN
		0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 2, 2, // answer: name points at itself (offset 19)
	}
	done := make(chan error, 1)
	go func() { _, err := parseAnswer(msg, 7, q); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "malformed answer section") {
			t.Errorf("parseAnswer(pointer loop) = %v, want a malformed answer section", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parseAnswer(pointer loop) did not return")
	}
}
