// Command nicprobe is the guest program of tests/nic and bench/nic.sh: it runs as the loader
// on metal, brings up netstack over /dev/net/tun with a static address and checks the NIC end
// to end, printing kvm-unit-tests style lines (PASS:/FAIL:/SUMMARY:) and RESULT: numbers.
//
//	nicprobe [-addr 10.0.2.15/24] [-gw 10.0.2.2] -peer 10.0.2.2:PORT [-n 50] [-flood 0] [-idle 0]
//	nicprobe -n 0 -length-errors N
//	nicprobe -raw-flood N -raw-tx N -peer 10.0.2.2:PORT
//	nicprobe -no-nic
//	nicprobe -et-quiet
//
// Under QEMU slirp the peer is a host process on 127.0.0.1:PORT, reached as 10.0.2.2:PORT.
// -flood N asks the peer ("FLOOD N") for N 1472-byte datagrams and counts them; -idle D blocks
// on a socket nobody writes to for D (the host measures QEMU's CPU meanwhile); -length-errors N
// waits until the NIC has dropped N runt or oversize frames (rx_length_errors); -no-nic checks
// that a machine without a NIC gives ENODEV for /dev/net/tun and ENOENT for the sysfs files.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"netipl/netstack"
)

var failures int

func report(ok bool, format string, args ...any) {
	if ok {
		fmt.Printf("PASS: nic: "+format+"\n", args...)
		return
	}
	failures++
	fmt.Printf("FAIL: nic: "+format+"\n", args...)
}

func main() {
	addr := flag.String("addr", "10.0.2.15/24", "static IPv4 address")
	gw := flag.String("gw", "10.0.2.2", "gateway")
	peer := flag.String("peer", "10.0.2.2:7777", "UDP echo server")
	n := flag.Int("n", 50, "echo round trips")
	flood := flag.Int("flood", 0, "ask the peer for this many 1472-byte datagrams and count them")
	idle := flag.Duration("idle", 0, "block this long on an idle socket")
	lenErrors := flag.Int("length-errors", 0, "wait until rx_length_errors reaches this")
	noNIC := flag.Bool("no-nic", false, "check the errors of a machine without a NIC")
	etQuietMode := flag.Bool("et-quiet", false, "check edge-triggered epoll on the raw tap with frames left unread (TestEpollETUnread sends them)")
	rawTxN := flag.Int("raw-tx", 0, "before the stack starts: send this many 1472-byte datagrams to the peer as raw frames")
	raw := flag.Int("raw-flood", 0, "before the stack starts: ask the peer for this many datagrams with raw frames and count them at the tap")
	flag.Parse()
	var err error
	switch {
	case *noNIC:
		checkNoNIC()
	case *etQuietMode:
		err = etQuiet()
	default:
		err = run(*addr, *gw, *peer, *n, *flood, *idle, *lenErrors, *raw, *rawTxN)
	}
	if err != nil {
		fmt.Println(err)
		failures++
	}
	fmt.Printf("SUMMARY: nic: %d failures\n", failures)
	if failures > 0 {
		os.Exit(1)
	}
}

func counter(name string) string {
	b, err := os.ReadFile("/sys/class/net/eth0/statistics/" + name)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func checkNoNIC() {
	_, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	report(errors.Is(err, syscall.ENODEV), "open /dev/net/tun without a NIC: %v", err)
	_, err = os.ReadFile("/sys/class/net/eth0/address")
	report(errors.Is(err, syscall.ENOENT), "read /sys/class/net/eth0/address without a NIC: %v", err)
	_, err = os.Readlink("/sys/class/net/eth0/device")
	report(errors.Is(err, syscall.ENOENT), "readlink /sys/class/net/eth0/device without a NIC: %v", err)
}

func run(addr, gw, peer string, n, flood int, idle time.Duration, lenErrors, raw, rawTxN int) error {
	macText, err := os.ReadFile("/sys/class/net/eth0/address")
	if err != nil {
		return fmt.Errorf("nicprobe: read MAC: %w", err)
	}
	mac, err := net.ParseMAC(strings.TrimSpace(string(macText)))
	if err != nil {
		return fmt.Errorf("nicprobe: parse MAC %q: %w", macText, err)
	}
	fmt.Printf("  Using MAC address: %s\n", mac)
	link, err := os.Readlink("/sys/class/net/eth0/device")
	report(err == nil, "/sys/class/net/eth0/device -> %s (bus id %s)", link, filepath.Base(link))
	self := &net.UDPAddr{IP: netip.MustParsePrefix(addr).Addr().AsSlice(), Port: 40000}
	pa, err := net.ResolveUDPAddr("udp4", peer)
	if err != nil {
		return fmt.Errorf("nicprobe: peer %s: %w", peer, err)
	}
	if raw > 0 || rawTxN > 0 {
		tap, err := netstack.OpenTap("eth0")
		if err != nil {
			return fmt.Errorf("nicprobe: open tap: %w", err)
		}
		if raw > 0 {
			err = rawFlood(int(tap.Fd()), mac, self, pa, raw)
		}
		if err == nil && rawTxN > 0 {
			err = rawTx(int(tap.Fd()), mac, self, pa, rawTxN)
		}
		tap.Close()
		if err != nil {
			return err
		}
	}
	// The stack opens /dev/net/tun itself (TUNSETIFF IFF_TAP|IFF_NO_PI on "eth0").
	st, err := netstack.New(netstack.Config{TapName: "eth0", MAC: mac})
	if err != nil {
		return fmt.Errorf("nicprobe: netstack: %w", err)
	}
	st.SetAddress(netip.MustParsePrefix(addr))
	st.SetGateway(netip.MustParseAddr(gw))
	c, err := st.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort(peer))
	if err != nil {
		return fmt.Errorf("nicprobe: dial %s: %w", peer, err)
	}
	var rtts []time.Duration
	buf := make([]byte, 2048)
	lost := 0
	for i := 0; i < n; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 64)
		start := time.Now()
		c.SetDeadline(start.Add(2 * time.Second))
		c.Write(msg)
		m, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:m], msg) {
			lost++
			continue
		}
		rtts = append(rtts, time.Since(start))
	}
	if n > 0 {
		report(lost == 0, "%d UDP echoes through %s, %d lost", n, peer, lost)
	}
	if len(rtts) > 0 {
		sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
		fmt.Printf("RESULT: udp_rtt_median_us=%d udp_rtt_p99_us=%d\n", rtts[len(rtts)/2].Microseconds(), rtts[len(rtts)*99/100].Microseconds())
	}
	if flood > 0 {
		// One deadline for the whole flood (per-read deadlines cost timer work per datagram); the
		// flood ends when the peer stops: a read that waits 1 s.
		rx0 := counter("rx_packets")
		fmt.Println("FLOOD: start")
		sent := time.Now() // rates are over [request sent, last datagram read]: goodput, not a backlog burst
		c.Write([]byte(fmt.Sprintf("FLOOD %d", flood)))
		got, bytesIn := 0, 0
		var last time.Time
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			m, err := c.Read(buf)
			if err != nil {
				break
			}
			now := time.Now()
			last = now
			got++
			bytesIn += m
			c.SetReadDeadline(now.Add(time.Second)) // cheap: resets the same timer
		}
		rate := 0.0
		if d := last.Sub(sent).Seconds(); d > 0 {
			rate = float64(bytesIn) / d / 1e6
		}
		ns := st.Stats()
		rx1 := counter("rx_packets")
		fmt.Printf("RESULT: flood_sent=%d flood_received=%d flood_MBps=%.1f flood_seconds=%.3f udp_rcvbuf_drops=%d nic_rx_frames=%s..%s nic_rx_dropped=%s\n",
			flood, got, rate, last.Sub(sent).Seconds(), ns.UDPReceiveBufErr, rx0, rx1, counter("rx_dropped"))
		report(got > 0, "flood: %d of %d datagrams", got, flood)
	}
	if lenErrors > 0 {
		got := ""
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if got = counter("rx_length_errors"); got == strconv.Itoa(lenErrors) {
				break
			}
		}
		report(got == strconv.Itoa(lenErrors), "rx_length_errors = %s (want %d), rx_dropped = %s", got, lenErrors, counter("rx_dropped"))
	}
	if idle > 0 {
		fmt.Println("IDLE: start")
		c.SetReadDeadline(time.Now().Add(idle))
		_, err := c.Read(buf)
		var ne net.Error
		report(errors.As(err, &ne) && ne.Timeout(), "idle read ends by its deadline after %v (%v)", idle, err)
	}
	fmt.Printf("RESULT: rx_packets=%s tx_packets=%s rx_dropped=%s rx_length_errors=%s tx_errors=%s\n",
		counter("rx_packets"), counter("tx_packets"), counter("rx_dropped"), counter("rx_length_errors"), counter("tx_errors"))
	return nil
}
