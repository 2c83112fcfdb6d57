#!/usr/bin/env bash
# bench/httpab.sh: A/B of netipl images on the HTTP row of bench/boot.sh (60 MB initrd from a host
# python3 http.server through slirp, drop-in firmware mode, -m 512), rounds interleaved, every other
# round in reverse order. Per run: MB/s (initrd size / time between the kernel's and the initrd's
# "Received" lines, boot.sh's rule) and QEMU's CPU per MB over the same span (all its threads, from
# /proc/PID/task/*/schedstat), less sensitive to the machine's load than the rate. QEMU is stopped
# once the initrd is in: the kernel is not booted. Medians at the end. DUMP=DIR keeps a filter-dump
# pcap of each run for bench/slirpflow.py; TRACE=DIR keeps QEMU's trace of the stores that took TCG's
# slow self-modifying-code path (notdirty writes) of each run for bench/notdirty.py (tens of MB per
# run when many do). NICE=-10 (as root) runs QEMU and the watcher at a higher priority. QEMU_EXTRA adds QEMU options (QEMU_EXTRA=-mem-prealloc: guest RAM is touched at start, so
# the host's first-touch cost of fresh pages, 6 ms per 2 MiB on some hosts, stays out of the rates).
# Runs of one image spread widely on a shared machine: use ROUNDS >= 10.
# About 2-5 s per run. Usage: ROUNDS=10 bash bench/httpab.sh A.img B.img ...
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-6}
[ $# -ge 1 ] || { echo "usage: ROUNDS=N bash bench/httpab.sh IMG..." >&2; exit 2; }
for tool in qemu-system-s390x python3 perl; do
  command -v "$tool" >/dev/null || { echo "bench/httpab.sh: $tool not installed" >&2; exit 1; }
done
bash tests/fixtures/fetch.sh || exit 1
work=$(mktemp -d)
httpd=
trap '[ -n "$httpd" ] && kill "$httpd" 2>/dev/null; rm -rf "$work"' EXIT
root=$work/www
mkdir -p "$root"
cp .cache/fixtures/vmlinuz "$root/kernel.img"
cp .cache/fixtures/initrd.gz "$root/initrd60.img" && truncate -s 60000000 "$root/initrd60.img"
size=$(stat -c %s "$root/initrd60.img")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$root" "$port" >/dev/null 2>&1 &
httpd=$!
sleep 1
printf '# pxelinux\nDEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD initrd60.img\n  APPEND console=ttysclp0 quiet\n' >"$root/http.cfg"
# The watcher: follows the log, sums QEMU's on-CPU time at both "Received" lines, prints ms.
cat >"$work/watch.py" <<'PY'
import glob, re, sys, time
log, pidfile = sys.argv[1], sys.argv[2]
def cpu():
    pid = open(pidfile).read().split()[0]
    return sum(int(open(s).read().split()[0]) for s in glob.glob(f"/proc/{pid}/task/*/schedstat"))
marks, pos, end = {}, 0, time.time() + 300
while len(marks) < 2 and time.time() < end:
    try:
        with open(log, "rb") as f:
            f.seek(pos); data = f.read(); pos += len(data)
    except OSError:
        data = b""
    for line in data.decode(errors="replace").splitlines():
        for k in ("kernel", "initrd"):
            if k not in marks and re.search(r"Received .*" + k, line):
                marks[k] = cpu()
    time.sleep(0.002)
print("%.0f" % ((marks["initrd"] - marks["kernel"]) / 1e6) if len(marks) == 2 else "-")
PY
run() { # run IMG TAG: one boot; sets mbps, cpu
  local img=$1 tag=$2 dump= trace=
  rm -f "$work/log" "$work/pid"
  [ -n "${DUMP:-}" ] && mkdir -p "$DUMP" && dump="-object filter-dump,id=f1,netdev=n0,file=$DUMP/$tag.pcap,maxlen=128"
  [ -n "${TRACE:-}" ] && mkdir -p "$TRACE" && trace="-trace memory_notdirty_write_access -trace memory_notdirty_set_dirty -D $TRACE/$tag.log"
  # The QEMU command line is `sh -c 'echo $$ >pid; exec qemu ...'` so the watcher knows its PID.
  nice -n "${NICE:-0}" timeout 120 sh -c 'echo $$ >"$0"; exec "$@"' "$work/pid" qemu-system-s390x -M s390-ccw-virtio -m 512 ${QEMU_EXTRA:-} \
    -nographic -no-reboot -action panic=exit-failure -global s390-ipl.netboot_fw="$img" \
    -netdev user,id=n0,bootfile="http://10.0.2.2:$port/http.cfg" $dump -device virtio-net-ccw,netdev=n0,bootindex=1 $trace \
    </dev/null 2>&1 | perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%.3f %s", time, $_' >"$work/log" &
  local qp=$!
  for _ in $(seq 50); do [ -s "$work/pid" ] && break; sleep 0.05; done
  cpu=$(nice -n "${NICE:-0}" python3 "$work/watch.py" "$work/log" "$work/pid")
  kill "$(cat "$work/pid")" 2>/dev/null
  wait "$qp" 2>/dev/null
  mbps=$(awk -v n="$size" '/Received .*kernel\.img/ && !a { a = $1 } /Received .*initrd/ && !b { b = $1 }
    END { if (a == "" || b == "" || b <= a) print "-"; else printf "%.1f", n / (b - a) / 1e6 }' "$work/log")
  [ "$cpu" = - ] || cpu=$(awk -v c="$cpu" -v n="$size" 'BEGIN { printf "%.1f", c / (n / 1e6) }')
}
declare -A rates cpus
imgs=("$@")
for r in $(seq "$rounds"); do
  order=("${imgs[@]}")
  if [ $((r % 2)) = 0 ]; then # every other round backwards: no image always runs first
    order=()
    for ((i = ${#imgs[@]} - 1; i >= 0; i--)); do order+=("${imgs[i]}"); done
  fi
  for img in "${order[@]}"; do
    run "$img" "$(basename "$img" .img)-$r"
    echo "round $r $(basename "$img"): $mbps MB/s, QEMU CPU $cpu ms/MB (load $(cut -d' ' -f1 /proc/loadavg))"
    rates[$img]="${rates[$img]:-} $mbps"
    cpus[$img]="${cpus[$img]:-} $cpu"
  done
done
median() { tr ' ' '\n' | grep -v '^-\?$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for img in "$@"; do
  echo "RESULT $(basename "$img"): median $(echo ${rates[$img]} | median) MB/s, QEMU CPU $(echo ${cpus[$img]} | median) ms/MB over $rounds runs (rates:${rates[$img]})"
done
