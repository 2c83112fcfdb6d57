package netstack

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// BenchmarkRxUDPFrame measures the receive path's cost per frame, the guest's bulk-UDP path
// without QEMU: a 1514-byte Ethernet frame (1472 bytes of UDP payload) written into a datagram
// socket pair that stands in for the tap fd, read by the tap link, carried through gVisor into a
// UDP socket and read from it. Each iteration is one frame; frames go in bursts of 32 (the
// socket pair's queue holds a burst), then the burst is read. Run it with -cpu 1 (the guest
// has one CPU) and under qemu-s390x for a big-endian, TCG-emulated figure:
//
//	go test -run '^$' -bench RxUDPFrame -benchmem -cpu 1 ./netstack
//	GOOS=linux GOARCH=s390x go test -c -o /tmp/ns.test ./netstack && qemu-s390x /tmp/ns.test -test.run '^$' -test.bench RxUDPFrame -test.benchmem -test.cpu 1
func BenchmarkRxUDPFrame(b *testing.B) {
	tapFD, peer := framePair(b)
	unix.SetsockoptInt(peer, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	unix.SetsockoptInt(tapFD, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	st, err := New(Config{TapFD: tapFD, MAC: guestMAC})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		b.Fatal(err)
	}
	c, err := st.ListenUDP(netip.MustParseAddrPort("10.0.2.15:9000"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	frame := buildUDP(peerMAC, tcpip.LinkAddress(guestMAC), netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.2.15"), 7777, 9000, make([]byte, 1472))
	buf := make([]byte, 2048)
	const burst = 32
	c.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(1472)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(burst, b.N-done)
		for i := 0; i < n; i++ {
			for {
				_, err := unix.Write(peer, frame)
				if err == nil {
					break
				}
				if err != unix.EAGAIN && err != unix.ENOBUFS {
					b.Fatal(err)
				}
				runtime.Gosched()
			}
		}
		for i := 0; i < n; i++ {
			m, err := c.Read(buf)
			if err != nil || m != 1472 {
				b.Fatalf("frame %d: read %d bytes: %v (stats %+v)", done+i, m, err, st.Stats())
			}
		}
		done += n
	}
}
