#!/usr/bin/env bash
# bench/startup.sh: netipl's start-up phases next to QEMU's s390-netboot.img, both in the drop-in
# firmware mode (-global s390-ipl.netboot_fw=, virtio-net-ccw bootindex=1) over slirp TFTP with a
# pxelinux.cfg/01-<MAC> config. Each run stops at "Loading pxelinux.cfg entry" (everything before
# the first block of the kernel: the part docs/boot.md calls start-up). For each console mark it
# prints the median seconds since QEMU start over RUNS runs, and min-max:
#   LOADPARM        QEMU's BIOS (s390-ccw.img) is running: the same for both images
#   start           "Network boot starting..." (netipl: metal boot + Go runtime + package init)
#   MAC             "Using MAC address"        (netipl: machine facts, NIC set-up)
#   DHCP done       "Requesting information via DHCP: ...done"
#   pxelinux        "Trying pxelinux.cfg files..."
#   entry           "Loading pxelinux.cfg entry"
# Usage: bash bench/startup.sh [IMAGE]   (RUNS=7 by default; IMAGE defaults to build/netipl.img,
# built when missing). About 2 s per run on 2 cores. Other QEMU jobs on the machine inflate the
# numbers: note `uptime` next to them.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-7}
stock=/usr/share/qemu/s390-netboot.img
img=${1:-$PWD/build/netipl.img}
case $img in /*) ;; *) img=$PWD/$img ;; esac
for tool in qemu-system-s390x python3; do
  command -v "$tool" >/dev/null || { echo "bench/startup.sh: $tool not installed" >&2; exit 1; }
done
[ -s "$stock" ] || { echo "bench/startup.sh: $stock missing (qemu-system-data)" >&2; exit 1; }
[ -s "$img" ] || go run ./linker/cmd/netipl-link -loader ./loader -o "$img" || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/tftp
mkdir -p "$root/pxelinux.cfg"
printf 'not a kernel\n' >"$root/kernel.img"
printf 'DEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  APPEND quiet\n' >"$root/pxelinux.cfg/01-52-54-00-12-34-56"

# run FW: one boot; prints "mark seconds" lines (seconds since QEMU start) for the marks it saw.
run() {
  python3 - "$1" "$root" <<'EOF'
import subprocess, sys, time
fw, root = sys.argv[1], sys.argv[2]
marks = [("LOADPARM", "LOADPARM"), ("start", "Network boot starting"), ("MAC", "Using MAC address"),
         ("DHCP done", "done"), ("pxelinux", "Trying pxelinux.cfg files"), ("entry", "Loading pxelinux.cfg entry")]
start = time.monotonic()
q = subprocess.Popen(["qemu-system-s390x", "-M", "s390-ccw-virtio", "-m", "512", "-nographic", "-no-reboot",
                      "-action", "panic=exit-failure", "-global", "s390-ipl.netboot_fw=" + fw,
                      "-netdev", "user,id=n0,tftp=%s,bootfile=/" % root,
                      "-device", "virtio-net-ccw,netdev=n0,bootindex=1"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
seen = {}
deadline = start + 30
try:
    for raw in q.stdout:
        t = time.monotonic() - start
        line = raw.decode(errors="replace")
        for name, text in marks:
            if name not in seen and text in line and (name != "DHCP done" or "DHCP" in line):
                seen[name] = t
        if "entry" in seen or time.monotonic() > deadline:
            break
finally:
    q.kill()
    q.wait()
for name, _ in marks:
    if name in seen:
        print("%s\t%.3f" % (name, seen[name]))
EOF
}

declare -A all
for fw in "$stock" "$img"; do
  for ((i = 0; i < runs; i++)); do
    while IFS=$'\t' read -r mark t; do
      all["$fw|$mark"]+="$t "
    done < <(run "$fw")
  done
done

# stat VALUES...: "median (min-max)" or "n/a"
stat() {
  [ $# -eq 0 ] && { echo n/a; return; }
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f (%.3f-%.3f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
echo "start-up phases, seconds since QEMU start: median (min-max) of $runs runs; $(uptime | sed 's/.*load/load/')"
printf '%-10s  %-24s  %-24s\n' mark "QEMU's s390-netboot.img" "netipl ($(basename "$img"))"
for mark in LOADPARM start MAC "DHCP done" pxelinux entry; do
  # shellcheck disable=SC2086
  printf '%-10s  %-24s  %-24s\n' "$mark" "$(stat ${all["$stock|$mark"]:-})" "$(stat ${all["$img|$mark"]:-})"
done
