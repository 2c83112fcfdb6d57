// Package boot holds netipl's end-to-end boot tests (design §6 tier 4): the real image
// (metal + the loader of ./loader, built with linker.Build) boots the Debian s390x kernel and the
// busybox initrd of tests/fixtures under qemu-system-s390x 7.2, in both launch modes, over slirp
// TFTP and over HTTP from a host server that slirp reaches at 10.0.2.2. Each scenario checks the
// loader's console lines, the initrd's marker and the command line the kernel got.
//
// TestLab runs tests/lab scenarios (http-bootfile: option 67 an http:// URL on the lab's server;
// ins-file) against the same image.
//
// `go test ./tests/boot` runs the fast scenarios (six boots, about 40 s of TCG). The big
// ones — a 1 GiB initrd in a 3 GiB guest, the booted kernel reusing the NIC for a DHCP lease, and
// a command line longer than 896 bytes — run when NETIPL_BOOT_BIG=1 is set (see README.md).
// Missing QEMU or fixtures skip, or fail under CI=true.
package boot
