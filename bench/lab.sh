#!/usr/bin/env bash
# The lab's numbers: the full scenario matrix against QEMU's s390-netboot.img (time bar: <= 10 min
# on 2 cores), the lab's TFTP server throughput through its own stack, and QEMU's image fetching
# a 32 MiB file over slirp and over the lab (bar: lab server >= 1.5x QEMU's image over slirp).
# Usage: bash bench/lab.sh [FIRMWARE]   (FIRMWARE = qemu (default) or a netboot image path)
set -uo pipefail
cd "$(dirname "$0")/.."
fw="${1:-qemu}"
bash tests/fixtures/fetch.sh
go build -o build/netboot-lab ./tests/lab/cmd/netboot-lab || exit 1

echo "== lab TFTP server throughput (in-process gVisor client over the stream link, 32 MiB)"
build/netboot-lab -bench-tftp -bench-size $((32 << 20)) || echo "bench-tftp failed"

echo "== firmware TFTP throughput: QEMU slirp vs the lab (32 MiB bootfile, firmware $fw)"
build/netboot-lab -bench-qemu -firmware "$fw" -bench-size $((32 << 20)) || echo "bench-qemu failed"

echo "== scenario matrix (firmware $fw)"
start=$(date +%s.%N)
build/netboot-lab -firmware "$fw" -scenario all -out build/lab
rc=$?
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "matrix wall time: %.1f s (bar: 600 s)\n", e - s }'
exit $rc
