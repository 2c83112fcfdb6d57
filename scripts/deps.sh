#!/usr/bin/env bash
# Installs what netipl's build, tests and demo need on a fresh Debian 12 machine.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
need=()
want_cmd() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want_cmd qemu-system-s390x qemu-system-misc
want_cmd qemu-s390x qemu-user
want_cmd s390x-linux-gnu-objdump binutils-s390x-linux-gnu
want_cmd in.tftpd tftpd-hpa
want_cmd tftp tftp-hpa
want_cmd dnsmasq dnsmasq-base
want_cmd ip iproute2
want_cmd cpio cpio
want_cmd tcpdump tcpdump
want_cmd make make
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  if ! dpkg --print-foreign-architectures | grep -qx s390x; then
    $sudo dpkg --add-architecture s390x
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# s390x packages (kernel, busybox) are fetched by tests/fixtures/fetch.sh; it needs the foreign arch.
if ! dpkg --print-foreign-architectures | grep -qx s390x; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo dpkg --add-architecture s390x
  $sudo apt-get update -qq
fi
command -v go >/dev/null || { echo "deps: Go 1.26 is required (https://go.dev/dl)" >&2; exit 1; }
