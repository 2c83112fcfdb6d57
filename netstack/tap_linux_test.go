package netstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"netipl/internal/testnet"
)

// requireNetAdmin skips (or fails under CI=true) when the test cannot create namespaces and taps.
func requireNetAdmin(tb testing.TB) {
	tb.Helper()
	testnet.NeedRoot(tb, "a network namespace and a tap device")
	testnet.LookPath(tb, "ip")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testnet.SkipOrFail(tb, "needs /dev/net/tun: %v", err)
	}
}

// inNetns runs f in network namespace ns (testnet.InNetns) and fails the test if f fails.
func inNetns(tb testing.TB, ns string, f func() error) {
	tb.Helper()
	if err := testnet.InNetns(ns, f); err != nil {
		tb.Fatal(err)
	}
}

// setupTapNetns creates namespace ns with a tap device "nipl0" whose kernel side is 10.0.2.2/24,
// and returns the tap fd (the "NIC" side a netstack drives) plus a UDP echo socket and a TCP
// listener opened inside the namespace.
func setupTapNetns(tb testing.TB) (tap *os.File, echo net.PacketConn, tcpL net.Listener) {
	tb.Helper()
	requireNetAdmin(tb)
	ns := fmt.Sprintf("netipl-test-%d", os.Getpid())
	testnet.AddNetns(tb, ns)
	inNetns(tb, ns, func() error {
		var err error
		if tap, err = OpenTap("nipl0"); err != nil {
			return err
		}
		if echo, err = net.ListenPacket("udp4", "0.0.0.0:7777"); err != nil {
			return err
		}
		tcpL, err = net.Listen("tcp4", "0.0.0.0:8080")
		return err
	})
	tb.Cleanup(func() { echo.Close(); tcpL.Close(); tap.Close() })
	testnet.Run(tb, "ip", "-n", ns, "addr", "add", "10.0.2.2/24", "dev", "nipl0")
	testnet.Run(tb, "ip", "-n", ns, "link", "set", "nipl0", "address", "52:55:0a:00:02:02", "up")
	testnet.Run(tb, "ip", "-n", ns, "link", "set", "lo", "up")
	return tap, echo, tcpL
}

// dupTap returns a duplicate of tap's fd for Config.TapFD, which the Stack takes over (and closes)
// while the test keeps and closes its own file.
func dupTap(tb testing.TB, tap *os.File) int {
	tb.Helper()
	rc, err := tap.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd, err = unix.Dup(int(f)) }); err != nil {
		tb.Fatal(err)
	}
	if err != nil {
		tb.Fatalf("dup tap fd: %v", err)
	}
	return fd
}

// TestUDPOverTapInNetns is the host form of the guest's network path: the Stack over a real tap
// fd (as metal's /dev/net/tun provides it) exchanges UDP and TCP with the Linux kernel's stack in a
// private network namespace, resolving the peer by ARP.
func TestUDPOverTapInNetns(t *testing.T) {
	tap, echo, tcpL := setupTapNetns(t)
	go echoUDP(echo)
	go func() {
		c, err := tcpL.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("hello from the kernel\n"))
		c.Close()
	}()

	st := stackOverTap(t, tap)
	c, err := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("10.0.2.2:7777"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchangeUDP(t, c, 50)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := st.DialTCP(ctx, netip.MustParseAddrPort("10.0.2.2:8080"))
	if err != nil {
		t.Fatal(err)
	}
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, _ := readFull(tc, buf[:22])
	if got := string(buf[:n]); got != "hello from the kernel\n" {
		t.Errorf("TCP read %q", got)
	}
	tc.Close()

	s := st.Stats()
	if s.ARPRequestsSent < 1 || s.ARPRepliesReceived < 1 || s.UDPReceived != 50 || s.TxPackets < 51 || s.RxPackets < 51 {
		t.Errorf("stats %+v: want ARP resolved, 50 UDP echoes, ≥51 frames each way", s)
	}
}

// TestTapByName opens the tap itself (Config.TapName) inside a namespace, as a host run of the
// loader would.
func TestTapByName(t *testing.T) {
	requireNetAdmin(t)
	ns := fmt.Sprintf("netipl-tapname-%d", os.Getpid())
	testnet.AddNetns(t, ns)
	var st *Stack
	inNetns(t, ns, func() error {
		var err error
		st, err = New(Config{TapName: "nipl1", MAC: guestMAC})
		return err
	})
	defer st.Close()
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "nipl1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nipl1") {
		t.Fatalf("tap nipl1 not present in %s: %v %s", ns, err, out)
	}
	st.Close()
	out, _ = exec.Command("ip", "-n", ns, "-o", "link", "show", "nipl1").CombinedOutput()
	if strings.Contains(string(out), "nipl1:") {
		t.Errorf("tap nipl1 still present after Close: %s", out)
	}
}

// The benchmarks below are run by bench/nic.sh (-benchtime=1x): they measure the host-side tap
// variant of the NIC path (gVisor stack over a real tap, Linux kernel as the peer) and report
// their numbers as metrics. They do a fixed amount of work regardless of b.N.

// BenchmarkTapUDPRTT reports the median and 99th-percentile UDP round trip through the tap.
func BenchmarkTapUDPRTT(b *testing.B) {
	tap, echo, tcpL := setupTapNetns(b)
	tcpL.Close()
	go echoUDP(echo)
	st := stackOverTap(b, tap)
	c, err := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("10.0.2.2:7777"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const rounds = 2000
	rtts := make([]time.Duration, 0, rounds)
	msg, buf := make([]byte, 64), make([]byte, 2048)
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		start := time.Now()
		c.SetDeadline(start.Add(2 * time.Second))
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatalf("round %d: %v", i, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds())/1e3, "rtt_median_us")
	b.ReportMetric(float64(rtts[len(rtts)*99/100].Nanoseconds())/1e3, "rtt_p99_us")
}

// BenchmarkTapUDPBulkIn sends 1472-byte datagrams from the kernel into the stack as fast as the
// kernel allows and reports the received rate and the datagrams lost (and where).
func BenchmarkTapUDPBulkIn(b *testing.B) {
	tap, echo, tcpL := setupTapNetns(b)
	tcpL.Close()
	st := stackOverTap(b, tap)
	rx, err := st.ListenUDP(netip.MustParseAddrPort("10.0.2.15:9000"))
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	// Resolve ARP both ways before the clock starts.
	warm, _ := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("10.0.2.2:7777"))
	warm.Write([]byte("hi"))
	buf := make([]byte, 2048)
	echo.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := echo.ReadFrom(buf); err != nil {
		b.Fatal(err)
	}
	const total = 100000
	payload := make([]byte, 1472)
	dst := &net.UDPAddr{IP: net.IPv4(10, 0, 2, 15), Port: 9000}
	sent := 0
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			if _, err := echo.WriteTo(payload, dst); err == nil {
				sent++
			}
		}
	}()
	got, bytesIn := 0, 0
	var last time.Time
	for {
		rx.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := rx.ReadFrom(buf)
		if err != nil {
			break
		}
		got++
		bytesIn += n
		last = time.Now()
	}
	<-done
	s := st.Stats()
	el := last.Sub(start).Seconds()
	b.ReportMetric(float64(bytesIn)/el/1e6, "MB/s")
	b.ReportMetric(float64(got), "received")
	b.ReportMetric(float64(sent-got), "lost")
	b.ReportMetric(float64(s.UDPReceiveBufErr), "stack_rcvbuf_drops")
	b.ReportMetric(float64(sent), "sent")
}

// stackOverTap is a Stack over a duplicate of tap with the guest's address 10.0.2.15/24, closed
// when the test ends.
func stackOverTap(tb testing.TB, tap *os.File) *Stack {
	tb.Helper()
	return newTestStack(tb, Config{TapFD: dupTap(tb, tap), MAC: guestMAC}, "10.0.2.15/24")
}
