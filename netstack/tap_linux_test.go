package netstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireNetAdmin skips (or fails under CI=true) when the test cannot create namespaces and taps.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root to create a network namespace and a tap device"
	} else if _, err := exec.LookPath("ip"); err != nil {
		reason = "needs iproute2 (ip) to configure the namespace"
	} else if _, err := os.Stat("/dev/net/tun"); err != nil {
		reason = "needs /dev/net/tun"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", reason)
	}
	t.Skip(reason)
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on a thread switched into network namespace ns. The thread is thrown away
// afterwards (the goroutine exits still locked), so no other goroutine ever runs in ns.
func inNetns(t *testing.T, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		nsf, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// setupTapNetns creates namespace ns with a tap device "nipl0" whose kernel side is 10.0.2.2/24,
// and returns the tap fd (the "NIC" side a netstack drives) plus a UDP echo socket and a TCP
// listener opened inside the namespace.
func setupTapNetns(t *testing.T) (tap *os.File, echo net.PacketConn, tcpL net.Listener) {
	t.Helper()
	requireNetAdmin(t)
	ns := fmt.Sprintf("netipl-test-%d", os.Getpid())
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	inNetns(t, ns, func() error {
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
	t.Cleanup(func() { echo.Close(); tcpL.Close(); tap.Close() })
	ipCmd(t, "-n", ns, "addr", "add", "10.0.2.2/24", "dev", "nipl0")
	ipCmd(t, "-n", ns, "link", "set", "nipl0", "address", "52:55:0a:00:02:02", "up")
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
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
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
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
	tap, echo, tcpL := setupTapNetnsB(b)
	tcpL.Close()
	go echoUDP(echo)
	st := newBenchStack(b, tap)
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
	tap, echo, tcpL := setupTapNetnsB(b)
	tcpL.Close()
	st := newBenchStack(b, tap)
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

func setupTapNetnsB(b *testing.B) (*os.File, net.PacketConn, net.Listener) {
	b.Helper()
	// setupTapNetns takes a *testing.T for its helpers; a benchmark adapts through testing.TB.
	var tap *os.File
	var echo net.PacketConn
	var l net.Listener
	tb := testing.TB(b)
	if os.Geteuid() != 0 {
		b.Skip("needs root to create a network namespace and a tap device")
	}
	ns := fmt.Sprintf("netipl-bench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		nsf, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		if tap, err = OpenTap("nipl0"); err != nil {
			errc <- err
			return
		}
		if echo, err = net.ListenPacket("udp4", "0.0.0.0:7777"); err != nil {
			errc <- err
			return
		}
		l, err = net.Listen("tcp4", "0.0.0.0:8080")
		errc <- err
	}()
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	b.Cleanup(func() { echo.Close(); tap.Close() })
	for _, args := range [][]string{
		{"-n", ns, "addr", "add", "10.0.2.2/24", "dev", "nipl0"},
		{"-n", ns, "link", "set", "nipl0", "address", "52:55:0a:00:02:02", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			tb.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	return tap, echo, l
}

func newBenchStack(b *testing.B, tap *os.File) *Stack {
	b.Helper()
	st, err := New(Config{TapFD: dupTap(b, tap), MAC: guestMAC})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		b.Fatal(err)
	}
	return st
}

// stackOverTap is a Stack over a duplicate of tap with the guest's address 10.0.2.15/24, closed
// when the test ends.
func stackOverTap(t *testing.T, tap *os.File) *Stack {
	t.Helper()
	st, err := New(Config{TapFD: dupTap(t, tap), MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetAddress(netip.MustParsePrefix("10.0.2.15/24")); err != nil {
		t.Fatal(err)
	}
	return st
}
