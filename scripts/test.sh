#!/usr/bin/env bash
# The whole test suite: formatting, vet for both architectures, host tests (which include the
# QEMU end-to-end tests under tests/), and cross tests of portable packages under qemu-s390x.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

echo "== go vet (amd64, s390x)"
go vet ./...
GOOS=linux GOARCH=s390x go vet ./...

echo "== go test (host; QEMU end-to-end tests included)"
go test -timeout 25m ./...

echo "== go test (s390x, big-endian, under qemu-s390x)"
cross=()
for p in pxecfg virtio boot netstack/tftp; do [ -d "$p" ] && cross+=("./$p/..."); done
cross+=(./metal/internal/phys ./internal/movelong) # phys.Scrub and movelong.Copy are assembly
cross+=(./netstack) # the link's fast paths and TCP coalescer parse and build headers byte by byte
if [ ${#cross[@]} -gt 0 ]; then
  GOOS=linux GOARCH=s390x go test -exec qemu-s390x -timeout 10m "${cross[@]}"
fi
