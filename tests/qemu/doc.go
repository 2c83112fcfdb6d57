// Package qemu runs qemu-system-s390x for netipl's end-to-end tests and benchmarks.
//
// It does four things:
//
//   - Config.Args builds the command line for the two launch modes of design §1:
//     ModeKernel (`-kernel IMG`, a NIC without bootindex) and ModeNetbootFW
//     (`-global s390-ipl.netboot_fw=ABS_IMG` behind a virtio-net-ccw NIC with bootindex=1).
//     Every run uses `-M s390-ccw-virtio -nographic -no-reboot -action panic=exit-failure`,
//     so a guest that stops with a disabled wait other than the "quiesce" one (address
//     …fff) makes QEMU exit 1 (research/freestanding-go.md §3.7).
//   - Run starts QEMU, captures the console line by line with the time (and the host CPU
//     time QEMU had used) at which each line arrived, stops it at a deadline or at a
//     wanted line, and kills the whole process group, so a hung guest never hangs a test.
//   - ParseReport reads kvm-unit-tests style self-test output (`PASS: group: what`,
//     `FAIL: group: what (details)`, `SKIP: …`, `SUMMARY: N tests, M failures`,
//     `EXIT: STATUS=n`), style guide B19.
//   - Unavailable turns a missing prerequisite (QEMU, an image, a fixture) into t.Skip,
//     or into a failure when CI=true.
//
// Beside them, the set-up the boot tests share: ModuleRoot, Fixtures (the Debian kernel and
// initrd under .cache/fixtures) and NetiplImage (netipl.img linked once per test binary).
//
// The package is host-side test support: it never prints; callers log Result.String()
// when a run fails. Its command qemu-run (tests/qemu/cmd/qemu-run) exposes Run to shell
// scripts: it times chosen console lines over several runs (bench/metal.sh uses it).
//
// A typical test:
//
//	bin := qemu.RequireBinary(t, qemu.SystemBinary) // skip, or fail under CI=true
//	res, err := qemu.Run(ctx, qemu.Config{Binary: bin, Mode: qemu.ModeNetbootFW, Image: img,
//		MemoryMiB: 512, Loadparm: "LINUX", NICs: []qemu.NIC{{Netdev: "user,tftp=" + dir}},
//		Timeout: time.Minute}, qemu.RunOptions{StopAt: regexp.MustCompile(`^Network loading done`)})
//	if err != nil { t.Fatal(err) }
//	if !res.Stopped { t.Fatalf("no kernel start:\n%s", res) }
package qemu
