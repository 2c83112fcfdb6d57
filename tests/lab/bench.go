package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ConnectGuest links a new in-process Guest (mac, addr) to l over a loopback TCP connection with
// QEMU's stream framing, exactly as QEMU would connect.
func ConnectGuest(l *Lab, mac net.HardwareAddr, addr netip.Addr) (*Guest, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("connect guest: %w", err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() { c, err := ln.Accept(); ch <- accepted{c, err} }()
	gc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("connect guest: %w", err)
	}
	a := <-ch
	if a.err != nil {
		gc.Close()
		return nil, fmt.Errorf("connect guest: %w", a.err)
	}
	l.Attach(a.c)
	return NewGuest(gc, mac, addr)
}

// BenchTFTP prints the lab's TFTP throughput through its gVisor stack and the stream link, for
// the pin/tftp server (lock-step, as QEMU's image asks: blksize 1428) and the windowed server.
func BenchTFTP(w io.Writer, size int) error {
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	runs := []struct {
		name            string
		pin             bool
		blksize, window int
	}{
		{"pin/tftp lock-step, asks blksize 1428", true, 1428, 0},
		{"windowed server blksize 1428 windowsize 1", false, 1428, 1},
		{"windowed server blksize 1468 windowsize 16", false, 1468, 16},
		{"windowed server blksize 1468 windowsize 64", false, 1468, 64},
	}
	for _, r := range runs {
		l, err := New(Config{PinTFTP: r.pin, Files: map[string]*File{"bench.bin": {Data: data, ErrorAfter: -1, Truncate: -1}}})
		if err != nil {
			return err
		}
		g, err := ConnectGuest(l, net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, FirstLease)
		if err != nil {
			l.Close()
			return err
		}
		c, err := g.UDP(2001)
		if err != nil {
			return err
		}
		start := time.Now()
		got, st, err := TFTPGet(c, netip.AddrPortFrom(LabAddr, 69), "bench.bin", r.blksize, r.window)
		el := time.Since(start)
		c.Close()
		g.Close()
		l.Close()
		if err != nil {
			return fmt.Errorf("bench %s: %w", r.name, err)
		}
		if !bytes.Equal(got, data) {
			return fmt.Errorf("bench %s: received %d bytes that differ from the %d sent", r.name, len(got), len(data))
		}
		fmt.Fprintf(w, "lab tftp: %-44s %6.1f MB/s (%d MiB in %.2f s, granted blksize %d windowsize %d, %d timeouts)\n", r.name,
			float64(size)/el.Seconds()/1e6, size>>20, el.Seconds(), st.Blksize, st.Windowsize, st.Timeouts)
	}
	return nil
}

// markerClock records when each marker first appears in a console stream.
type markerClock struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	markers []string
	seen    map[string]time.Time
	all     chan struct{}
	done    bool
}

func (m *markerClock) Write(p []byte) (int, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.raw.Write(p)
	text := RenderConsole(m.raw.Bytes())
	for _, mk := range m.markers {
		if _, ok := m.seen[mk]; !ok && strings.Contains(text, mk) {
			m.seen[mk] = now
		}
	}
	if len(m.seen) == len(m.markers) && !m.done {
		m.done = true
		close(m.all)
	}
	return len(p), nil
}

// timeTransfer runs QEMU with args until the console shows "TFTP: Received <name>" and returns
// the time from the start of the transfer ("Bootfile name:" line) to that line.
func timeTransfer(ctx context.Context, qemu string, args []string, name string, bound time.Duration) (time.Duration, string, error) {
	m := &markerClock{markers: []string{"Bootfile name: '" + name + "'", "TFTP: Received " + name}, seen: map[string]time.Time{}, all: make(chan struct{})}
	cmd := exec.Command(qemu, args...)
	cmd.Stdout, cmd.Stderr = m, m
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	select {
	case <-m.all:
	case <-exited:
	case <-time.After(bound):
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t0, ok0 := m.seen[m.markers[0]]
	t1, ok1 := m.seen[m.markers[1]]
	text := RenderConsole(m.raw.Bytes())
	if !ok0 || !ok1 {
		return 0, text, fmt.Errorf("transfer of %s not seen on the console within %v", name, bound)
	}
	return t1.Sub(t0), text, nil
}

// BenchFirmwareTFTP prints how fast the firmware fetches a size-byte bootfile over QEMU's slirp
// (-netdev user,tftp=) and over the lab (pin/tftp through the stream link). The file is random,
// so the firmware's later jump into it is never waited for: QEMU is killed after the transfer.
func BenchFirmwareTFTP(ctx context.Context, w io.Writer, qemu, firmware string, size int) error {
	dir, err := os.MkdirTemp("", "netboot-lab-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data := make([]byte, size)
	rand.New(rand.NewSource(2)).Read(data)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		return err
	}
	base := []string{"-M", "s390-ccw-virtio", "-m", "512", "-nographic", "-no-reboot", "-nodefaults",
		"-serial", "none", "-chardev", "stdio,id=con0,signal=off", "-device", "sclpconsole,chardev=con0",
		"-global", "s390-ipl.netboot_fw=" + firmware}
	bound := 120 * time.Second

	slirp := append(append([]string(nil), base...), "-netdev", "user,id=n0,tftp="+dir+",bootfile=big.bin",
		"-device", "virtio-net-ccw,netdev=n0,bootindex=1")
	d, text, err := timeTransfer(ctx, qemu, slirp, "big.bin", bound)
	if err != nil {
		return fmt.Errorf("slirp: %w\n%s", err, text)
	}
	fmt.Fprintf(w, "firmware tftp over slirp: %6.1f MB/s (%d MiB in %.2f s)\n", float64(size)/d.Seconds()/1e6, size>>20, d.Seconds())

	for _, v := range []struct {
		link string
		pin  bool
	}{{"stream", false}, {"dgram", false}, {"stream", true}} {
		if err := benchViaLab(ctx, w, qemu, base, data, v.link, v.pin, bound); err != nil {
			return err
		}
	}
	return nil
}

// benchViaLab times the firmware fetching data as big.bin from the lab.
func benchViaLab(ctx context.Context, w io.Writer, qemu string, base []string, data []byte, link string, pin bool, bound time.Duration) error {
	size := len(data)
	l, err := New(Config{DHCP: DHCPConfig{Bootfile: "big.bin", RebootTime: -1},
		PinTFTP: pin, Files: map[string]*File{"big.bin": {Data: data, ErrorAfter: -1, Truncate: -1}}})
	if err != nil {
		return err
	}
	defer l.Close()
	netdev, attach, closeLink, err := listenLink(link)
	if err != nil {
		return err
	}
	defer closeLink()
	go attach(l)
	viaLab := append(append([]string(nil), base...), "-netdev", netdev, "-device", "virtio-net-ccw,netdev=n0,bootindex=1")
	d, text, err := timeTransfer(ctx, qemu, viaLab, "big.bin", bound)
	if err != nil {
		return fmt.Errorf("lab: %w\n%s\nlab log:\n%s", err, text, l.EventText())
	}
	server := "windowed"
	if pin {
		server = "pin/tftp"
	}
	fmt.Fprintf(w, "firmware tftp over lab (-netdev %s, %s server): %6.1f MB/s (%d MiB in %.2f s)\n", link, server,
		float64(size)/d.Seconds()/1e6, size>>20, d.Seconds())
	return nil
}
