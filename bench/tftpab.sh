#!/usr/bin/env bash
# bench/tftpab.sh: A/B of netipl images (and, if given, QEMU's s390-netboot.img) over TFTP through
# slirp in the drop-in firmware mode (-global s390-ipl.netboot_fw=, virtio-net-ccw bootindex=1,
# -m 512), rounds interleaved. Two rows per round and image:
#   tftp   a 20 MB initrd (the fixture initrd padded with zeros): MB/s = initrd size / time between
#          the kernel's and the initrd's "TFTP: Received" lines (bench/boot.sh's rule)
#   kernel the 1 MB fixture initrd: seconds from QEMU's start to "starting kernel"
# QEMU is stopped at "starting kernel" (the kernel is not booted). Medians per image at the end.
# About 3 s per round and image. Usage: ROUNDS=7 bash bench/tftpab.sh A.img B.img [/usr/share/qemu/s390-netboot.img]
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
[ $# -ge 1 ] || { echo "usage: ROUNDS=N bash bench/tftpab.sh IMG..." >&2; exit 2; }
for tool in qemu-system-s390x perl; do
  command -v "$tool" >/dev/null || { echo "bench/tftpab.sh: $tool not installed" >&2; exit 1; }
done
bash tests/fixtures/fetch.sh || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in r1 r20; do mkdir -p "$work/$r/pxelinux.cfg" && cp .cache/fixtures/vmlinuz "$work/$r/kernel.img"; done
cp .cache/fixtures/initrd.gz "$work/r1/initrd.img"
cp .cache/fixtures/initrd.gz "$work/r20/initrd.img" && truncate -s 20000000 "$work/r20/initrd.img"
size=$(stat -c %s "$work/r20/initrd.img")
for r in r1 r20; do
  printf 'DEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD initrd.img\n  APPEND console=ttysclp0 quiet\n' \
    >"$work/$r/pxelinux.cfg/default"
done

# run FW ROOT: one boot up to "starting kernel"; the console with a time stamp (s since start) per line.
run() {
  local start
  start=$(perl -MTime::HiRes=time -e 'printf "%.3f", time')
  timeout 60 qemu-system-s390x -M s390-ccw-virtio -m 512 -nographic -no-reboot -action panic=exit-failure \
    -global s390-ipl.netboot_fw="$1" -netdev user,id=n0,tftp="$2",bootfile=/ \
    -device virtio-net-ccw,netdev=n0,bootindex=1 </dev/null 2>&1 |
    perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%.3f %s", time, $_' |
    awk -v s="$start" '{ printf "%.3f ", $1 - s; $1 = ""; print } /starting kernel/ { exit }'
}

: >"$work/results"
for i in $(seq "$rounds"); do
  for img in "$@"; do
    name=$(basename "$img")
    mbps=$(run "$img" "$work/r20" | awk -v n="$size" '/Received .*kernel/ { k = $1 } /Received .*initrd/ { r = $1 }
      END { if (k != "" && r > k) printf "%.1f", n / (r - k) / 1e6; else print "-" }')
    tk=$(run "$img" "$work/r1" | awk '/starting kernel/ { print $1; exit }')
    echo "round $i  $name  tftp ${mbps} MB/s  kernel ${tk:--} s"
    echo "$name tftp $mbps" >>"$work/results"
    echo "$name kernel ${tk:--}" >>"$work/results"
  done
done
echo "== medians over $rounds rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for img in "$@"; do
  name=$(basename "$img")
  m() { awk -v n="$name" -v k="$1" '$1 == n && $2 == k && $3 != "-" { print $3 }' "$work/results" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }
  printf '%-24s tftp %s MB/s   start -> starting kernel %s s\n' "$name" "$(m tftp)" "$(m kernel)"
done
