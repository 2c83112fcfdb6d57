package httpfetch

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"netipl/internal/testnet"
	"netipl/internal/teststack"
)

// gvisorDial is the dial function the loader hands to Client: TCP over the gVisor stack.
func gvisorDial(s *stack.Stack) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: no resolver in this test: %w", addr, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, err
		}
		return gonet.DialContextTCP(ctx, s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(ip.AsSlice()), Port: uint16(p)}, ipv4.ProtocolNumber)
	}
}

// TestGetOverGVisor serves a file from one gVisor stack and downloads it from another over a pipe link.
func TestGetOverGVisor(t *testing.T) {
	clientAddr, serverAddr := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2")
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 1500)
	cs, ss := teststack.IPv4(t, a, netip.PrefixFrom(clientAddr, 24), tcp.NewProtocol), teststack.IPv4(t, b, netip.PrefixFrom(serverAddr, 24), tcp.NewProtocol)
	ln, err := gonet.ListenTCP(ss, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(serverAddr.AsSlice()), Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	body := pattern(2<<20 + 7)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "initrd", testTime, bytes.NewReader(body))
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	var last Progress
	c := &Client{Dial: gvisorDial(cs), Progress: func(p Progress) { last = p }}
	m := &testnet.MemFile{}
	res, err := c.Get(context.Background(), "http://10.0.2.2/initrd", m)
	if err != nil {
		t.Fatalf("Get over gVisor = %v", err)
	}
	if !bytes.Equal(m.Bytes, body) || res.ContentLength != int64(len(body)) {
		t.Errorf("Get over gVisor: %d bytes, Content-Length %d, want %d", len(m.Bytes), res.ContentLength, len(body))
	}
	if !last.Done || last.Received != int64(len(body)) || last.Size != int64(len(body)) {
		t.Errorf("last progress %+v, want done at %d", last, len(body))
	}
}

type discardWriter struct{}

func (discardWriter) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// BenchmarkGetOverGVisor measures HTTP over TCP between two gVisor stacks joined by a pipe (MTU 1500): the stack
// and client cost without a NIC. bench/protocols.sh prints the row.
func BenchmarkGetOverGVisor(b *testing.B) {
	clientAddr, serverAddr := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2")
	a, p := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 1500)
	cs, ss := teststack.IPv4(b, a, netip.PrefixFrom(clientAddr, 24), tcp.NewProtocol), teststack.IPv4(b, p, netip.PrefixFrom(serverAddr, 24), tcp.NewProtocol)
	ln, err := gonet.ListenTCP(ss, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(serverAddr.AsSlice()), Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	body := pattern(32 << 20)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "initrd", testTime, bytes.NewReader(body))
	})}
	go hs.Serve(ln)
	defer hs.Close()
	c := &Client{Dial: gvisorDial(cs)}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := c.Get(context.Background(), "http://10.0.2.2/initrd", discardWriter{})
		if err != nil || res.Size != int64(len(body)) {
			b.Fatalf("Get = %+v, %v", res, err)
		}
	}
}
