package metal_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"netipl/linker"
	"netipl/metal"
	"netipl/tests/qemu"
)

// End-to-end checks of metal's failure paths under qemu-system-s390x (the torture tests in
// tests/metal cover the working paths). Each run is bounded by a timeout.

func needQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no qemu-system-s390x runs")
	}
	qemu.RequireBinary(t, qemu.SystemBinary)
}

// buildS390x builds a package for linux/s390x with linker.GoBuild and returns the ELF.
func buildS390x(t *testing.T, out string, args ...string) []byte {
	t.Helper()
	if err := linker.GoBuild(context.Background(), goCmd(), "..", out, args...); err != nil {
		t.Fatalf("build %v: %v", args, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bootImage runs img with -kernel and returns the console and QEMU's exit code.
func bootImage(t *testing.T, img []byte, mem string) (string, int) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-s390x", "-M", "s390-ccw-virtio", "-nographic", "-no-reboot",
		"-action", "panic=exit-failure", "-m", mem, "-kernel", p)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("qemu did not stop within 60s (metal hung):\n%s", out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	return out.String(), code
}

func TestQEMUKernelBugDump(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	mb := buildS390x(t, filepath.Join(dir, "metal"), "-tags", "metalkernelbug", "-ldflags=-E netipl/metal.kentry -T 0x4001000", "./metal/cmd/metal")
	lb := buildS390x(t, filepath.Join(dir, "loader"), "./tests/metal/hello")
	img, err := linker.Assemble(mb, lb, linker.ArgvEnv("hello", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	out, code := bootImage(t, img, "128")
	for _, want := range []string{
		"metal: kernel bug: program check 0x1 ",
		"<runtime.panicBounds+0x0>",
		"called from (R14) ",
		"<netipl/metal.selfTest+",
		"R15=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hello: main() reached") {
		t.Errorf("the loader ran after a kernel bug:\n%s", out)
	}
	if code != 1 {
		t.Errorf("qemu exit code %d, want 1 (disabled wait with -action panic=exit-failure)", code)
	}
}

func TestQEMUBadPayload(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	mb := buildS390x(t, filepath.Join(dir, "metal"), "-ldflags=-E netipl/metal.kentry -T 0x4001000", "./metal/cmd/metal")
	lb := buildS390x(t, filepath.Join(dir, "loader"), "./tests/metal/hello")
	img, err := linker.Assemble(mb, lb, linker.ArgvEnv("hello", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(img, []byte(metal.PayloadMagic))
	if at < 0 {
		t.Fatal("payload magic not found in the image")
	}
	loaderOff := binary.BigEndian.Uint64(img[at+16:])
	tests := []struct {
		name    string
		corrupt func(b []byte)
		want    string
	}{
		{"bad magic", func(b []byte) { b[at+7] = 2 }, "metal: payload: bad magic at 0x"},
		{"loader for x86", func(b []byte) { binary.BigEndian.PutUint16(b[at+int(loaderOff)+18:], 62) }, "metal: payload: loader ELF: not built for s390x (EM_S390)"},
		{"loader outside", func(b []byte) { binary.BigEndian.PutUint64(b[at+24:], 1<<40) }, "metal: payload: loader ELF outside the payload"},
	}
	for _, tt := range tests {
		b := append([]byte{}, img...)
		tt.corrupt(b)
		out, code := bootImage(t, b, "128")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) || code != 1 {
			t.Errorf("%s: console %q, rc %d; want one line starting %q, rc 1", tt.name, out, code, tt.want)
		}
	}
}

// TestQEMUABIDifferential runs metal/testdata/abiprobe (raw epoll, eventfd, futex, mmap,
// munmap, madvise, signals, clocks, files) under a real Linux kernel (qemu-s390x user mode)
// and under metal, and requires the same output line for line.
func TestQEMUABIDifferential(t *testing.T) {
	needQEMU(t)
	qemu.RequireBinary(t, qemu.UserBinary)
	dir := t.TempDir()
	probe := filepath.Join(dir, "abiprobe")
	lb := buildS390x(t, probe, "./metal/testdata/abiprobe")
	mb := buildS390x(t, filepath.Join(dir, "metal"), "-ldflags=-E netipl/metal.kentry -T 0x4001000", "./metal/cmd/metal")
	linuxOut, err := exec.Command("qemu-s390x", probe).CombinedOutput()
	if err != nil {
		t.Fatalf("abiprobe under qemu-s390x: %v\n%s", err, linuxOut)
	}
	img, err := linker.Assemble(mb, lb, linker.ArgvEnv("abiprobe", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	metalOut, code := bootImage(t, img, "128")
	if code != 0 {
		t.Errorf("qemu exit code %d on metal, want 0", code)
	}
	want := strings.Split(strings.TrimSpace(string(linuxOut)), "\n")
	got := strings.Split(strings.TrimSpace(metalOut), "\n")
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("line %d: metal %q, Linux %q", i+1, g, w)
		}
	}
	if len(want) < 30 {
		t.Errorf("abiprobe printed only %d lines on Linux", len(want))
	}
}
