#!/usr/bin/env bash
# bench/nic.sh — numbers for the boot NIC path (docs/nic.md). Prints what it measures; says what it cannot.
#
# 1. Host tap variant (needs root): netstack's gVisor stack over a real Linux tap in a private network
#    namespace, the Linux kernel as the peer (go test -bench Tap ./netstack):
#      - UDP round trip, 64-byte datagrams, 2000 rounds: median and p99 in µs
#      - bulk UDP into the stack: 100 000 unpaced 1472-byte datagrams from the kernel; MB/s received,
#        datagrams lost (tap queue + stack socket buffer) and stack socket-buffer drops
# 2. Guest variant (needs metal's NIC wiring, docs/nic-wiring.patch, and qemu-system-s390x): netipl.img with
#    the NIC probe program (tests/nic/nicprobe or netstack/cmd/nicecho) as the loader under QEMU TCG, slirp, a host UDP echo/flood server on 127.0.0.1:
#      - UDP RTT median/p99 through slirp (200 rounds)
#      - bulk UDP into the guest: FLOOD_N 1472-byte datagrams sent by the host paced at FLOOD_RATE MB/s
#        (default 40, the bar; 0 = unpaced); received count, MB/s
#        and the guest stack's socket-buffer drops. Drops before the device (slirp, QEMU's net queue) are
#        only visible as sent − received.
#      - host CPU of QEMU while the guest blocks 10 s on an idle socket (bar: ≤ 10 %)
# Bars (issue "virtio + netstack link"): RTT reported; bulk ≥ 40 MB/s; idle CPU ≤ 10 %.
set -uo pipefail
cd "$(dirname "$0")/.."
FLOOD_N=${FLOOD_N:-20000}
FLOOD_RATE=${FLOOD_RATE:-40} # MB/s the host paces the flood at (0 = unpaced)

echo "== NIC, host tap variant (gVisor over a Linux tap, kernel peer in a netns)"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "NOT MEASURED: needs root and iproute2 (netns + tap)"
else
  go test -run '^$' -bench 'Tap' -benchtime=1x ./netstack | grep '^Benchmark' |
    sed -E -e 's/^BenchmarkTapUDPRTT\S*\s+[0-9]+\s+[0-9]+ ns\/op\s*/RESULT: host_tap_udp_rtt: /' \
      -e 's/^BenchmarkTapUDPBulkIn\S*\s+[0-9]+\s+[0-9]+ ns\/op\s*/RESULT: host_tap_udp_bulk_in: /' -e 's/\t+/ /g'
fi

echo "== NIC, guest under qemu-system-s390x (TCG) through slirp"
if [ ! -f metal/nic_s390x.go ]; then
  echo "NOT MEASURED: metal does not drive the NIC yet (apply docs/nic-wiring.patch)"
  exit 0
fi
if ! command -v qemu-system-s390x >/dev/null || ! command -v python3 >/dev/null; then
  echo "NOT MEASURED: needs qemu-system-s390x and python3"
  exit 0
fi
work=$(mktemp -d)
trap 'kill $srv $qemu $wd 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/server.py" <<'EOF'
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
EOF
python3 "$work/server.py" "$port" "$FLOOD_RATE" & srv=$!
echo "flood: $FLOOD_N datagrams of 1472 bytes, paced at ${FLOOD_RATE} MB/s (0 = unpaced)"
probe=./tests/nic/nicprobe # the guest program (docs/nic-wiring.patch ships it as netstack/cmd/nicecho)
[ -d "$probe" ] || probe=./netstack/cmd/nicecho
go run ./linker/cmd/netipl-link -loader "$probe" -arg -n=200 -arg "-flood=$FLOOD_N" \
  -arg -idle=10s -arg "-peer=10.0.2.2:$port" -o "$work/nic.img" || exit 1
qemu-system-s390x -M s390-ccw-virtio -m 256 -nographic -no-reboot -action panic=exit-failure \
  -kernel "$work/nic.img" -netdev user,id=n0 -device virtio-net-ccw,netdev=n0 >"$work/console" 2>&1 </dev/null & qemu=$!
(sleep 300; kill $qemu 2>/dev/null) & wd=$!
cpu() { awk '{print $14 + $15}' "/proc/$qemu/stat"; }
wait_for() { for _ in $(seq 3000); do grep -q "$1" "$work/console" && return 0; kill -0 $qemu 2>/dev/null || return 1; sleep 0.1; done; return 1; }
if wait_for 'IDLE: start'; then
  sleep 1 # the guest blocks for 10 s; sample 7 s of it
  c0=$(cpu); t0=$(date +%s.%N)
  sleep 7
  c1=$(cpu); t1=$(date +%s.%N)
  hz=$(getconf CLK_TCK)
  awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "RESULT: guest_idle_host_cpu_percent=%.1f (qemu user+sys over %.1f s)\n", 100 * c / hz / (t1 - t0), t1 - t0 }'
fi
wait $qemu
grep -E '^(RESULT|FAIL|SUMMARY)' "$work/console" | sed 's/^RESULT: /RESULT: guest_slirp_/'
