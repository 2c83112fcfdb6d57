package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"netipl/tests/qemu"
)

// ciScenarios are the fast scenarios `go test` runs against QEMU's image (about 19 s);
// `netboot-lab -scenario all` (bench/lab.sh) runs the whole matrix.
var ciScenarios = map[string]Outcome{
	"direct-kernel":  Pass,
	"pxe-dir-mac":    Pass,
	"ins-file":       Pass,
	"append-initrd":  Pass,
	"missing-files":  Pass,
	"garbage-tiny":   Pass,
	"garbage-config": XFail,
	"ipv6-only":      Pass,
}

// netiplScenarios are the fast scenarios `go test` runs against netipl's image (built from this
// tree, or $NETIPL_IMAGE): the behaviours where netipl deliberately differs from QEMU's image
// (HTTP, a refused garbage kernel, a mid-file ERROR, a missing KERNEL, a sha256 sidecar, the
// RFC 4291 SLAAC address) plus a plain boot, an .INS file and the full probe order; about 19 s.
var netiplScenarios = map[string]Outcome{
	"direct-kernel":         Pass,
	"http-bootfile":         Pass,
	"ins-file":              Pass,
	"garbage-large":         Pass,
	"garbage-config":        Pass,
	"missing-files":         Pass,
	"tftp-error-midfile":    Pass,
	"tftp-truncated-sha256": Pass,
	"ipv6-only":             Pass,
}

func qemuPrereqs(t *testing.T) (fixtures string) {
	t.Helper()
	if _, err := exec.LookPath(qemu.SystemBinary); err != nil {
		qemu.Unavailable(t, "%s not installed", qemu.SystemBinary)
	}
	if _, err := os.Stat(QEMUNetbootImage); err != nil {
		qemu.Unavailable(t, "QEMU's netboot image: %v", err)
	}
	return qemu.Fixtures(t)
}

// runScenarios runs each scenario of scenarios/ that wanted names with opts and checks its
// outcome; with artifacts, each run writes its pcap, lab log and console to a fresh OutDir,
// which must then hold them.
func runScenarios(t *testing.T, wanted map[string]Outcome, opts RunOptions, artifacts bool) {
	t.Helper()
	all, err := LoadScenarios("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, sc := range all {
		want, ok := wanted[sc.Name]
		if !ok {
			continue
		}
		seen++
		t.Run(sc.Name, func(t *testing.T) {
			o := opts
			if artifacts {
				o.OutDir = t.TempDir()
			}
			r := Run(context.Background(), sc, o)
			if r.Outcome != want {
				t.Errorf("Run(%s) = %s (%s) in %.1fs, want %s\nconsole:\n%s\nlab log:\n%s", sc.Name, r.Outcome, r.Reason,
					r.Elapsed.Seconds(), want, tail(r.Console, 40), r.LabLog)
			}
			for _, ext := range []string{".pcap", ".lab.log", ".console"} {
				if !artifacts {
					break
				}
				if st, err := os.Stat(filepath.Join(o.OutDir, sc.Name+ext)); err != nil || st.Size() == 0 {
					t.Errorf("Run(%s) left no %s: %v", sc.Name, ext, err)
				}
			}
		})
	}
	if seen != len(wanted) {
		t.Errorf("found %d of the %d scenarios wanted in scenarios/", seen, len(wanted))
	}
}

func TestQEMUImageScenarios(t *testing.T) {
	fixtures := qemuPrereqs(t)
	runScenarios(t, ciScenarios, RunOptions{FirmwareName: "qemu", Firmware: QEMUNetbootImage, Fixtures: fixtures}, true)
}

// netiplImagePath returns $NETIPL_IMAGE, or netipl.img built from this tree once per test binary.
func netiplImagePath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NETIPL_IMAGE"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("NETIPL_IMAGE: %v", err)
		}
		return abs
	}
	return qemu.NetiplImage(t)
}

func TestNetiplImageScenarios(t *testing.T) {
	fixtures := qemuPrereqs(t)
	runScenarios(t, netiplScenarios, RunOptions{FirmwareName: "netipl", Firmware: netiplImagePath(t), Fixtures: fixtures}, false)
}

func TestMain(m *testing.M) {
	code := m.Run()
	qemu.RemoveNetiplImage()
	os.Exit(code)
}

// TestQEMUHangIsBounded checks that a firmware that never finishes is killed at the scenario's
// time bound and reported as a hang (QEMU's image loops forever on a random bootfile).
func TestQEMUHangIsBounded(t *testing.T) {
	fixtures := qemuPrereqs(t)
	sc, err := ParseScenario("hang.scn", strings.NewReader(
		"desc hang\ntimeout 4s\ndhcp bootfile garbage.bin\nfile garbage.bin random 65536\nwant Failed to load OS from network\n"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := Run(context.Background(), sc, RunOptions{FirmwareName: "qemu", Firmware: QEMUNetbootImage, Fixtures: fixtures})
	if r.Outcome != Hang || !strings.Contains(r.Reason, "killed at 4s") {
		t.Errorf("Run(hang) = %s %q, want HANG killed at 4s", r.Outcome, r.Reason)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Run(hang) returned after %v, want about 4 s", el)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
