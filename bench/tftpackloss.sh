#!/usr/bin/env bash
# bench/tftpackloss.sh: TFTP pipelining against a server that counts ACKs (libslirp's rule: every ACK, whatever
# it names, releases the next block) through a proxy that loses client->server ACKs at 0, 1 and 5 %, host
# loopback, 4 MiB per transfer, the loader's settings (Pipeline 48, default timeouts): MB/s and, per transfer,
# ACKs lost, timeouts, restarts and pipeline refills, with the refills off (the client before them) and on.
# It runs `go test -bench PipelineAckLoss ./netstack/tftp`. Without refills the 5 % row takes about 2 minutes.
# Environment: RUNS (default 5) transfers per row with refills on; rows with refills off run once.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
rows() {
  go test -run XX -bench "PipelineAckLoss/refill=$1" -benchtime "$2x" ./netstack/tftp |
    awk '/^Benchmark/ {
      split($1, n, "/"); sub(/-[0-9]+$/, "", n[4]); m = ""
      for (i = 3; i < NF; i++) if ($(i+1) ~ /\/op$/ && $(i+1) != "ns/op") { u = $(i+1); sub(/\/op$/, "", u); m = m sprintf(" %s %s", u, $i) }
      for (i = 3; i < NF; i++) if ($(i+1) == "MB/s") r = $i
      printf "%-13s %-9s %-6s %8s MB/s  %6.2f s/transfer  per transfer:%s\n", n[2], n[3], n[4], r, $3 / 1e9, m
    }'
}
echo "4 MiB from an ACK-counting server, client->server ACKs lost at random; refills on: $runs transfers per row"
rows true "$runs"
echo "refills off (the client before them): 1 transfer per row"
rows false 1
