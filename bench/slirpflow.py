#!/usr/bin/env python3
"""bench/slirpflow.py: what a TCP download through QEMU's slirp looked like on the wire.

Reads a pcap that QEMU's filter-dump wrote (-object filter-dump,id=f1,netdev=n0,file=F,maxlen=128),
takes the TCP flow that carried the most payload, and prints: data frames and the guest's frames
(ACKs, window updates) per burst, the windows the guest announced, how far each ACK moved, how
much was unacknowledged when the guest ACKed, slirp's reaction time (guest frame -> next data
frame) and the guest's (last data frame of a run -> its frame). Timestamps are QEMU's main
thread's, so they include neither the guest's nor slirp's waits for the CPU.

  python3 bench/slirpflow.py dump.pcap
"""
import collections
import struct
import sys


def frames(path):
    with open(path, "rb") as f:
        f.read(24)
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            ts, us, incl, _ = struct.unpack("<IIII", h)
            yield ts + us / 1e6, f.read(incl)


def tcp(d):
    """(sport, dport, seq, ack, flags, window, payload length) of an IPv4/TCP frame, or None."""
    if len(d) < 54 or d[12:14] != b"\x08\x00" or d[23] != 6:
        return None
    ihl = (d[14] & 15) * 4
    t = 14 + ihl
    sp, dp, seq, ack, off, fl, win = struct.unpack(">HHIIBBH", d[t:t + 16])
    total = struct.unpack(">H", d[16:18])[0]
    return sp, dp, seq, ack, fl, win, total - ihl - (off >> 4) * 4


def pct(xs, p):
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main(path):
    pk = [(ts, tcp(d)) for ts, d in frames(path)]
    pk = [(ts, p) for ts, p in pk if p]
    flows = collections.Counter()
    for _, p in pk:
        flows[(p[0], p[1])] += p[6]
    if not flows:
        sys.exit("slirpflow: no TCP payload in " + path)
    sport, dport = flows.most_common(1)[0][0]
    ev = []  # (time, 'd' data from the server | 'g' frame from the guest, fields)
    for ts, p in pk:
        if (p[0], p[1]) == (sport, dport) and p[6] > 0:
            ev.append((ts, "d", p))
        elif (p[0], p[1]) == (dport, sport):
            ev.append((ts, "g", p))
    data = [p for _, k, p in ev if k == "d"]
    guest = [p for _, k, p in ev if k == "g"]
    span = ev[-1][0] - ev[0][0]
    total = sum(p[6] for p in data)
    print(f"flow {sport}->{dport}: {len(data)} data frames, {total} bytes in {span:.3f} s ({total / span / 1e6:.1f} MB/s on the wire)")
    print(f"guest frames: {len(guest)} ({len(data) / max(1, len(guest)):.1f} data frames per guest frame)")
    print("guest windows:", collections.Counter(p[5] for p in guest).most_common(4))
    mss = collections.Counter(p[6] for p in data).most_common(1)[0][0]
    runs, moved, unacked, react, work = collections.Counter(), collections.Counter(), [], [], []
    run, hi, last_ack = 0, 0, None
    for i, (ts, k, p) in enumerate(ev):
        if k == "d":
            run += 1
            hi = max(hi, (p[2] + p[6]) & 0xFFFFFFFF)
            if i and ev[i - 1][1] == "g":
                react.append(ts - ev[i - 1][0])
            continue
        runs[run] += 1
        run = 0
        if last_ack is not None:
            moved[((p[3] - last_ack) & 0xFFFFFFFF) // mss] += 1
        last_ack = p[3]
        unacked.append((hi - p[3]) & 0xFFFFFFFF)
        if i and ev[i - 1][1] == "d":
            work.append(ts - ev[i - 1][0])
    top = lambda c: ", ".join(f"{k}: {v}" for k, v in sorted(c.most_common(8)))
    print("data frames between guest frames (count: times):", top(runs))
    print(f"ACK advance in {mss}-byte segments (count: times):", top(moved))
    unacked.sort()
    react.sort()
    work.sort()
    print(f"unacknowledged bytes when the guest sent a frame: p10 {pct(unacked, .1)} p50 {pct(unacked, .5)} p90 {pct(unacked, .9)}")
    if react:
        print(f"guest frame -> next data frame (slirp): p50 {pct(react, .5) * 1e6:.0f} us, p90 {pct(react, .9) * 1e6:.0f} us")
    if work:
        print(f"last data frame -> guest frame (guest): p50 {pct(work, .5) * 1e6:.0f} us, p90 {pct(work, .9) * 1e6:.0f} us")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
