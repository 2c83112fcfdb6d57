#!/usr/bin/env bash
# Boots build/netipl.img through libvirt with the domain and network XML files beside this script
# and checks netipl's console lines up to the Debian kernel's initrd marker.
#
#   sudo bash tests/libvirt/run.sh            # every case: dropin standalone slirp fail
#   sudo bash tests/libvirt/run.sh dropin     # one or more cases by name
#
# Cases (each one defines and starts a domain, reads its console log, undefines it):
#   dropin      domain-dropin.xml: -global s390-ipl.netboot_fw + NIC with <boot order='1'/>, libvirt network
#   standalone  domain-standalone.xml: <os><kernel>netipl.img</kernel>, libvirt network
#   slirp       domain-slirp.xml: drop-in, QEMU user-mode network through <qemu:commandline>
#   fail        domain-dropin.xml against a config naming a missing kernel: the reason line, then
#               "Failed to load OS from network", and the domain stops by itself (<on_crash>destroy)
#
# Root only (libvirt's system daemon, a bridge, dnsmasq). On Debian 12 it installs what it needs
# (libvirt-daemon-system and friends, without systemd when the machine has none). When no libvirt
# daemon answers on qemu:///system (a container without systemd), it starts virtlogd and libvirtd
# by hand and stops them at the end. The network (netipl-test, bridge virbr-nipltst,
# 192.168.233.0/24, isolated) and the domains (netipl-test-*) are removed at the end.
# Checked on this project's Debian 12 container and in a fresh debootstrap --variant=minbase
# bookworm chroot (there libvirt's per-domain mount namespace cannot work, / being no mount point:
# set namespaces = [ ] in /etc/libvirt/qemu.conf). Not part of make test: it needs root and a
# daemon, and takes ~30 s (QEMU TCG).
# Environment: IMG (default build/netipl.img), TIMEOUT per boot in seconds (default 180).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
here=$repo/tests/libvirt
img=${IMG:-$repo/build/netipl.img}
timeout_s=${TIMEOUT:-180}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(dropin standalone slirp fail)
for c in "${cases[@]}"; do
  case $c in dropin | standalone | slirp | fail) ;; *) echo "libvirt: unknown case $c (dropin standalone slirp fail)" >&2; exit 2 ;; esac
done

if [ "$(id -u)" != 0 ]; then
  echo "libvirt: SKIP: needs root (libvirt's system daemon, a bridge and dnsmasq); run: sudo bash tests/libvirt/run.sh"
  exit 0
fi

# --- packages -------------------------------------------------------------------------------
need=()
want_cmd() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want_cmd qemu-system-s390x qemu-system-misc
want_cmd virsh libvirt-clients
want_cmd libvirtd libvirt-daemon
want_cmd xmllint libxml2-utils
want_cmd dnsmasq dnsmasq-base
want_cmd iptables iptables
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
  ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 || need+=(libvirt-daemon-driver-qemu)
# libvirt-daemon-system: the libvirt-qemu/libvirt-dnsmasq users, /etc/libvirt/qemu.conf.
dpkg -s libvirt-daemon-system >/dev/null 2>&1 || need+=(libvirt-daemon-system)
if [ ${#need[@]} -gt 0 ]; then
  # Without systemd, the sysv flavour keeps apt from pulling systemd in as the init system.
  [ -d /run/systemd/system ] || need+=(libvirt-daemon-system-sysv)
  echo "libvirt: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- inputs ---------------------------------------------------------------------------------
if [ ! -s "$img" ]; then
  [ -z "${IMG:-}" ] || { echo "libvirt: IMG=$img missing" >&2; exit 1; }
  echo "libvirt: $img missing: make image"
  make image
fi
bash tests/fixtures/fetch.sh >/dev/null
fix=$repo/.cache/fixtures
for f in vmlinuz initrd.gz; do
  [ -s "$fix/$f" ] || { echo "libvirt: $fix/$f missing after tests/fixtures/fetch.sh" >&2; exit 1; }
done

virsh() { command virsh -q -c qemu:///system "$@"; }
net=netipl-test
doms=()
started=()
work=$(mktemp -d /tmp/netipl-libvirt.XXXXXX)

cleanup() {
  set +e
  for d in "${doms[@]}"; do
    virsh destroy "$d" >/dev/null 2>&1
    virsh undefine "$d" >/dev/null 2>&1
  done
  virsh net-destroy "$net" >/dev/null 2>&1
  virsh net-undefine "$net" >/dev/null 2>&1
  # Daemons this script started (its own children), newest first.
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    kill "${started[i]}" 2>/dev/null
    wait "${started[i]}" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# --- daemon ---------------------------------------------------------------------------------
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if virsh uri >/dev/null 2>&1; then
  echo "libvirt: using the libvirt daemon already running"
else
  # No systemd socket activation here: start the two daemons QEMU domains need, as children
  # of this shell (not --daemon) so that they are reaped when stopped.
  if ! alive /run/virtlogd.pid; then
    virtlogd >"$work/virtlogd.log" 2>&1 &
    started+=($!)
  fi
  if ! alive /run/libvirtd.pid; then
    libvirtd >"$work/libvirtd.log" 2>&1 &
    started+=($!)
  fi
  for _ in $(seq 1 100); do virsh uri >/dev/null 2>&1 && break; sleep 0.1; done
  if ! virsh uri >/dev/null; then
    echo "libvirt: libvirtd did not answer on qemu:///system:" >&2
    tail -5 "$work"/*.log >&2
    exit 1
  fi
  echo "libvirt: started virtlogd and libvirtd by hand (no systemd); stopped again at the end"
fi
# (virsh version also asks for the host arch's emulator, absent on a host with only qemu-system-s390x)
echo "libvirt: $(libvirtd --version), $(qemu-system-s390x --version | head -1)"

# --- files ----------------------------------------------------------------------------------
# QEMU runs as libvirt-qemu and dnsmasq as libvirt-dnsmasq: everything must be world-readable.
chmod 755 "$work"
mkdir -p "$work/tftp/pxelinux.cfg"
cp "$img" "$work/netipl.img"
cp "$fix/vmlinuz" "$work/tftp/kernel.img"
cp "$fix/initrd.gz" "$work/tftp/initrd.gz"
write_cfg() { # kernel file name
  # "# pxelinux" on the first line: a boot file is read as a config only with it (as QEMU's).
  cat >"$work/tftp/pxelinux.cfg/default" <<CFG
# pxelinux
DEFAULT debian
LABEL debian
  KERNEL $1
  INITRD initrd.gz
  APPEND console=ttysclp0 netipl.libvirt=1
CFG
}
chmod -R a+rX "$work"

# The XML files as documented, with this run's paths and names.
render() { # source xml, domain name, console log -> stdout
  sed -e "s|/var/lib/libvirt/boot/netipl.img|$work/netipl.img|g" \
    -e "s|/srv/tftp|$work/tftp|g" \
    -e "s|<name>netipl-\([a-z]*\)</name>|<name>$2</name>|" \
    -e "s|<source network='netipl'/>|<source network='$net'/>|" \
    -e "s|<log file='[^']*'|<log file='$3'|" "$1"
}

for xml in "$here"/*.xml; do virt-xml-validate "$xml" >/dev/null 2>&1 || { echo "libvirt: $xml does not validate" >&2; exit 1; }; done
echo "libvirt: virt-xml-validate: $(cd "$here" && ls ./*.xml | sed 's|\./||' | paste -sd' ') valid"

# --- network --------------------------------------------------------------------------------
for d in netipl-test-dropin netipl-test-standalone netipl-test-slirp netipl-test-fail; do
  virsh dominfo "$d" >/dev/null 2>&1 && { virsh destroy "$d" >/dev/null 2>&1; virsh undefine "$d" >/dev/null; }
done
virsh net-info "$net" >/dev/null 2>&1 && { virsh net-destroy "$net" >/dev/null 2>&1; virsh net-undefine "$net" >/dev/null; }
sed -e "s|<name>netipl</name>|<name>$net</name>|" -e "s|virbr-netipl|virbr-nipltst|" \
  -e "s|/srv/tftp|$work/tftp|" "$here/network.xml" >"$work/network.xml"
virsh net-define "$work/network.xml" >/dev/null
virsh net-start "$net" >/dev/null
echo "libvirt: network $net up (bridge virbr-nipltst, dnsmasq: DHCP + TFTP root $work/tftp)"

# --- cases ----------------------------------------------------------------------------------
fails=0
run_case() { # case name
  local c=$1 src dom log want
  case $c in
    dropin) src=domain-dropin.xml want=ok ;;
    standalone) src=domain-standalone.xml want=ok ;;
    slirp) src=domain-slirp.xml want=ok ;;
    fail) src=domain-dropin.xml want=fail ;;
  esac
  if [ "$want" = fail ]; then write_cfg nosuch.img; else write_cfg kernel.img; fi
  chmod a+r "$work/tftp/pxelinux.cfg/default"
  dom=netipl-test-$c
  log=$work/console-$c.log
  render "$here/$src" "$dom" "$log" >"$work/$c.xml"
  echo
  echo "libvirt: == $c ($src) =="
  doms+=("$dom")
  virsh define "$work/$c.xml" >/dev/null
  local t0=$SECONDS
  virsh start "$dom" >/dev/null
  local qpid
  qpid=$(cat "/run/libvirt/qemu/$dom.pid" 2>/dev/null || true)
  [ -n "$qpid" ] && echo "libvirt: QEMU (pid $qpid) runs as user $(stat -c %U "/proc/$qpid" 2>/dev/null || echo '?')"
  local result=timeout
  while [ $((SECONDS - t0)) -lt "$timeout_s" ]; do
    if grep -q NETIPL-INITRD-OK "$log" 2>/dev/null; then result=ok; break; fi
    if grep -q 'Failed to load OS from network' "$log" 2>/dev/null; then result=fail; break; fi
    if [ "$(virsh domstate "$dom" 2>/dev/null)" != running ]; then
      result=stopped
      sleep 1 # virtlogd may still be writing the console's last lines
      grep -q 'Failed to load OS from network' "$log" 2>/dev/null && result=fail
      grep -q NETIPL-INITRD-OK "$log" 2>/dev/null && result=ok
      break
    fi
    sleep 1
  done
  local secs=$((SECONDS - t0))
  # When failing, the domain must stop by itself (disabled wait -> guest panicked -> on_crash destroy).
  if [ "$result" = fail ]; then
    for _ in $(seq 1 30); do [ "$(virsh domstate "$dom" 2>/dev/null)" = running ] || break; sleep 1; done
    [ "$(virsh domstate "$dom" 2>/dev/null)" = running ] && result=fail-still-running
  fi
  # The command line libvirt ran: the last one in its log, read only now because virtlogd writes
  # the log asynchronously. virsh domxml-to-native qemu-argv shows the same except the NIC's
  # bootindex, which it drops for <interface type='network'> (libvirt 9.0).
  echo "libvirt: QEMU command line libvirt ran (/var/log/libvirt/qemu/$dom.log), netipl's part:"
  { awk '/starting up libvirt/ { cmd = ""; on = 1; next }
      on { cmd = cmd $0 "\n"; if ($0 !~ /\\$/) on = 0 }
      END { printf "%s", cmd }' "/var/log/libvirt/qemu/$dom.log" | sed 's/ \\$//' |
    grep -E '^/.*qemu-system-s390x$|^-(machine|accel|m|kernel|boot|global|netdev|device) ' |
    grep -v sclpconsole | sed 's/^/    /'; } || true
  echo "libvirt: console ($log), netipl's lines:"
  sed -n '/LOADPARM\|Network boot/,/starting kernel\|Failed to load/p' "$log" | sed 's/^/    /'
  grep -E 'NETIPL-INITRD-OK|^CMDLINE:' "$log" | sed 's/^/    /' || true
  virsh destroy "$dom" >/dev/null 2>&1 || true
  virsh undefine "$dom" >/dev/null
  if [ "$result" = "$want" ]; then
    echo "libvirt: PASS $c ($result after ${secs} s)"
  else
    echo "libvirt: FAIL $c: wanted $want, got $result after ${secs} s (libvirt's log: /var/log/libvirt/qemu/$dom.log)" >&2
    fails=$((fails + 1))
  fi
}
for c in "${cases[@]}"; do run_case "$c"; done
echo
if [ $fails -gt 0 ]; then
  echo "libvirt: $fails of ${#cases[@]} cases failed" >&2
  exit 1
fi
echo "libvirt: all ${#cases[@]} cases passed (${cases[*]})"
