package netstack

import (
	"net/netip"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// BenchmarkTxUDPFrame measures the send path's cost per datagram, the guest's TFTP ACK path
// without QEMU: a Write on a connected UDP socket, carried to a datagram socket pair that stands
// in for the tap fd, and read from it. Sub-benchmarks: "fast" is UDPConn.Write (the send fast
// path), "gvisor" is gonet's Write through gVisor's whole output path; payloads of 4 bytes (a
// TFTP ACK) and 1472 (a full frame). Frames go in bursts of 32, then the burst is read. Run it
// with -cpu 1 and under qemu-s390x for a big-endian, TCG-emulated figure:
//
//	go test -run '^$' -bench TxUDPFrame -benchmem -cpu 1 ./netstack
//	GOOS=linux GOARCH=s390x go test -c -o /tmp/ns.test ./netstack && qemu-s390x /tmp/ns.test -test.run '^$' -test.bench TxUDPFrame -test.benchmem -test.cpu 1
func BenchmarkTxUDPFrame(b *testing.B) {
	for _, size := range []int{4, 1472} {
		for _, path := range []string{"fast", "gvisor"} {
			b.Run(path+"/"+strconv.Itoa(size), func(b *testing.B) { benchTx(b, size, path == "fast") })
		}
	}
}

func benchTx(b *testing.B, size int, fast bool) {
	tapFD, peer := framePair(b)
	unix.SetsockoptInt(tapFD, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	unix.SetsockoptInt(peer, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	st, err := New(Config{TapFD: tapFD, MAC: guestMAC})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		b.Fatal(err)
	}
	if err := st.Stack().AddStaticNeighbor(NICID, ipv4.ProtocolNumber, tcpip.AddrFrom4([4]byte{10, 0, 2, 2}), tcpip.LinkAddress(peerMAC)); err != nil {
		b.Fatal(err)
	}
	c, err := st.DialUDP(netip.MustParseAddrPort("10.0.2.15:5000"), netip.MustParseAddrPort("10.0.2.2:69"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	write := c.Write
	if !fast {
		write = c.gc.Write
	}
	payload := make([]byte, size)
	buf := make([]byte, 2048)
	const burst = 32
	fast0 := st.send.txPackets.Load()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(burst, b.N-done)
		for i := 0; i < n; i++ {
			if _, err := write(payload); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < n; i++ {
			if m, err := unix.Read(peer, buf); err != nil || m != 42+size {
				b.Fatalf("frame %d: read %d bytes: %v", done+i, m, err)
			}
		}
		done += n
	}
	b.StopTimer()
	if took := st.send.txPackets.Load() - fast0; (took == uint64(b.N)) != fast {
		b.Fatalf("%d of %d datagrams took the fast path", took, b.N)
	}
}
