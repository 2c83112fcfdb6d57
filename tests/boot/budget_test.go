package boot

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"netipl/internal/testnet"
	"netipl/linker"
	"netipl/tests/qemu"
)

// TestGuestStallBudget: in the guest the budgets come from the environment linked into the
// image (netipl-link -env). An image with NETIPL_STALL_TIMEOUT=3s against an HTTP server that
// announces 1 MiB and sends one byte per 200 ms gives one reason line naming the file and the
// server, "Failed to load OS from network", and QEMU stops by itself (disabled wait).
func TestGuestStallBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: one boot only")
	}
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	img := filepath.Join(t.TempDir(), "netipl-stall.img")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := linker.Build(ctx, linker.Options{Loader: "./loader", Out: img, Dir: qemu.ModuleRoot(t), Env: []string{"NETIPL_STALL_TIMEOUT=3s"}}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://10.0.2.2:%d", ln.Addr().(*net.TCPAddr).Port)
	h, stop := testnet.TrickleHandler(base)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer func() { stop(); srv.Close() }()

	cfg := qemu.Config{Binary: bin, Mode: qemu.ModeKernel, Image: img, MemoryMiB: 256,
		NICs: []qemu.NIC{{Netdev: "user,tftp=" + t.TempDir() + ",bootfile=" + base + "/boot.ipxe"}}, Timeout: 2 * time.Minute}
	res, err := qemu.Run(context.Background(), cfg, qemu.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut {
		t.Fatalf("the guest did not stop by itself; run:\n%s", res)
	}
	console := res.Console()
	reason := "netipl: " + base + "/slow: no progress from server " + strings.TrimPrefix(base, "http://") + " for 3s ("
	i := strings.Index(console, reason)
	if i < 0 || !strings.Contains(console[i:], "\nFailed to load OS from network") {
		t.Fatalf("console lacks %q then the failure line; run:\n%s", reason, res)
	}
	if n := strings.Count(console, "netipl: "); n != 1 {
		t.Errorf("%d reason lines, want 1; run:\n%s", n, res)
	}
	// docs/boot.md: metal reports the loader's exit status after the failure line, then stops.
	if !strings.HasSuffix(strings.TrimRight(console, "\n"), "\nFailed to load OS from network\nmetal: exit status 1") {
		t.Errorf("the console does not end with the failure line and metal's \"metal: exit status 1\"; run:\n%s", res)
	}
	if res.ExitCode == 0 {
		t.Errorf("QEMU exit status 0 after a failed boot; run:\n%s", res)
	}
	t.Logf("gave up %.1f s after QEMU started:\n%s", res.Elapsed.Seconds(), console)
}
