#!/usr/bin/env python3
"""bench/guestprof.py: a sampling profiler for a netipl guest under QEMU TCG, through QEMU's gdbstub.

It stops the vCPU every few milliseconds, reads the PSW address and resumes, then maps the samples
to functions of the loader and of metal (addresses at or above metal's LinkBase, 0x4000000).

  qemu-system-s390x ... -kernel IMG -gdb tcp:127.0.0.1:PORT ...     # the run to profile
  python3 bench/guestprof.py sample PORT SECONDS OUT [INTERVAL_S]   # while it runs
  GOOS=linux GOARCH=s390x CGO_ENABLED=0 go build -trimpath -o loader.elf ./loader
  GOOS=linux GOARCH=s390x CGO_ENABLED=0 go build -trimpath -o metal.elf \
      -ldflags='-E netipl/metal.kentry -T 0x4001000' ./metal/cmd/metal
  python3 bench/guestprof.py report OUT loader.elf metal.elf         # flat profile: functions, packages

Build the image and both ELFs back to back from the same tree (the linker builds them the same way):
with a tree that changed in between, the names are wrong without any warning. Each sample
costs the guest ~0.1 ms, so rates drop by a few per cent while sampling. A stopped vCPU reports
where it is; time the vCPU spends inside QEMU (an I/O instruction or DIAG 500 waiting for the
iothread lock, slirp) lands on the instruction that trapped, e.g. virtio.Machine.Notify;
metal:idleWoke is the enabled wait (nothing to run).
"""
import collections
import re
import socket
import subprocess
import sys
import time


def sample(port, secs, out, interval=0.004):
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("guestprof: no gdbstub on port %d" % port)
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else each packet waits for a delayed ACK
    buf = b""

    def send(data):
        s.sendall(b"$" + data.encode() + b"#%02x" % (sum(data.encode()) & 0xFF))

    def recv():
        nonlocal buf
        while True:
            i = buf.find(b"$")
            j = buf.find(b"#", i) if i >= 0 else -1
            if j >= 0 and len(buf) >= j + 3:
                p, buf = buf[i + 1 : j], buf[j + 3 :]
                s.sendall(b"+")
                return p.decode()
            buf += s.recv(65536)

    s.sendall(b"\x03")
    recv()  # stop reply
    send("QStartNoAckMode")
    recv()
    send("c")
    rows = []
    end = time.time() + secs
    while time.time() < end:
        time.sleep(interval)
        s.sendall(b"\x03")
        while not recv()[:1] in ("T", "S"):
            pass
        send("g")
        g = recv()  # pswm, pswa, r0..r15: 16 hex digits each
        rows.append(g[16:32])
        send("c")
    s.sendall(b"\x03")
    recv()
    send("D")
    with open(out, "w") as f:
        f.write("\n".join(rows) + "\n")
    print("guestprof: %d samples in %s" % (len(rows), out))


def symbolize(elf, addrs):
    if not addrs:
        return {}
    u = sorted(set(addrs))
    out = subprocess.run(["go", "tool", "addr2line", elf], input="".join("0x%s\n" % a for a in u),
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return {a: out[2 * i] for i, a in enumerate(u)}


def package(fn):
    if fn.startswith("metal:"):
        return fn if any(k in fn for k in ("Notify", "idleWoke", "dispatch")) else "metal (other)"
    fn = re.sub(r"\(.*?\)\.", "", fn)
    fn = re.sub(r"\.func\d+.*", "", fn)
    for p in ("gvisor.dev/gvisor/pkg/tcpip/transport/udp", "gvisor.dev/gvisor/pkg/tcpip/transport/tcp",
              "gvisor.dev/gvisor/pkg/tcpip/network", "gvisor.dev/gvisor/pkg/tcpip/stack",
              "gvisor.dev/gvisor/pkg/buffer", "gvisor.dev/gvisor", "internal/runtime", "runtime",
              "sync", "netipl/netstack/", "netipl/netstack", "netipl/"):
        if fn.startswith(p):
            return p + ("*" if p.endswith("/") else "")
    return fn.rsplit(".", 1)[0]


def report(samples, loader, metal):
    addrs = [l.strip() for l in open(samples) if l.strip()]
    lo = [a for a in addrs if int(a, 16) < 0x4000000]
    hi = [a for a in addrs if int(a, 16) >= 0x4000000]
    names = symbolize(loader, lo)
    names.update({a: "metal:" + f for a, f in symbolize(metal, hi).items()})
    n = len(addrs)
    for title, key in (("functions", lambda a: names[a]), ("packages", lambda a: package(names[a]))):
        print("== %s (%d samples)" % (title, n))
        for k, v in collections.Counter(key(a) for a in addrs).most_common(25):
            print("%5.1f%% %5d  %s" % (100 * v / n, v, k))


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "sample":
        sample(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], *(float(x) for x in sys.argv[5:6]))
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
