package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	pintftp "github.com/pin/tftp/v3"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"netipl/internal/testnet"
	"netipl/internal/teststack"
)

// TestGetOverGVisor runs the client on one gVisor stack and pin/tftp (single-port mode) on another, joined by a
// pipe link: the configuration the guest uses, with the NIC replaced by the pipe.
func TestGetOverGVisor(t *testing.T) {
	clientAddr, serverAddr := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2")
	a, b := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 1500)
	cs := teststack.IPv4(t, a, netip.PrefixFrom(clientAddr, 24), udp.NewProtocol)
	ss := teststack.IPv4(t, b, netip.PrefixFrom(serverAddr, 24), udp.NewProtocol)

	files := map[string][]byte{"kernel.img": pattern(1<<20 + 3)}
	srv := pintftp.NewServer(func(name string, rf io.ReaderFrom) error {
		f, ok := files[name]
		if !ok {
			return fmt.Errorf("no such file")
		}
		_, err := rf.ReadFrom(bytes.NewReader(f))
		return err
	}, nil)
	srv.EnableSinglePort()
	sconn, err := gonet.DialUDP(ss, &tcpip.FullAddress{NIC: teststack.NIC, Addr: tcpip.AddrFromSlice(serverAddr.AsSlice()), Port: 69}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("server socket: %v", err)
	}
	go srv.Serve(sconn)
	t.Cleanup(func() { srv.Shutdown(); sconn.Close() })

	c := &Client{Listen: func() (net.PacketConn, error) {
		return gonet.DialUDP(cs, &tcpip.FullAddress{NIC: teststack.NIC, Addr: tcpip.AddrFromSlice(clientAddr.AsSlice())}, nil, ipv4.ProtocolNumber)
	}}
	// pin/tftp v3.1.0 caps blksize at 512 on a socket that is not a *net.UDPConn (it sizes blocks from the
	// interface MTU found through IP_PKTINFO), so over gonet the negotiation ends at 512 whatever is asked.
	for _, bs := range []int{512, 1428} {
		m := &testnet.MemFile{}
		c.BlockSize = bs
		res, err := c.Get(context.Background(), netip.AddrPortFrom(serverAddr, 69), "kernel.img", m)
		if err != nil {
			t.Fatalf("Get(kernel.img, blksize %d) = %v", bs, err)
		}
		if !bytes.Equal(m.Bytes, files["kernel.img"]) || res.BlockSize != 512 {
			t.Errorf("Get(kernel.img, blksize %d): %d bytes, block size %d, stats %+v", bs, len(m.Bytes), res.BlockSize, res.Stats)
		}
	}
	_, err = c.Get(context.Background(), netip.AddrPortFrom(serverAddr, 69), "nope", &testnet.MemFile{})
	if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), `tftp RRQ "nope" from 10.0.2.2:69: `) {
		t.Errorf("Get(nope) over gVisor = %v, want the server's file-not-found ERROR", err)
	}
}
