package qemu

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"
)

// The runner against the real emulator, with QEMU's own netboot image as the guest: the
// netboot_fw command line is accepted, s390-ccw.img runs, finds the NIC and starts the image.
func TestRealQEMUNetbootFirmware(t *testing.T) {
	bin := RequireBinary(t, SystemBinary)
	if _, err := os.Stat(NetbootFirmware); err != nil {
		Unavailable(t, "QEMU's netboot image: %v", err)
	}
	c := Config{Binary: bin, Mode: ModeNetbootFW, Image: NetbootFirmware, MemoryMiB: 128, NICs: []NIC{{}}, Timeout: 60 * time.Second}
	res, err := Run(context.Background(), c, RunOptions{StopAt: regexp.MustCompile(`^Network boot starting\.\.\.`)})
	if err != nil {
		t.Fatalf("Run(%+v) error %v", c, err)
	}
	if !res.Stopped {
		t.Fatalf("QEMU's netboot image never printed %q:\n%s", "Network boot starting...", res)
	}
	for _, want := range []string{"LOADPARM=[        ]", "Network boot device detected"} {
		if !res.Contains(want) {
			t.Errorf("console lacks %q:\n%s", want, res)
		}
	}
}
