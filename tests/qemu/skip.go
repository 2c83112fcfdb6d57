package qemu

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where a missing prerequisite is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable reports that a prerequisite of t (QEMU, an image, a fixture) is missing:
// t.Skip with the reason normally, t.Fatal under CI=true (CI installs everything).
// internal/testnet.SkipOrFail is the same rule for the network tests (see there why both).
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("CI=true and a prerequisite is missing: "+format, args...)
	}
	tb.Skipf("skipped: "+format, args...)
}

// RequireBinary returns the path of an emulator (SystemBinary, UserBinary) or calls Unavailable.
func RequireBinary(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(tb, "%s not found in PATH (Debian: apt-get install qemu-system-misc qemu-user): %v", name, err)
	}
	return p
}
