#!/usr/bin/env bash
# make demo: boot the Debian s390x kernel through netipl under qemu-system-s390x.
# `make demo` has already built build/netipl.img (make image) and the fixtures (tests/fixtures).
# This script serves the kernel and the busybox initrd over QEMU's slirp TFTP with a pxelinux
# config, starts netipl in the drop-in firmware mode (-global s390-ipl.netboot_fw=, NIC with
# bootindex=1) and shows the console until the initrd's marker; the initrd powers the guest off.
set -euo pipefail
cd "$(dirname "$0")/.."
img="$PWD/build/netipl.img"
fix=.cache/fixtures
qemu=${QEMU:-qemu-system-s390x}
[ -s "$img" ] || { echo "demo: $img missing: run make image" >&2; exit 1; }
for f in vmlinuz initrd.gz; do
  [ -s "$fix/$f" ] || { echo "demo: $fix/$f missing: run bash tests/fixtures/fetch.sh" >&2; exit 1; }
done
command -v "$qemu" >/dev/null || { echo "demo: $qemu not installed (apt-get install qemu-system-misc)" >&2; exit 1; }

root=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$root" "$log"' EXIT
cp "$fix/vmlinuz" "$root/kernel.img"
cp "$fix/initrd.gz" "$root/initrd.gz"
mkdir -p "$root/pxelinux.cfg"
cat >"$root/pxelinux.cfg/default" <<'CFG'
DEFAULT debian
LABEL debian
  KERNEL kernel.img
  INITRD initrd.gz
  APPEND console=ttysclp0 netipl.demo=1
CFG

echo "demo: TFTP root $root: kernel.img, initrd.gz, pxelinux.cfg/default"
echo "demo: $qemu -M s390-ccw-virtio -m 512 -nographic -no-reboot -global s390-ipl.netboot_fw=$img" \
  "-netdev user,id=n0,tftp=$root,bootfile=/ -device virtio-net-ccw,netdev=n0,bootindex=1"
echo
set +e
timeout 180 "$qemu" -M s390-ccw-virtio -m 512 -nographic -no-reboot -action panic=exit-failure \
  -global s390-ipl.netboot_fw="$img" \
  -netdev user,id=n0,tftp="$root",bootfile=/ -device virtio-net-ccw,netdev=n0,bootindex=1 </dev/null | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo
if grep -q NETIPL-INITRD-OK "$log" && grep -q "CMDLINE: console=ttysclp0 netipl.demo=1" "$log"; then
  echo "demo: the Debian kernel booted through netipl and ran the initrd's /init (QEMU exit $rc)"
  exit 0
fi
echo "demo: the initrd marker did not appear (QEMU exit $rc)" >&2
exit 1
