#!/usr/bin/env python3
"""bench/tbcount.py: what QEMU's TCG has to translate before netipl reaches a point of its boot.

Under TCG the first run of any guest code costs a translation (a few microseconds per translation
block, TB, of ~25 bytes of s390x code), and netipl's start-up is dominated by that: about 20 000 TBs
before DHCP is done, against a few hundred for QEMU's s390-netboot.img (docs/startup.md). This
script runs one boot in netboot_fw mode over slirp with `-d in_asm` (QEMU logs each TB when it
translates it), stops QEMU once the console shows STOP_LINE, and attributes the TBs, in
translation order, to functions of the loader and of metal, up to the first TB of STOP_SYMBOL:

  python3 bench/tbcount.py IMG LOADER_ELF METAL_ELF TFTP_ROOT [STOP_SYMBOL] [STOP_LINE]

LOADER_ELF and METAL_ELF must be the ELFs the image was built from (build them back to back from
the same tree, as for bench/guestprof.py):
  GOOS=linux GOARCH=s390x CGO_ENABLED=0 go build -trimpath -o loader.elf ./loader
  GOOS=linux GOARCH=s390x CGO_ENABLED=0 go build -trimpath -o metal.elf \\
      -ldflags='-E netipl/metal.kentry -T 0x4001000' ./metal/cmd/metal
STOP_SYMBOL defaults to netipl/pxecfg.Discover (the first code after "DHCP ... done"); "-"
counts every TB up to STOP_LINE (e.g. for QEMU's own image, with any two ELFs); STOP_LINE
defaults to "Loading pxelinux.cfg entry". TFTP_ROOT needs a pxelinux.cfg that names an entry
(bench/startup.sh writes one). Prints the TB count per phase (between the first TBs of the
runtime's and the loader's landmarks), per package and the top functions. The counts do not
depend on the machine's load, unlike times: use them to compare two trees.
"""
import bisect
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

PHASES = ["_rt0_s390x_linux", "runtime.schedinit", "runtime.main", "runtime.doInit1", "main.main",
          "main.machineFacts", "netipl/netstack.New", "main.acquire"]


def symbols(elf):
    out = subprocess.run(["go", "tool", "nm", "-n", elf], capture_output=True, text=True, check=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] in "Tt":
            addrs.append(int(f[0], 16))
            names.append(f[2])
    return addrs, names


def run(img, root, stop_line, log):
    cmd = ["qemu-system-s390x", "-M", "s390-ccw-virtio", "-m", "512", "-nographic", "-no-reboot",
           "-d", "in_asm", "-D", log, "-global", "s390-ipl.netboot_fw=" + img,
           "-netdev", "user,id=n0,tftp=%s,bootfile=/" % root, "-device", "virtio-net-ccw,netdev=n0,bootindex=1"]
    q = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    seen = False
    for raw in q.stdout:
        if stop_line in raw.decode(errors="replace"):
            seen = True
            break
        if time.monotonic() > end:
            break
    q.terminate()  # SIGTERM: QEMU flushes its log on the way out
    try:
        q.wait(10)
    except subprocess.TimeoutExpired:
        q.kill()
        q.wait()
    if not seen:
        sys.exit("tbcount: the console never showed %r" % stop_line)


def tb_starts(log):
    starts, first = [], False
    insn = re.compile(r"0x([0-9a-f]+):\s")
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                first = True
            elif first:
                m = insn.match(line)
                if m:
                    starts.append(int(m.group(1), 16))
                    first = False
    return starts


def package(fn):
    if fn.startswith(("metal:", "BIOS", "other")):
        return fn.split(":")[0]
    fn = re.sub(r"\(.*?\)\.", "", fn)
    fn = re.sub(r"\.func\d+.*", "", fn)
    for p in ("gvisor.dev/gvisor/pkg/tcpip", "github.com/insomniacslk/dhcp", "crypto/", "internal/runtime"):
        if fn.startswith(p):
            return p + "*"
    return fn.rsplit(".", 1)[0]


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    img, loader, metal, root = (os.path.abspath(a) for a in sys.argv[1:5])
    stop_sym = sys.argv[5] if len(sys.argv) > 5 else "netipl/pxecfg.Discover"
    stop_line = sys.argv[6] if len(sys.argv) > 6 else "Loading pxelinux.cfg entry"
    la, ln = symbols(loader)
    ma, mn = symbols(metal)

    def name(a):
        if a >= 0x4000000 and a < 0x4000000 + (64 << 20):
            i = bisect.bisect_right(ma, a) - 1
            return "metal:" + mn[i] if i >= 0 else "metal:?"
        if la and la[0] <= a < 0x4000000:
            i = bisect.bisect_right(la, a) - 1
            return ln[i]
        if 0x1f000000 <= a < 0x80000000:
            return "BIOS"
        return "other"

    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "in_asm.log")
        run(img, root, stop_line, log)
        seq = [name(a) for a in tb_starts(log)]
    if stop_sym == "-":
        print("TBs translated before QEMU stopped at %r: %d" % (stop_line, len(seq)))
    elif stop_sym not in seq:
        sys.exit("tbcount: %s never ran" % stop_sym)
    else:
        seq = seq[:seq.index(stop_sym)]
        print("TBs translated before the first TB of %s: %d" % (stop_sym, len(seq)))
    marks = [(seq.index(p), p) for p in PHASES if p in seq] + [(len(seq), stop_sym)]
    prev, prev_name = 0, "QEMU BIOS + metal"
    print("== phases (from the first TB of each landmark)")
    for i, p in sorted(marks):
        print("%6d  %s" % (i - prev, prev_name))
        prev, prev_name = i, p
    for title, key in (("packages", package), ("functions", lambda s: s)):
        c = collections.Counter(key(s) for s in seq)
        print("== %s" % title)
        for k, v in c.most_common(25):
            print("%6d  %s" % (v, k))


if __name__ == "__main__":
    main()
