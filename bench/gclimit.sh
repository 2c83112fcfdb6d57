#!/usr/bin/env bash
# The GOGC 800 + RAM/8 soft memory limit of loader/flow.go (tuneGC) against GOGC 100 when the
# loader buffers payload pieces that overlap netipl's own memory (boot.Mem, live noscan heap):
# a 512 MiB guest (limit 64 MiB), 12 MiB of pointerful live heap, 200 MiB of per-packet garbage
# (a ~600 MB transfer at the loader's ~0.3 MiB of garbage per MB), one CPU; on the host and,
# if qemu-s390x is installed, big-endian under emulation. Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gclimit" ./bench/gclimit
GOOS=linux GOARCH=s390x go build -o "$tmp/gclimit.s390x" ./bench/gclimit
for b in 0 20 40 56; do
  GOMAXPROCS=1 "$tmp/gclimit" -buffered $b -gogc 100
  GOMAXPROCS=1 "$tmp/gclimit" -buffered $b -gogc 800 -limit 64
done
if command -v qemu-s390x >/dev/null; then
  echo "qemu-s390x:"
  for b in 0 40 56; do
    GOMAXPROCS=1 qemu-s390x "$tmp/gclimit.s390x" -buffered $b -gogc 100
    GOMAXPROCS=1 qemu-s390x "$tmp/gclimit.s390x" -buffered $b -gogc 800 -limit 64
  done
fi
