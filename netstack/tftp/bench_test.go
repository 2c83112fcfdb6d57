package tftp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"netipl/internal/teststack"
)

// benchServer is a minimal RFC 2347/2348/7440 server for throughput runs: it answers each RRQ with an OACK
// (blksize and windowsize as asked), then sends windows of DATA and moves on at each ACK. It does not time out:
// the client drives every retransmission.
func benchServer(conn net.PacketConn, data []byte) {
	buf := make([]byte, 70000)
	out := make([]byte, 0, 70000)
	for {
		n, client, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		p := packet(buf[:n])
		if p.opcode() != opRRQ {
			continue
		}
		_, rest, _ := cstring(p[2:])
		_, rest, _ = cstring(rest)
		blk, window := 512, 1
		oack := binary.BigEndian.AppendUint16(nil, opOACK)
		for len(rest) > 0 {
			k, r, err := cstring(rest)
			if err != nil {
				break
			}
			v, r, err := cstring(r)
			if err != nil {
				break
			}
			rest = r
			switch k {
			case "blksize":
				blk, _ = strconv.Atoi(v)
			case "windowsize":
				window, _ = strconv.Atoi(v)
			default:
				continue
			}
			oack = append(append(append(append(oack, k...), 0), v...), 0)
		}
		conn.WriteTo(oack, client)
		blocks := len(data)/blk + 1
		acked := -1 // waiting for ACK 0
		for acked < blocks {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			a := packet(buf[:n])
			if a.opcode() != opACK {
				continue
			}
			got := int(a.block())
			next := acked + 1
			if acked < 0 {
				next = 0
			}
			// Map the 16-bit ACK onto the window after the last ACK.
			for abs := max(acked, 0); abs <= max(acked, 0)+window; abs++ {
				if abs&0xffff == got {
					next = abs
					break
				}
			}
			acked = next
			for abs := acked + 1; abs <= acked+window && abs <= blocks; abs++ {
				lo := (abs - 1) * blk
				hi := min(lo+blk, len(data))
				out = binary.BigEndian.AppendUint16(out[:0], opDATA)
				out = binary.BigEndian.AppendUint16(out, uint16(abs))
				out = append(out, data[lo:hi]...)
				conn.WriteTo(out, client)
			}
		}
	}
}

type discardWriter struct{}

func (discardWriter) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// BenchmarkGetOverGVisor measures the client on a gVisor stack fetching from benchServer on a second stack over a
// pipe link (MTU 9000 so 8192-byte blocks fit): the stack and client cost per block without a NIC. bench/protocols.sh
// prints these rows.
func BenchmarkGetOverGVisor(b *testing.B) {
	data := pattern(16 << 20)
	for _, tt := range []struct{ blk, window int }{{1428, 1}, {1428, 16}, {8192, 1}, {8192, 16}} {
		b.Run(fmt.Sprintf("blksize=%d/window=%d", tt.blk, tt.window), func(b *testing.B) {
			clientAddr, serverAddr := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("10.0.2.2")
			a, p := pipe.New("\x52\x54\x00\x12\x34\x56", "\x52\x55\x0a\x00\x02\x02", 9000)
			cs := teststack.IPv4(b, a, netip.PrefixFrom(clientAddr, 24), udp.NewProtocol)
			ss := teststack.IPv4(b, p, netip.PrefixFrom(serverAddr, 24), udp.NewProtocol)
			sconn, err := gonet.DialUDP(ss, &tcpip.FullAddress{NIC: teststack.NIC, Addr: tcpip.AddrFromSlice(serverAddr.AsSlice()), Port: 69}, nil, ipv4.ProtocolNumber)
			if err != nil {
				b.Fatal(err)
			}
			defer sconn.Close()
			go benchServer(sconn, data)
			c := &Client{Listen: func() (net.PacketConn, error) {
				return gonet.DialUDP(cs, &tcpip.FullAddress{NIC: teststack.NIC, Addr: tcpip.AddrFromSlice(clientAddr.AsSlice())}, nil, ipv4.ProtocolNumber)
			}, Options: Options{BlockSize: tt.blk, WindowSize: tt.window, NoTransferSize: true}}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := c.Get(context.Background(), netip.AddrPortFrom(serverAddr, 69), "f", discardWriter{})
				if err != nil || res.Size != int64(len(data)) {
					b.Fatalf("Get = %+v, %v", res, err)
				}
			}
		})
	}
}
