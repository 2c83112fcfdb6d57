package metal_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"netipl/linker"
	"netipl/metal"
)

// metal's Go code must not allocate, must not need package initialisation and must not enter
// the Go runtime (its runtime is linked but never started). These tests enforce that on the
// compiled code, not on comments.

func goCmd() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func buildMetal(t *testing.T, extra ...string) (bin string, out []byte) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "metal.elf")
	args := append([]string{"build", "-trimpath", "-o", bin}, extra...)
	args = append(args, "-ldflags=-E netipl/metal.kentry -T 0x4001000", "netipl/metal/cmd/metal")
	cmd := exec.Command(goCmd(), args...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=s390x", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build metal for s390x: %v\n%s", err, out)
	}
	return bin, out
}

// TestNoHeapAllocation builds metal with -gcflags=-m and fails on anything the compiler
// moves to the heap.
func TestNoHeapAllocation(t *testing.T) {
	_, out := buildMetal(t, "-gcflags=netipl/metal/...=-m")
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "escapes to heap") || strings.Contains(l, "moved to heap") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("metal allocates:\n%s", strings.Join(bad, "\n"))
	}
	if !strings.Contains(string(out), "netipl/metal") {
		t.Fatalf("no -m output for netipl/metal; the check did not run:\n%.2000s", out)
	}
}

// allowedRuntime are the runtime symbols metal's code may reference: g-free assembly the
// compiler emits for copies, clears and compares, and the image bounds kentry clears.
var allowedRuntime = map[string]bool{
	"runtime.memmove":              true,
	"runtime.memclrNoHeapPointers": true,
	"runtime.memequal":             true,
	"runtime.bss":                  true,
	"runtime.end":                  true,
}

var runtimeRef = regexp.MustCompile(`runtime\.[A-Za-z0-9_.]+`)

// TestRuntimeReferences disassembles every metal function and checks each runtime symbol it
// references against allowedRuntime plus linker.TrapSymbols (entry points the linker turns
// into traps, reachable only through a kernel bug). A write barrier, an allocation or a
// scheduler call would show up here as runtime.gcWriteBarrier, runtime.newobject, ….
// It also checks that package metal has no init function: init never runs under metal.
func TestRuntimeReferences(t *testing.T) {
	bin, _ := buildMetal(t)
	out, err := exec.Command(goCmd(), "tool", "objdump", "-s", `^netipl/metal(/internal/phys)?\.`, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool objdump: %v\n%.2000s", err, out)
	}
	traps := map[string]bool{}
	for _, s := range linker.TrapSymbols {
		traps[strings.TrimSuffix(s, ".abi0")] = true
	}
	seen := map[string]int{}
	funcs := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "TEXT netipl/metal") {
			funcs++
			continue
		}
		for _, m := range runtimeRef.FindAllString(l, -1) {
			seen[strings.TrimSuffix(m, ".abi0")]++
		}
	}
	if funcs < 50 {
		t.Fatalf("objdump listed only %d metal functions; the check did not run", funcs)
	}
	var bad []string
	for s := range seen {
		if !allowedRuntime[s] && !traps[s] {
			bad = append(bad, s)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("metal references runtime symbols outside the allowlist: %v", bad)
	}
	nm, err := exec.Command(goCmd(), "tool", "nm", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	for _, l := range strings.Split(string(nm), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && (f[2] == "netipl/metal.init" || strings.HasPrefix(f[2], "netipl/metal.init.")) {
			t.Errorf("package metal has an init function (%s): package initialisation never runs under metal", f[2])
		}
	}
}

// TestLinkBaseFits checks the constants the linker and docs/memory.md rely on.
func TestLinkBaseFits(t *testing.T) {
	if metal.LinkBase%metal.PayloadAlign != 0 || metal.LinkBase < 0x2000 || metal.LinkBase+8<<20 > metal.ImageLimit {
		t.Errorf("LinkBase %#x: want 64 KiB aligned, above the lowcore, with room below ImageLimit %#x", metal.LinkBase, metal.ImageLimit)
	}
}
