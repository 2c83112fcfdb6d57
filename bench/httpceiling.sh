#!/usr/bin/env bash
# bench/httpceiling.sh: the HTTP rate slirp, QEMU's virtio-net and metal's NIC path leave for a guest
# stack. bench/rawhttp runs as the loader (standalone, -kernel) and downloads a 60 MB file from a host
# python3 http.server (10.0.2.2 through slirp) with hand-made TCP frames on the raw tap: one read per
# frame, no stack, an ACK every N frames or when the queue is empty. Compare with the HTTP row of
# bench/boot.sh (netipl's loader over gVisor, same file, same server).
# Prints one RESULT line per ACK setting and QEMU's CPU (user+sys, % of one core) over the run.
# DUMP=DIR keeps each run's frames (QEMU filter-dump) for bench/slirpflow.py. Then the stack's own
# side of the same download without metal: BenchmarkTCPBurstReceive (bursts of 32 segments through
# the tap link, the coalescer and gVisor to a reader) under qemu-s390x with one CPU, median of 3.
# About 20 s per setting on 2 cores. Usage: bash bench/httpceiling.sh   (ACKS="16 4" by default)
set -uo pipefail
cd "$(dirname "$0")/.."
acks=${ACKS:-16 4}
for tool in qemu-system-s390x python3; do
  command -v "$tool" >/dev/null || { echo "bench/httpceiling.sh: $tool not installed" >&2; exit 1; }
done
work=$(mktemp -d)
httpd=
trap '[ -n "$httpd" ] && kill "$httpd" 2>/dev/null; rm -rf "$work"' EXIT
head -c 60000000 /dev/zero >"$work/file60.img"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work" "$port" >/dev/null 2>&1 &
httpd=$!
sleep 1
for ack in $acks; do
  go run ./linker/cmd/netipl-link -loader ./bench/rawhttp -arg "-peer=10.0.2.2:$port" -arg -path=/file60.img \
    -arg "-ack=$ack" -o "$work/raw.img" || exit 1
  # The guest powers off when rawhttp returns.
  dump=
  [ -n "${DUMP:-}" ] && mkdir -p "$DUMP" && dump="-object filter-dump,id=f1,netdev=n0,file=$DUMP/rawhttp-ack$ack.pcap,maxlen=128"
  /usr/bin/time -f '%U %S %e' -o "$work/cpu" timeout 90 qemu-system-s390x -M s390-ccw-virtio -m 256 -nographic \
    -no-reboot -action panic=exit-failure -kernel "$work/raw.img" -netdev user,id=n0 $dump \
    -device virtio-net-ccw,netdev=n0 </dev/null >"$work/console" 2>&1
  line=$(tr -d '\r' <"$work/console" | grep -m1 '^RESULT\|^FAIL' || echo "FAIL: no result (console: $(tail -c 300 "$work/console" | tr '\n' ' '))")
  echo "ack every $ack frames: $line"
  [ -s "$work/cpu" ] && awk '{ printf "  QEMU CPU over the whole run (boot included): %.0f%% of one core\n", 100 * ($1 + $2) / $3 }' "$work/cpu"
done
if command -v qemu-s390x >/dev/null; then
  GOOS=linux GOARCH=s390x go test -c -o "$work/netstack.test" ./netstack || exit 1
  for _ in 1 2 3; do
    qemu-s390x "$work/netstack.test" -test.run '^$' -test.bench 'TCPBurstReceive$' -test.cpu 1 -test.benchtime 2000x |
      awk '/^Benchmark/ { print $3 }'
  done | sort -n | awk '{ v[NR] = $1 } END { printf "stack side under qemu-s390x (no metal, no slirp): %.0f us per 32-segment burst, %.1f us per segment (median of %d)\n", v[2] / 1000, v[2] / 32000, NR }'
else
  echo "stack side under qemu-s390x: NOT MEASURED (qemu-s390x not installed)"
fi
