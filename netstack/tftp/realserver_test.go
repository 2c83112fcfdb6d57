package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"netipl/internal/testnet"
	"netipl/tests/qemu"
)

// These tests run the client against real TFTP servers on loopback: tftpd-hpa (installed, /usr/sbin/in.tftpd) and
// atftpd 0.8 (extracted by `apt-get download atftpd` into .cache/atftpd at the repository root, because the
// package conflicts with tftpd-hpa). A missing server skips the test, except under CI=true.

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// serverRoot writes files into a world-readable temporary directory.
func serverRoot(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startServer runs a server command and waits until it answers a probe RRQ (with ERROR or data).
func startServer(t *testing.T, addr netip.AddrPort, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		testnet.SkipOrFail(t, "start %s: %v", name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	probe := &Client{Listen: hostListen, Options: Options{InitialTimeout: 50 * time.Millisecond,
		MinTimeout: 10 * time.Millisecond, MaxTimeout: 50 * time.Millisecond, Retries: 40}}
	_, err := probe.Get(context.Background(), addr, "readiness-probe", &testnet.MemFile{})
	if errors.Is(err, ErrTimeout) {
		t.Fatalf("%s on %s does not answer: %v", name, addr, err)
	}
}

func TestTFTPDHPA(t *testing.T) {
	const bin = "/usr/sbin/in.tftpd"
	if _, err := os.Stat(bin); err != nil {
		testnet.SkipOrFail(t, "tftpd-hpa not installed: %v", err)
	}
	files := map[string][]byte{"kernel.img": pattern(4<<20 + 99), "empty": nil, "exact": pattern(2 * 1428)}
	dir := serverRoot(t, files)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freeUDPPort(t)))
	startServer(t, addr, bin, "-L", "-u", "root", "-s", dir, "-a", addr.String())
	for _, tt := range []struct {
		file       string
		o          Options
		wantBlock  int
		wantWindow int
	}{
		{"kernel.img", Options{}, 1428, 1},
		{"kernel.img", Options{BlockSize: 512}, 512, 1},
		{"kernel.img", Options{BlockSize: 8192}, 8192, 1},
		{"kernel.img", Options{BlockSize: 65464}, 65464, 1},
		// tftpd-hpa 5.2 does not know windowsize and leaves it out of the OACK: lock-step fallback.
		{"kernel.img", Options{WindowSize: 16}, 1428, 1},
		// tftpd-hpa answers the repeated ACK 0 with block 1 again: the probe sees it and goes lock-step.
		{"kernel.img", Options{Pipeline: 16}, 1428, 1},
		{"kernel.img", Options{WindowSize: 16, Pipeline: 16}, 1428, 1},
		{"exact", Options{Pipeline: 16}, 1428, 1},
		{"empty", Options{}, 1428, 1},
		{"exact", Options{}, 1428, 1},
	} {
		t.Run(fmt.Sprintf("%s/blksize=%d/window=%d/pipeline=%d", tt.file, tt.o.BlockSize, tt.o.WindowSize, tt.o.Pipeline), func(t *testing.T) {
			c := &Client{Listen: hostListen, Options: tt.o}
			m := &testnet.MemFile{}
			res, err := c.Get(context.Background(), addr, tt.file, m)
			if err != nil {
				t.Fatalf("Get(%q) = %v", tt.file, err)
			}
			want := files[tt.file]
			if !bytes.Equal(m.Bytes, want) {
				t.Errorf("Get(%q) wrote %d bytes, want %d", tt.file, len(m.Bytes), len(want))
			}
			if res.BlockSize != tt.wantBlock || res.WindowSize != tt.wantWindow || res.TransferSize != int64(len(want)) {
				t.Errorf("Get(%q) = blksize %d window %d tsize %d, want %d %d %d", tt.file,
					res.BlockSize, res.WindowSize, res.TransferSize, tt.wantBlock, tt.wantWindow, len(want))
			}
			// Lock-step: no refill ACK ever reaches a server that resends on every ACK.
			if res.Pipeline != 1 || res.Stats.Restarts != 0 || res.Stats.WindowRefills != 0 {
				t.Errorf("Get(%q) pipeline %d, restarts %d; want lock-step without restarts or refills (stats %+v)", tt.file,
					res.Pipeline, res.Stats.Restarts, res.Stats)
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		c := &Client{Listen: hostListen}
		_, err := c.Get(context.Background(), addr, "missing.img", &testnet.MemFile{})
		want := fmt.Sprintf(`tftp RRQ "missing.img" from %s: File not found (code 1)`, addr)
		if !errors.Is(err, ErrNotFound) || err.Error() != want {
			t.Errorf("Get(missing.img) = %v, want %q", err, want)
		}
	})
	t.Run("limit", func(t *testing.T) {
		c := &Client{Listen: hostListen, Options: Options{MaxSize: 1 << 20}}
		_, err := c.Get(context.Background(), addr, "kernel.img", &testnet.MemFile{})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("Get(kernel.img, 1 MiB limit) = %v, want ErrTooLarge", err)
		}
	})
}

// atftpdBinary returns the extracted atftpd, fetching the package once if apt-get is usable.
func atftpdBinary(t testing.TB) string {
	t.Helper()
	cache := filepath.Join(qemu.ModuleRoot(t), ".cache", "atftpd")
	bin := filepath.Join(cache, "root", "usr", "sbin", "atftpd")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		testnet.SkipOrFail(t, "atftpd cache: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dl := exec.CommandContext(ctx, "apt-get", "download", "atftpd")
	dl.Dir = cache
	if out, err := dl.CombinedOutput(); err != nil {
		testnet.SkipOrFail(t, "atftpd not available (apt-get download atftpd: %v: %s)", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "atftpd_*.deb"))
	if len(debs) == 0 {
		testnet.SkipOrFail(t, "atftpd .deb not found after download")
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(cache, "root")).CombinedOutput(); err != nil {
		testnet.SkipOrFail(t, "dpkg-deb -x %s: %v: %s", debs[0], err, out)
	}
	return bin
}

func TestATFTPD(t *testing.T) {
	bin := atftpdBinary(t)
	files := map[string][]byte{"initrd.img": pattern(4<<20 + 1234)}
	dir := serverRoot(t, files)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freeUDPPort(t)))
	startServer(t, addr, bin, "--daemon", "--no-fork", "--logfile", "/dev/null", "--user", "root", "--group", "root",
		"--port", fmt.Sprint(addr.Port()), "--bind-address", "127.0.0.1", dir)
	for _, tt := range []struct {
		o          Options
		wantWindow int
	}{
		{Options{}, 1},
		{Options{WindowSize: 16}, 16},
		{Options{WindowSize: 64, BlockSize: 8192}, 64},
		// Pipelining is tried only without a negotiated window; atftpd then gets lock-step.
		{Options{Pipeline: 16}, 1},
		{Options{WindowSize: 16, Pipeline: 16}, 16},
	} {
		t.Run(fmt.Sprintf("blksize=%d/window=%d/pipeline=%d", tt.o.BlockSize, tt.o.WindowSize, tt.o.Pipeline), func(t *testing.T) {
			c := &Client{Listen: hostListen, Options: tt.o}
			m := &testnet.MemFile{}
			res, err := c.Get(context.Background(), addr, "initrd.img", m)
			if err != nil {
				t.Fatalf("Get(initrd.img) = %v", err)
			}
			if !bytes.Equal(m.Bytes, files["initrd.img"]) {
				t.Errorf("Get(initrd.img) wrote %d bytes, want %d", len(m.Bytes), len(files["initrd.img"]))
			}
			if res.WindowSize != tt.wantWindow || res.Pipeline != 1 || res.Stats.Restarts != 0 || res.Stats.WindowRefills != 0 {
				t.Errorf("Get(initrd.img) window %d, pipeline %d, restarts %d; want window %d, lock-step without restarts or refills (stats %+v)",
					res.WindowSize, res.Pipeline, res.Stats.Restarts, tt.wantWindow, res.Stats)
			}
		})
	}
}

// TestTFTPDHPAIPv6 fetches over IPv6 loopback, the transport of a DHCPv6 boot URL like tftp://[fec0::2]/file.
func TestTFTPDHPAIPv6(t *testing.T) {
	const bin = "/usr/sbin/in.tftpd"
	if _, err := os.Stat(bin); err != nil {
		testnet.SkipOrFail(t, "tftpd-hpa not installed: %v", err)
	}
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		testnet.SkipOrFail(t, "no IPv6 loopback: %v", err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	files := map[string][]byte{"s390x/kernel.img": pattern(1<<20 + 5)}
	dir := serverRoot(t, nil)
	os.MkdirAll(filepath.Join(dir, "s390x"), 0o755)
	os.WriteFile(filepath.Join(dir, "s390x", "kernel.img"), files["s390x/kernel.img"], 0o644)
	addr := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port))
	listen6 := func() (net.PacketConn, error) { return net.ListenPacket("udp6", "[::1]:0") }
	cmd := exec.Command(bin, "-L", "-u", "root", "-s", dir, "-a", addr.String())
	if err := cmd.Start(); err != nil {
		testnet.SkipOrFail(t, "start %s: %v", bin, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &Client{Listen: listen6, Options: Options{InitialTimeout: 50 * time.Millisecond, MinTimeout: 10 * time.Millisecond,
		MaxTimeout: 100 * time.Millisecond, Retries: 40}}
	m := &testnet.MemFile{}
	res, err := c.Get(context.Background(), addr, "s390x/kernel.img", m)
	if err != nil {
		t.Fatalf("Get over IPv6 = %v", err)
	}
	if !bytes.Equal(m.Bytes, files["s390x/kernel.img"]) || res.BlockSize != 1428 {
		t.Errorf("Get over IPv6: %d bytes, blksize %d", len(m.Bytes), res.BlockSize)
	}
}
