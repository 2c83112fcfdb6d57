// Package testnet holds the set-up that host tests against real network servers share: skipping
// (or failing under CI=true) when a prerequisite is missing, running set-up commands, entering a
// network namespace, collecting a server's output, and serving files from an in-process
// pin/tftp server. It is imported only by _test.go files.
package testnet

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// SkipOrFail skips the test with the reason, or fails it when CI=true (CI installs every
// prerequisite, so a missing one there is a defect, not a reason to pass).
// tests/qemu.Unavailable applies the same rule to the QEMU tests. Both stay: tests/qemu is also
// the library of a command (tests/qemu/cmd/qemu-run), which should not link this test-only
// package, and importing tests/qemu here would link linker and metal into every test that
// uses this package.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Run runs a set-up command and fails the test with its output if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// LockedBuffer collects a process's output while the test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Contains reports whether what was written so far contains s.
func (l *LockedBuffer) Contains(s string) bool { return strings.Contains(l.String(), s) }

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// MemFile is an io.WriterAt in memory, for a test to download a file into; Bytes holds what was
// written, grown as needed.
type MemFile struct{ Bytes []byte }

// WriteAt implements io.WriterAt.
func (m *MemFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.Bytes) {
		m.Bytes = append(m.Bytes, make([]byte, end-len(m.Bytes))...)
	}
	return copy(m.Bytes[off:], p), nil
}
