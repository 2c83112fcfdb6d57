#!/usr/bin/env python3
"""bench/notdirty.py: per run, the guest stores that took QEMU TCG's slow self-modifying-code path.

Under TCG a guest page that holds translated code (TBs) sends every store through notdirty_write
until its last TB is gone; docs/memory.md ("Frames are scrubbed with plain stores") explains how
such pages used to stay slow for a whole boot. `TRACE=DIR bash bench/httpab.sh IMG...` keeps QEMU's
trace of those stores per run (DIR/<image>-<round>.log); this script prints, for each log, the
number of slow stores, of pages they hit, of pages released (their last TB gone), and the busiest
pages with their guest-physical address (RAM end - 2 MiB is QEMU's BIOS in the drop-in mode):

  TRACE=/tmp/nd ROUNDS=10 bash bench/httpab.sh A.img B.img
  python3 bench/notdirty.py /tmp/nd [TOP]
"""
import collections
import glob
import os
import re
import sys

WRITE = re.compile(r"memory_notdirty_write_access 0x[0-9a-f]+ ram_addr (0x[0-9a-f]+) size")
RELEASE = re.compile(r"memory_notdirty_set_dirty (0x[0-9a-f]+)")


def summarize(path):
    writes, released = collections.Counter(), set()
    with open(path, errors="replace") as f:
        for line in f:
            m = WRITE.search(line)
            if m:
                writes[int(m.group(1), 16) >> 12] += 1
                continue
            m = RELEASE.search(line)
            if m:
                released.add(int(m.group(1), 16) >> 12)
    return writes, released


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: python3 bench/notdirty.py DIR [TOP]")
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    logs = sorted(glob.glob(os.path.join(sys.argv[1], "*.log")),
                  key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p)])
    if not logs:
        sys.exit("notdirty: no *.log in %s (run bench/httpab.sh with TRACE=DIR)" % sys.argv[1])
    for path in logs:
        writes, released = summarize(path)
        busiest = ", ".join("0x%x %d%s" % (pg << 12, n, "" if pg in released else " kept")
                            for pg, n in writes.most_common(top))
        print("%s: %d slow stores on %d pages, %d released; busiest: %s" % (
            os.path.basename(path)[:-4], sum(writes.values()), len(writes), len(released), busiest))


if __name__ == "__main__":
    main()
