#!/usr/bin/env bash
# bench/nic.sh — numbers for the boot NIC path (docs/nic.md). Prints what it measures; says what it cannot.
# About 1 minute. Run it on an otherwise idle machine: other QEMU runs on the same 2 cores make the
# guest lose frames before its NIC and lower every guest number.
#
# 1. Host tap variant (needs root): netstack's gVisor stack over a real Linux tap in a private network
#    namespace, the Linux kernel as the peer (go test -bench Tap ./netstack).
# 2. The netstack's receive path per frame without QEMU (go test -bench RxUDPFrame ./netstack): on the
#    host with one CPU, and the same benchmark built for s390x under qemu-s390x (user-mode TCG, a
#    quick proxy for the guest's cost per frame: 14-16 us there went with 42-50 MB/s in the guest).
# 3. Guest variant: netipl.img with tests/nic/nicprobe as the loader under QEMU TCG (-m 256), slirp, and a
#    host UDP echo/flood server on 127.0.0.1 (the guest's 10.0.2.2). A flood is FLOOD_N datagrams of 1472
#    bytes paced by the host at FLOOD_RATE MB/s (default 50, above the 40 MB/s bar; 0 = unpaced, which
#    mostly measures how many the host socket and slirp drop before the NIC).
#      - UDP request/response RTT through slirp, 200 rounds of 64 bytes: median and p99
#      - bulk into metal's tap: raw frames read from /dev/net/tun (no stack): received, MB/s, NIC drops
#      - bulk through the gVisor stack into a UDP socket the program reads: received, MB/s, drops at the
#        NIC (nic_rx_dropped), at the stack's socket buffer (udp_rcvbuf_drops) and before the NIC
#        (sent minus the frames the NIC saw, nic_rx_frames=before..after)
#      - host CPU of QEMU while the guest blocks 10 s on an idle socket
# Bars (issue "virtio + netstack link"): RTT reported; bulk >= 40 MB/s; idle host CPU <= 10 %.
set -uo pipefail
cd "$(dirname "$0")/.."
FLOOD_N=${FLOOD_N:-20000}
FLOOD_RATE=${FLOOD_RATE:-50} # MB/s the host paces each flood at (0 = unpaced); above the bar, so a pass means something

echo "== NIC, host tap variant (gVisor over a Linux tap, kernel peer in a netns)"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "NOT MEASURED: needs root and iproute2 (netns + tap)"
else
  go test -run '^$' -bench 'Tap' -benchtime=1x ./netstack | grep '^Benchmark' |
    sed -E -e 's/^BenchmarkTapUDPRTT\S*\s+[0-9]+\s+[0-9]+ ns\/op\s*/RESULT: host_tap_udp_rtt: /' \
      -e 's/^BenchmarkTapUDPBulkIn\S*\s+[0-9]+\s+[0-9]+ ns\/op\s*/RESULT: host_tap_udp_bulk_in: /' -e 's/\t+/ /g'
fi

echo "== netstack receive path per frame (BenchmarkRxUDPFrame: a 1472-byte UDP datagram from a socket-pair tap into a socket, one CPU)"
go test -run '^$' -bench 'RxUDPFrame$' -benchmem -cpu 1 ./netstack | grep '^Benchmark' |
  awk '{ print "RESULT: host_rx_udp_frame_ns=" $3, "allocs_per_frame=" $(NF-1) }'
if command -v qemu-s390x >/dev/null; then
  # User-mode TCG on big-endian s390x: a proxy for the guest's cost (which adds system-mode TCG and metal).
  rx=$(mktemp)
  if GOOS=linux GOARCH=s390x go test -c -o "$rx" ./netstack; then
    for _ in 1 2 3; do qemu-s390x "$rx" -test.run '^$' -test.bench 'RxUDPFrame$' -test.cpu 1 -test.benchtime 20000x | awk '/^Benchmark/ { print $3 }'; done |
      sort -n | awk '{ v[NR] = $1 } END { print "RESULT: qemu_user_s390x_rx_udp_frame_ns=" v[2] " (median of 3)" }'
  fi
  rm -f "$rx"
else
  echo "NOT MEASURED under qemu-s390x: not installed"
fi

echo "== NIC, guest under qemu-system-s390x (TCG) through slirp"
if ! command -v qemu-system-s390x >/dev/null || ! command -v python3 >/dev/null; then
  echo "NOT MEASURED: needs qemu-system-s390x and python3"
  exit 0
fi
work=$(mktemp -d)
srv='' qemu='' wd=''
trap 'kill $srv $qemu $wd 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$work/console" /tmp/nic-console.txt; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/server.py" <<'PY'
import socket, sys, time
rate = float(sys.argv[2]) * 1e6  # bytes per second, 0 = unpaced
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(300)
payload = b"x" * 1472
while True:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        break
    if data.startswith(b"FLOOD "):
        start = time.monotonic()
        for i in range(int(data.split()[1])):
            s.sendto(payload, addr)
            if rate and i % 16 == 15:
                ahead = start + (i + 1) * len(payload) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    else:
        s.sendto(data, addr)
PY
python3 "$work/server.py" "$port" "$FLOOD_RATE" & srv=$!
echo "floods: $FLOOD_N datagrams of 1472 bytes each, paced at $FLOOD_RATE MB/s (0 = unpaced)"
go run ./linker/cmd/netipl-link -loader ./tests/nic/nicprobe -arg -n=200 -arg "-raw-flood=$FLOOD_N" \
  -arg "-flood=$FLOOD_N" -arg -idle=10s -arg "-peer=10.0.2.2:$port" -o "$work/nic.img" || exit 1
qemu-system-s390x -M s390-ccw-virtio -m 256 -nographic -no-reboot -action panic=exit-failure \
  -kernel "$work/nic.img" -netdev user,id=n0 -device virtio-net-ccw,netdev=n0 >"$work/console" 2>&1 </dev/null &
qemu=$!
(sleep 300; kill $qemu 2>/dev/null) >/dev/null 2>&1 &
wd=$!
cpu() { awk '{print $14 + $15}' "/proc/$qemu/stat"; }
wait_for() { for _ in $(seq 3000); do grep -q "$1" "$work/console" && return 0; kill -0 $qemu 2>/dev/null || return 1; sleep 0.1; done; return 1; }
idle=''
if wait_for 'IDLE: start'; then
  sleep 1 # the guest blocks for 10 s; sample 7 s of it
  c0=$(cpu) t0=$(date +%s.%N)
  sleep 7
  c1=$(cpu) t1=$(date +%s.%N)
  idle=$(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f", 100 * c / hz / (t1 - t0) }')
  echo "RESULT: guest_idle_host_cpu_percent=$idle (qemu user+sys over 7 s while the guest blocks on a socket)"
fi
wait $qemu
tr -d '\r' <"$work/console" | grep -E '^(RESULT|FAIL|SUMMARY)' | sed 's/^RESULT: /RESULT: guest_slirp_/'
val() { tr -d '\r' <"$work/console" | grep -oE "(^| )$1=[0-9.]*" | head -1 | cut -d= -f2; }
bar() {
  awk -v name="$1" -v v="$2" -v b="$3" -v op="$4" 'BEGIN {
    if (v == "") { print "BAR: " name ": NOT MEASURED"; exit }
    ok = (op == ">=") ? v + 0 >= b : v + 0 <= b
    printf "BAR: %s = %s (want %s %s): %s\n", name, v, op, b, ok ? "met" : "NOT met" }'
}
bar "bulk UDP into metal's tap, MB/s" "$(val raw_flood_MBps)" 40 ">="
bar "bulk UDP through gVisor into a socket, MB/s" "$(val flood_MBps)" 40 ">="
bar "idle host CPU, %" "$idle" 10 "<="
