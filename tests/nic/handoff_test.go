package nic_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"netipl/tests/qemu"
)

// TestKexecHandoff: tests/nic/kexecprobe checks metal's /dev/mem, /proc/iomem and kexec_load
// rules, then fetches the Debian kernel and initrd (tests/fixtures) over HTTP through slirp,
// streams them through /dev/mem, writes the parmarea and starts the kernel with kexec_load +
// reboot(LINUX_REBOOT_CMD_KEXEC) at 0x10000 (S390EP). The initrd prints its marker and the
// command line it got, then powers off.
func TestKexecHandoff(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	dir := filepath.Join(moduleRoot(t), ".cache", "fixtures")
	for _, f := range []string{"vmlinuz", "initrd.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			qemu.Unavailable(t, "fixture %s missing (bash tests/fixtures/fetch.sh): %v", f, err)
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	const cmdline = "console=ttysclp0 quiet marker=netipl-kexec"
	img := buildImage(t, "./tests/nic/kexecprobe", fmt.Sprintf("-url=http://10.0.2.2:%d", port), "-cmdline="+cmdline)
	args, err := qemu.Config{Image: img, MemoryMiB: 512, NICs: []qemu.NIC{{}}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, bin, args)
	wantLines(t, res,
		"PASS: kexec: mmap /dev/mem of the lowcore: device or resource busy",
		"PASS: kexec: mmap of a range that is already mapped: device or resource busy",
		"PASS: kexec: /proc/iomem lists the mapped 1 MiB as Reserved",
		"PASS: kexec: remap after munmap sees the same memory: <nil>",
		"PASS: kexec: kexec_load beyond RAM: cannot assign requested address",
		"Network loading done, starting kernel...",
		"NETIPL-INITRD-OK",
		"CMDLINE: "+cmdline)
	if rep := res.Report(); len(rep.Fail) > 0 {
		t.Errorf("kexecprobe failures: %v; run:\n%s", rep.Fail, res)
	}
	noMetalLines(t, res)
	if res.ExitCode != 0 {
		t.Errorf("QEMU exit code %d, want 0 (the initrd powers off); run:\n%s", res.ExitCode, res)
	}
}

// TestKexecIPLPSW starts kexecprobe's mini kernel through entry 0 (the short PSW at 0, as diag
// 308 load-normal does): its segments are buffered, in place with a zero-filled tail, and over
// metal's own image; the mini kernel checks them and stops (QEMU exit 0). With -break one
// pattern word is wrong, so the same check must end in its disabled wait (QEMU exit 1).
func TestKexecIPLPSW(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	for _, tc := range []struct {
		name string
		args []string
		exit int
	}{
		{"intact", []string{"-ipl-psw"}, 0},
		{"broken pattern", []string{"-ipl-psw", "-break"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, "./tests/nic/kexecprobe", tc.args...)
			args, err := qemu.Config{Image: img, MemoryMiB: 256, Extra: []string{"-nic", "none"}}.Args()
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, bin, args)
			wantLines(t, res, "PASS: kexec: kexec_load of the mini kernel with entry 0: <nil>", "Network loading done, starting kernel...")
			noMetalLines(t, res)
			if res.ExitCode != tc.exit {
				t.Errorf("QEMU exit code %d, want %d; run:\n%s", res.ExitCode, tc.exit, res)
			}
		})
	}
}
