#!/usr/bin/env bash
# bench/metal.sh — the metal bars, measured under qemu-system-s390x (TCG) on this machine:
#   1. QEMU start → first line printed by main() of a program on metal (-kernel; bar ≤ 0.25 s), and
#      QEMU start → "Network boot starting..." for netipl's default loader and for QEMU's own
#      s390-netboot.img (netboot_fw mode), median of RUNS runs;
#   2. host CPU of a guest idle in time.Sleep(5s), % of one core (QEMU's utime+stime between the
#      guest's "idle start" and "idle end" lines; bar ≤ 10 %);
#   3. MemFree seen by the hello program in a 128 MiB guest;
#   4. one getpid round trip in ns, timed inside the guest with time.Now() over 1e5 calls.
# It builds the images it needs under build/bench/ (netipl-link), runs QEMU through
# tests/qemu/cmd/qemu-run, and prints a table. Usage: bash bench/metal.sh [RUNS=5]
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
out=build/bench
mkdir -p "$out"
tool="$out/qemu-run"
go build -o "$tool" ./tests/qemu/cmd/qemu-run || { echo "metal.sh: cannot build qemu-run"; exit 1; }
command -v qemu-system-s390x >/dev/null || { echo "metal.sh: qemu-system-s390x not installed"; exit 1; }

have_linker=0
ls linker/cmd/netipl-link/*.go >/dev/null 2>&1 && have_linker=1

# image NAME PKG [netipl-link flags...]: build $out/NAME.img; prints nothing, returns non-zero on failure.
image() {
  local name=$1 pkg=$2; shift 2
  [ $have_linker = 1 ] || return 1
  go run ./linker/cmd/netipl-link -loader "$pkg" -o "$out/$name.img" "$@" >"$out/$name.log" 2>&1 ||
    { echo "metal.sh: building $name.img failed, see $out/$name.log" >&2; return 1; }
}

# median_at ARGS...: run qemu-run with one -mark, print the median time of that mark, or "n/a".
median_at() {
  "$tool" -runs "$RUNS" -timeout 60s "$@" | awk '/^median: mark 0/ {print $5; found=1} END {if (!found) print "n/a"}'
}

declare -A val
val[hello_kernel]=n/a; val[nb_fw]=n/a; val[nb_kernel]=n/a; val[idle]=n/a; val[memfree]=n/a; val[getpid]=n/a

# 1. Start-up times.
val[qemu_fw]=$(median_at -mode netboot_fw -image /usr/share/qemu/s390-netboot.img \
  -mark '^Network boot starting' -stop '^Network boot starting')
if image hello ./tests/metal/hello; then
  val[hello_kernel]=$(median_at -mode kernel -image "$out/hello.img" -m 128 \
    -mark '^hello: main\(\) reached' -stop '^hello: main\(\) reached')
  # 3. MemFree in a 128 MiB guest.
  val[memfree]=$("$tool" -mode kernel -image "$out/hello.img" -m 128 -console -timeout 60s |
    awk '/^console: hello: MemTotal:/ {print $7 " kB of " $4 " kB"; found=1} END {if (!found) print "n/a"}')
fi
if [ -d loader ] && image netipl ./loader; then
  val[nb_fw]=$(median_at -mode netboot_fw -image "$out/netipl.img" \
    -mark '^Network boot starting' -stop '^Network boot starting')
  val[nb_kernel]=$(median_at -mode kernel -nic -image "$out/netipl.img" \
    -mark '^Network boot starting' -stop '^Network boot starting')
fi

# 2. Idle CPU.
if image bench-idle ./tests/metal/bench -arg -getpid=0 -arg -idle=5s; then
  val[idle]=$("$tool" -mode kernel -image "$out/bench-idle.img" -m 256 -timeout 120s \
    -mark '^bench: idle start' -mark '^bench: idle end' |
    awk '/^run 0: mark 0 at/ {a0=$6; c0=$8} /^run 0: mark 1 at/ {a1=$6; c1=$8; ok=1}
         END {if (ok && a1 > a0) printf "%.1f %% (%.2f s CPU in %.2f s, 10 ms ticks)\n", 100*(c1-c0)/(a1-a0), c1-c0, a1-a0; else print "n/a"}')
fi

# 4. getpid round trip (median of 3 guest-timed runs of 1e5 calls).
if image bench-getpid ./tests/metal/bench -arg -getpid=100000; then
  val[getpid]=$("$tool" -mode kernel -image "$out/bench-getpid.img" -m 256 -runs 3 -console -timeout 120s |
    awk '/^console: bench: getpid [0-9]+ iterations:/ {print $6}' | sort -n |
    awk '{v[n++]=$1} END {if (n == 0) print "n/a"; else print v[int((n-1)/2)] " ns"}')
fi

note=""
[ $have_linker = 1 ] || note=" (linker not in the tree yet: netipl columns n/a)"
echo "metal bench, qemu-system-s390x $(qemu-system-s390x --version | awk 'NR==1 {print $4}') TCG, $(nproc) host cores, median of $RUNS runs$note"
printf '%-58s %-36s %s\n' "measurement" "netipl" "QEMU s390-netboot.img"
printf '%-58s %-36s %s\n' "QEMU start -> first line of main() (-kernel, hello) [s]" "${val[hello_kernel]}" "-"
printf '%-58s %-36s %s\n' "QEMU start -> 'Network boot starting...' (netboot_fw) [s]" "${val[nb_fw]}" "${val[qemu_fw]}"
printf '%-58s %-36s %s\n' "QEMU start -> 'Network boot starting...' (-kernel) [s]" "${val[nb_kernel]}" "-"
printf '%-58s %-36s %s\n' "host CPU of a guest in time.Sleep(5s)" "${val[idle]}" "-"
printf '%-58s %-36s %s\n' "MemFree seen by hello in a 128 MiB guest" "${val[memfree]}" "-"
printf '%-58s %-36s %s\n' "getpid round trip (guest time.Now, 1e5 calls)" "${val[getpid]}" "-"
