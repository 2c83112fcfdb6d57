#!/usr/bin/env bash
# Runs every benchmark script under bench/ in turn; each prints its own numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
for s in bench/metal.sh bench/startup.sh bench/nic.sh bench/protocols.sh bench/lab.sh bench/boot.sh bench/httpceiling.sh; do
  [ -x "$s" ] || [ -f "$s" ] || continue
  echo "== $s"
  bash "$s" || echo "$s: failed (exit $?)"
done
