// Package nic_test boots netipl images with tests/nic/nicprobe as the loader under
// qemu-system-s390x and checks metal's NIC end to end: the virtio-net-ccw driver behind
// /dev/net/tun (TUNSETIFF, readv/writev, ppoll, epoll), the sysfs files, interrupt-driven
// completions, NIC selection by the IPL block, length-error counters and the no-NIC path.
package nic_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"netipl/linker"
	"netipl/tests/qemu"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %q, %v", out, err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildImage links metal with the loader package pkg and args (cached per pkg and args).
func buildImage(t *testing.T, pkg string, args ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := pkg + fmt.Sprintf("%q", args)
	if p, ok := built[key]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "netipl-tests-nic-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, fmt.Sprintf("img%d.img", len(built)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := linker.Options{Loader: pkg, Args: args, Out: out, Dir: moduleRoot(t)}
	if err := linker.Build(ctx, o); err != nil {
		qemu.Unavailable(t, "cannot build the image: linker.Build(%+v): %v", o, err)
	}
	built[key] = out
	return out
}

// udpEcho serves UDP echo on 127.0.0.1 (the guest reaches it as 10.0.2.2 through slirp).
func udpEcho(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// wantLines fails unless every line of want appears in the console, in this order.
func wantLines(t *testing.T, res *qemu.Result, want ...string) {
	t.Helper()
	lines := res.Texts()
	i := 0
	for _, l := range lines {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("console lacks %q (in order); run:\n%s", want[i], res)
	}
}

// noMetalLines fails if metal printed anything of its own (a passing run prints nothing).
func noMetalLines(t *testing.T, res *qemu.Result) {
	t.Helper()
	for _, l := range res.Texts() {
		if strings.HasPrefix(l, "metal:") {
			t.Errorf("metal printed %q; run:\n%s", l, res)
		}
	}
}

func run(t *testing.T, bin string, args []string) *qemu.Result {
	t.Helper()
	return runWith(t, bin, args, qemu.RunOptions{})
}

func runWith(t *testing.T, bin string, args []string, opts qemu.RunOptions) *qemu.Result {
	t.Helper()
	res, err := qemu.RunCommand(context.Background(), bin, args, 2*time.Minute, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut {
		t.Fatalf("QEMU timed out:\n%s", res)
	}
	return res
}

func TestSlirpUDPEcho(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	port := udpEcho(t)
	img := buildImage(t, "./tests/nic/nicprobe", "-n=50", fmt.Sprintf("-peer=10.0.2.2:%d", port))
	args, err := qemu.Config{Image: img, MemoryMiB: 256,
		NICs: []qemu.NIC{{MAC: "52:54:00:12:34:56"}}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, bin, args)
	wantLines(t, res, "  Using MAC address: 52:54:00:12:34:56",
		"PASS: nic: /sys/class/net/eth0/device -> ../../../0.0.0000 (bus id 0.0.0000)",
		fmt.Sprintf("PASS: nic: 50 UDP echoes through 10.0.2.2:%d, 0 lost", port),
		"SUMMARY: nic: 0 failures")
	noMetalLines(t, res)
	if res.ExitCode != 0 {
		t.Errorf("QEMU exit code %d, want 0; run:\n%s", res.ExitCode, res)
	}
}

// TestBootindexSecondNIC: in netboot_fw mode with two NICs, metal uses the one QEMU's IPL
// block names (bootindex), even though the other has the lower subchannel number and is
// found first by a scan.
func TestBootindexSecondNIC(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	port := udpEcho(t)
	img := buildImage(t, "./tests/nic/nicprobe", "-n=5", fmt.Sprintf("-peer=10.0.2.2:%d", port))
	abs, err := filepath.Abs(img)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-M", "s390-ccw-virtio", "-nographic", "-no-reboot", "-action", "panic=exit-failure", "-m", "256",
		"-global", "s390-ipl.netboot_fw=" + abs,
		"-netdev", "user,id=n0", "-device", "virtio-net-ccw,netdev=n0,mac=52:54:00:00:00:01,devno=fe.0.0001",
		"-netdev", "user,id=n1", "-device", "virtio-net-ccw,netdev=n1,mac=52:54:00:00:00:02,devno=fe.0.0007,bootindex=1"}
	res := run(t, bin, args)
	wantLines(t, res, "Network boot device detected",
		"  Using MAC address: 52:54:00:00:00:02",
		"PASS: nic: /sys/class/net/eth0/device -> ../../../0.0.0007 (bus id 0.0.0007)",
		fmt.Sprintf("PASS: nic: 5 UDP echoes through 10.0.2.2:%d, 0 lost", port),
		"SUMMARY: nic: 0 failures")
	noMetalLines(t, res)
}

// TestNoNIC: without a NIC the loader gets ENODEV/ENOENT, metal prints exactly one reason
// line, and the run ends cleanly.
func TestNoNIC(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	img := buildImage(t, "./tests/nic/nicprobe", "-no-nic")
	args, err := qemu.Config{Image: img, MemoryMiB: 256, Extra: []string{"-nic", "none"}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, bin, args)
	reasons := 0
	for _, l := range res.Texts() {
		if strings.Contains(l, "virtio-net") {
			reasons++
		}
	}
	if reasons != 1 || !res.Contains("No virtio-net device found") {
		t.Errorf("want exactly one line \"No virtio-net device found\", got %d lines naming virtio-net; run:\n%s", reasons, res)
	}
	wantLines(t, res, "No virtio-net device found", "SUMMARY: nic: 0 failures")
	noMetalLines(t, res)
	if res.ExitCode != 0 {
		t.Errorf("QEMU exit code %d, want 0; run:\n%s", res.ExitCode, res)
	}
}

// TestLengthErrors feeds the NIC a runt and an oversize frame through a -netdev stream socket
// and checks they are dropped and counted in /sys/class/net/eth0/statistics. The frames are
// sent once the guest has brought the NIC up (QEMU purges frames queued before the driver's
// device reset).
func TestLengthErrors(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nicUp := make(chan struct{})
	var once sync.Once
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		<-nicUp
		send := func(n int) {
			b := make([]byte, 4+n)
			binary.BigEndian.PutUint32(b, uint32(n))
			for i := 4; i < len(b); i++ {
				b[i] = 0xff // broadcast destination: no MAC filter can drop it before the driver
			}
			c.Write(b)
		}
		send(10)   // runt: shorter than an Ethernet header
		send(2000) // oversize: longer than 1518 bytes
		buf := make([]byte, 4096)
		for { // keep the connection open until QEMU ends
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	img := buildImage(t, "./tests/nic/nicprobe", "-n=0", "-length-errors=2")
	args, err := qemu.Config{Image: img, MemoryMiB: 256, NICs: []qemu.NIC{{
		Netdev: fmt.Sprintf("stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=%d", port)}}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := runWith(t, bin, args, qemu.RunOptions{OnLine: func(l qemu.Line) {
		if strings.HasPrefix(l.Text, "  Using MAC address:") {
			once.Do(func() { close(nicUp) })
		}
	}})
	once.Do(func() { close(nicUp) })
	wantLines(t, res, "PASS: nic: rx_length_errors = 2 (want 2), rx_dropped = 2", "SUMMARY: nic: 0 failures")
	noMetalLines(t, res)
}

// TestRawTX sends 6000 full-size frames through metal's tap, half with O_NONBLOCK (EAGAIN when
// the 256 TX buffers are all at the device, then ppoll for POLLOUT) and half blocking (the
// writer sleeps until a TX completion interrupt), and counts them at a host UDP sink.
func TestRawTX(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.UDPConn).SetReadBuffer(8 << 20)
	var mu sync.Mutex
	full := 0
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n == 1472 {
				mu.Lock()
				full++
				mu.Unlock()
			} else {
				c.WriteTo(buf[:n], from) // the echo rounds after the raw part
			}
		}
	}()
	port := c.LocalAddr().(*net.UDPAddr).Port
	const frames = 6000
	img := buildImage(t, "./tests/nic/nicprobe", "-n=3", fmt.Sprintf("-raw-tx=%d", frames), fmt.Sprintf("-peer=10.0.2.2:%d", port))
	args, err := qemu.Config{Image: img, MemoryMiB: 256, NICs: []qemu.NIC{{}}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, bin, args)
	wantLines(t, res, fmt.Sprintf("PASS: nic: 3 UDP echoes through 10.0.2.2:%d, 0 lost", port), "SUMMARY: nic: 0 failures")
	if _, ok := res.Report().Passed("nic: raw tx:"); !ok {
		if c, skipped := res.Report().Skipped("nic: raw tx:"); skipped {
			// Timing-dependent: on a quiet host QEMU drains the TX ring as fast as the guest
			// fills it, so EAGAIN never happens; the frames still had to arrive (checked below).
			t.Logf("raw TX backpressure not exercised this run: %v", c)
		} else {
			t.Errorf("no PASS for the raw TX part (EAGAIN and POLLOUT wake-ups); run:\n%s", res)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the sink drain its socket
	mu.Lock()
	got := full
	mu.Unlock()
	if got < frames*99/100 {
		t.Errorf("host received %d of %d datagrams; run:\n%s", got, frames, res)
	}
	noMetalLines(t, res)
}
