package metal_test

import (
	"path/filepath"
	"strings"
	"testing"

	"netipl/linker"
)

// TestQEMUSchedulerInvariants boots the ABI probe (threads, futex and epoll timeouts, sleeps,
// signals, asynchronous preemption) on a metal built with -tags metalcheck, which checks on every
// dispatch that the runnable count and the earliest-deadline bound behind dispatch's O(1) path
// agree with a scan of the threads (schedcheck_s390x.go).
func TestQEMUSchedulerInvariants(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	lb := buildS390x(t, filepath.Join(dir, "abiprobe"), "./metal/testdata/abiprobe")
	mb := buildS390x(t, filepath.Join(dir, "metal"), "-tags", "metalcheck", "-ldflags=-E netipl/metal.kentry -T 0x4001000", "./metal/cmd/metal")
	img, err := linker.Assemble(mb, lb, linker.ArgvEnv("abiprobe", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	out, code := bootImage(t, img, "128")
	if code != 0 || strings.Contains(out, "scheduler check") {
		t.Fatalf("qemu exit code %d (want 0); console:\n%s", code, out)
	}
	if n := strings.Count(out, "\n"); n < 30 {
		t.Errorf("the probe printed only %d lines:\n%s", n, out)
	}
}
