package metal_test

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"netipl/linker"
	"netipl/metal"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"netipl/tests/qemu"
)

// Builds are shared by all tests of the package (an image is built once per distinct
// program/args/env) and removed by TestMain.
var (
	buildMu   sync.Mutex
	buildDir  string
	buildDone = map[string]string{}
)

func cleanupBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// buildPath returns a path under the shared build directory for key, and whether it was
// built already.
func buildPath(t *testing.T, key, name string) (string, bool) {
	t.Helper()
	if buildDir == "" {
		d, err := os.MkdirTemp("", "netipl-tests-metal-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	if p, ok := buildDone[key]; ok {
		return p, true
	}
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(buildDir, name+"-"+hex.EncodeToString(sum[:6])), false
}

// moduleRoot is the directory of go.mod (the tests run in tests/metal).
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %q, %v", out, err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// buildProgram builds the main package pkg (module-relative, "./tests/metal/torture") for
// linux/goarch ("" = the host's) and returns the binary.
func buildProgram(t *testing.T, pkg, goarch string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := "prog " + pkg + " " + goarch
	out, ok := buildPath(t, key, filepath.Base(pkg)+"-"+goarch)
	if ok {
		return out
	}
	cmd := exec.Command(goTool(), "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if goarch != "" {
		cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+goarch)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s (GOARCH=%q): %v\n%s", pkg, goarch, err, b)
	}
	buildDone[key] = out
	return out
}

// buildImage builds a netipl image around the main package pkg with extra argv (after
// argv[0]) and environment entries baked in, through the linker's Go API (the same call
// `make image` / netipl-link makes). An image that cannot be built is reported through
// qemu.Unavailable (skip; a failure under CI=true) with the linker's error.
func buildImage(t *testing.T, pkg string, args, env []string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := fmt.Sprintf("image %s %q %q", pkg, args, env)
	out, ok := buildPath(t, key, filepath.Base(pkg)+".img")
	if ok {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := linker.Options{Loader: pkg, Args: args, Env: env, Out: out, Dir: moduleRoot(t), Go: goTool()}
	if err := linker.Build(ctx, o); err != nil {
		qemu.Unavailable(t, "cannot build the image: linker.Build(%+v): %v", o, err)
	}
	buildDone[key] = out
	return out
}

// biosReserveMiB is what QEMU keeps for its BIOS copy under min(RAM, 2 GiB) (design §4).
const biosReserveMiB = 2

// tooLittleMiB returns a guest RAM size that holds the image and QEMU's BIOS copy (so QEMU
// itself starts) but leaves metal nothing beyond that to run a program in, and the RAM
// metal must then say it needs: the image end plus metal.MinFreeRAM, in whole MiB.
func tooLittleMiB(img string) (mib, needMiB int, err error) {
	f, err := elf.Open(img)
	if err != nil {
		return 0, 0, fmt.Errorf("too-little-RAM size for %s: %w", img, err)
	}
	defer f.Close()
	var end uint64
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			end = max(end, p.Paddr+p.Memsz)
		}
	}
	if end == 0 {
		return 0, 0, fmt.Errorf("too-little-RAM size for %s: no PT_LOAD", img)
	}
	if biosReserveMiB<<20 >= metal.MinFreeRAM {
		return 0, 0, fmt.Errorf("too-little-RAM size: metal.MinFreeRAM %d MiB fits in QEMU's %d MiB BIOS reserve; the test needs a new idea", metal.MinFreeRAM>>20, biosReserveMiB)
	}
	const mb = 1 << 20
	pageEnd := (end + 4095) &^ 4095
	return int((end+mb-1)/mb) + biosReserveMiB, int((pageEnd + metal.MinFreeRAM + mb - 1) / mb), nil
}
