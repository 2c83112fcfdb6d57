package boot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"netipl/tests/lab"
	"netipl/tests/qemu"
)

// TestLab runs tests/lab scenarios against netipl's image in the drop-in firmware mode: the
// guest's network is the lab (-netdev stream to an in-process gVisor peer with scripted DHCP,
// TFTP, HTTP and DNS servers). http-bootfile (option 67 is an http:// URL on the lab) and
// ins-file (an .INS file) always run; the rest of this list with NETIPL_BOOT_BIG=1. The whole
// matrix: go run ./tests/lab/cmd/netboot-lab -firmware build/netipl.img -scenario all.
func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no lab boots")
	}
	always := map[string]bool{"http-bootfile": true, "ins-file": true}
	names := []string{"http-bootfile", "ins-file", "dhcp-opt66-dns", "dhcp-two-servers", "pxe-opt209", "pxe-opt210", "lossy-link", "tftp-silence"}
	big := os.Getenv("NETIPL_BOOT_BIG") == "1"
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if !always[name] && !big {
				t.Skip("set NETIPL_BOOT_BIG=1")
			}
			bin := qemu.RequireBinary(t, qemu.SystemBinary)
			sc, err := lab.ParseScenarioFile(filepath.Join(qemu.ModuleRoot(t), "tests", "lab", "scenarios", name+".scn"))
			if err != nil {
				t.Fatal(err)
			}
			res := lab.Run(context.Background(), sc, lab.RunOptions{
				FirmwareName: "netipl", Firmware: qemu.NetiplImage(t), QEMU: bin, Fixtures: qemu.Fixtures(t),
			})
			if res.Outcome != lab.Pass {
				t.Fatalf("lab scenario %s: %s (%s)\nconsole:\n%s\nlab log:\n%s", name, res.Outcome, res.Reason, res.Console, res.LabLog)
			}
			t.Logf("%s: %s in %.1f s", name, res.Outcome, res.Elapsed.Seconds())
		})
	}
}
