package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI against a fake QEMU: marks are timed per run, medians printed, a missing mark
// makes the exit status 1.
func TestQEMURunCLI(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-qemu")
	script := "#!/bin/sh\necho 'LOADPARM=[        ]'\necho 'Network boot starting...'\necho 'done'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "qemu-run")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	out, err := exec.Command(bin, "-qemu", fake, "-image", "/x.img", "-runs", "3", "-console",
		"-mark", "^Network boot starting", "-mark", "^done").Output()
	if err != nil {
		t.Fatalf("qemu-run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"console: Network boot starting...",
		"run 0: mark 0 at ", "run 2: mark 1 at ", "run 2: end exit 0 after",
		"median: mark 0 at ", "median: mark 1 at ", "(3 runs)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("qemu-run output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(bin, "-qemu", fake, "-image", "/x.img", "-mark", "^never").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "run 0: mark 0 missing") {
		t.Errorf("qemu-run with a missing mark: %v, output\n%s\nwant exit 1 and 'mark 0 missing'", err, out)
	}
}
