#!/usr/bin/env bash
# bench/boot.sh: netipl (build/netipl.img) and QEMU's /usr/share/qemu/s390-netboot.img side by side,
# both in the drop-in firmware mode (-global s390-ipl.netboot_fw=, virtio-net-ccw bootindex=1) over
# slirp, booting the Debian kernel of tests/fixtures with a pxelinux.cfg/01-<MAC> config:
#   - QEMU start -> "starting kernel" with the 1 MB fixture initrd (median of RUNS) and a 60 MB initrd
#   - TFTP throughput of the initrd (its size / time between the kernel's and the initrd's
#     "TFTP: Received" lines, the same rule for both images)
#   - peak host RSS of QEMU (GNU time), the smallest guest RAM (MiB) that still boots the 1 MB case
#   - netipl over HTTP (a host server that slirp reaches at 10.0.2.2): time to kernel, throughput,
#     RUNS runs as they come and RUNS with guest RAM preallocated (-mem-prealloc), medians of each
# Every number is printed; nothing is judged here (bars: docs/boot.md). About 4 minutes on 2 cores.
# Usage: bash bench/boot.sh   (RUNS=3 by default)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
stock=/usr/share/qemu/s390-netboot.img
img=$PWD/build/netipl.img
bash tests/fixtures/fetch.sh || exit 1
[ -s "$img" ] || go run ./linker/cmd/netipl-link -loader ./loader -o "$img" || exit 1
for tool in qemu-system-s390x perl; do
  command -v "$tool" >/dev/null || { echo "bench/boot.sh: $tool not installed" >&2; exit 1; }
done
# timed CMD...: runs CMD, recording the peak RSS of it and its children (KB) in $work/rss with GNU
# time (Debian package "time"); without it the RSS columns print "-".
timed() {
  if [ -x /usr/bin/time ]; then /usr/bin/time -f %M -o "$work/rss" "$@"; else "$@"; fi
}
[ -s "$stock" ] || { echo "bench/boot.sh: $stock missing (qemu-system-data)" >&2; exit 1; }

work=$(mktemp -d)
httpd=
trap '[ -n "$httpd" ] && kill "$httpd" 2>/dev/null; rm -rf "$work"' EXIT
root=$work/tftp
mkdir -p "$root/pxelinux.cfg"
cp .cache/fixtures/vmlinuz "$root/kernel.img"
cp .cache/fixtures/initrd.gz "$root/initrd1.gz"
# 60 MB: the fixture initrd followed by zeros (the kernel's unpacker skips NUL padding).
cp .cache/fixtures/initrd.gz "$root/initrd60.img" && truncate -s 60000000 "$root/initrd60.img"
size1=$(stat -c %s "$root/initrd1.gz")
size60=$(stat -c %s "$root/initrd60.img")
cfg() { # cfg INITRD: the config every run uses (MAC file: the first name both images try)
  printf 'DEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD %s\n  APPEND console=ttysclp0 quiet\n' "$1" \
    >"$root/pxelinux.cfg/01-52-54-00-12-34-56"
}

# boot FW MEM BOOTFILE [TIMEOUT]: one run; sets t_kernel, t_k, t_i (seconds since start), rss (KB), ok (0/1).
boot() {
  local fw=$1 mem=$2 bootfile=$3 tmo=${4:-300} start
  start=$(perl -MTime::HiRes=time -e 'printf "%.3f", time')
  rm -f "$work/rss"
  timed timeout "$tmo" qemu-system-s390x -M s390-ccw-virtio -m "$mem" ${QEMU_EXTRA:-} -nographic \
    -no-reboot -action panic=exit-failure -global s390-ipl.netboot_fw="$fw" \
    -netdev user,id=n0,tftp="$root",bootfile="$bootfile" -device virtio-net-ccw,netdev=n0,bootindex=1 </dev/null 2>&1 |
    perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%.3f %s", time, $_' >"$work/log"
  t_kernel=$(awk -v s="$start" '/starting kernel/ { printf "%.2f", $1 - s; exit }' "$work/log")
  t_k=$(awk -v s="$start" '/Received .*kernel\.img/ { printf "%.3f", $1 - s; exit }' "$work/log")
  t_i=$(awk -v s="$start" '/Received .*initrd/ { printf "%.3f", $1 - s; exit }' "$work/log")
  rss=$(tail -n1 "$work/rss" 2>/dev/null || echo -)
  ok=0
  grep -q NETIPL-INITRD-OK "$work/log" && ok=1
}
mbps() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (a == "" || b == "" || b <= a) print "-"; else printf "%.1f", n / (b - a) / 1e6 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }

echo "== time to kernel, 1 MB initrd (median of $runs runs), TFTP over slirp, -m 512"
cfg initrd1.gz
for fw in "$stock" "$img"; do
  name=$([ "$fw" = "$stock" ] && echo "qemu s390-netboot.img" || echo "netipl")
  : >"$work/times"
  for i in $(seq "$runs"); do
    boot "$fw" 512 /
    [ "$ok" = 1 ] || echo "$name: run $i did not boot: $(grep -a -m3 -i 'error\|failed\|netipl:' "$work/log" | cut -c1-160)"
    echo "$t_kernel" >>"$work/times"
  done
  printf '%-22s start -> starting kernel: %s s   peak RSS %s KB\n' "$name" "$(median <"$work/times")" "$rss"
done

echo "== 60 MB initrd, TFTP over slirp, -m 512"
cfg initrd60.img
for fw in "$stock" "$img"; do
  name=$([ "$fw" = "$stock" ] && echo "qemu s390-netboot.img" || echo "netipl")
  boot "$fw" 512 /
  printf '%-22s start -> starting kernel: %s s   initrd TFTP %s MB/s   peak RSS %s KB   booted %s\n' \
    "$name" "${t_kernel:--}" "$(mbps "$size60" "$t_k" "$t_i")" "$rss" "$ok"
  grep -a -o 'Received .*initrd60.img.*MB/s' "$work/log" | sed 's/^/    netipl says: /'
done

echo "== smallest guest RAM that boots the 1 MB case"
cfg initrd1.gz
for fw in "$stock" "$img"; do
  name=$([ "$fw" = "$stock" ] && echo "qemu s390-netboot.img" || echo "netipl")
  if [ "$fw" = "$stock" ]; then sizes="128 126 125 124 121"; else sizes="128 112 104 96 88 80 72 64"; fi
  best=-
  for m in $sizes; do
    boot "$fw" "$m" / 40 # QEMU's image hangs in 122..124 MiB (research/qemu-netboot.md §7.7)
    [ "$ok" = 1 ] || break
    best=$m
  done
  printf '%-22s minimum RAM: %s MiB (tried %s)\n' "$name" "$best" "$sizes"
done

echo "== netipl over HTTP (host server via slirp 10.0.2.2), 60 MB initrd, -m 512"
command -v python3 >/dev/null || { echo "python3 not installed: no HTTP server, HTTP numbers skipped"; exit 0; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$root" "$port" >/dev/null 2>&1 &
httpd=$!
sleep 1
printf '# pxelinux\nDEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD initrd60.img\n  APPEND console=ttysclp0 quiet\n' >"$root/http.cfg"
# RUNS boots as they come, then RUNS with -mem-prealloc: QEMU touches all guest RAM before the guest
# starts, so the host's first-touch cost of the fresh pages the initrd lands in stays out of the rate
# (on a nested VM it can be 6 ms per 2 MiB, ~3 ms/MB, paid by whichever firmware writes there first;
# docs/boot.md "Numbers"). Both medians are printed, and every run's rate.
for extra in "" -mem-prealloc; do
  rates=
  for i in $(seq "$runs"); do
    QEMU_EXTRA=$extra boot "$img" 512 "http://10.0.2.2:$port/http.cfg"
    rates="$rates $(mbps "$size60" "$t_k" "$t_i")"
    [ "$ok" = 1 ] || echo "netipl: HTTP run $i did not boot: $(grep -a -m3 -i 'error\|failed\|netipl:' "$work/log" | cut -c1-160)"
  done
  printf '%-22s start -> starting kernel: %s s   initrd HTTP median %s MB/s (runs:%s)   peak RSS %s KB   booted %s\n' \
    "netipl${extra:+ $extra}" "${t_kernel:--}" "$(echo $rates | tr ' ' '\n' | grep -v '^-$' | median)" "$rates" "$rss" "$ok"
done
