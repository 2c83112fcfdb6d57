// Command torture is an ordinary linux/s390x (or amd64) Go program that exercises what the
// Go runtime needs from the kernel under it: threads and goroutines, futexes and timers,
// epoll-driven sleeps, memory (GC under churn, demand-zero pages, MADV_DONTNEED), SIGSEGV
// delivery (recover from a nil dereference), argv/env, and — on netipl's metal — the
// platform files of docs/abi.md.
//
// It reports the kvm-unit-tests way (style B19), one line per check, then a summary and
// an explicit status line, and exits with that status:
//
//	PASS: <group>: <what>
//	FAIL: <group>: <what> (<details>)
//	SKIP: <group>: <what> (<reason>)
//	SUMMARY: <N> tests, <M> failures, <K> skipped
//	EXIT: STATUS=<0|1>
//
// Values only the host knows (RAM size, UUID, IPL device, the digest of the generated
// buffer, the expected argv/env) come in as flags; the PASS lines print what the program
// saw so the host test can check them again. With -panic the program instead dies of an
// uncaught panic (goroutine trace, exit status 2).
//
// It passes natively on linux/amd64, under qemu-s390x, and is meant to pass on metal under
// qemu-system-s390x (tests/metal).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"netipl/tests/metal/pattern"
)

var (
	platform   = flag.String("platform", "", "check the platform files of this kernel: \"metal\" checks /proc/meminfo, /sys/firmware/ipl/device, /sys/hypervisor/uuid; empty skips them")
	memMiB     = flag.Int("mem-mib", 0, "expected RAM in MiB (MemTotal in /proc/meminfo); 0 skips the check")
	uuid       = flag.String("uuid", "", "expected VM UUID (/sys/hypervisor/uuid); empty skips the check")
	iplDevice  = flag.String("ipl-device", "", "expected IPL device bus id (/sys/firmware/ipl/device), e.g. 0.0.0007; empty skips the check")
	iplType    = flag.String("ipl-type", "", "expected /sys/firmware/ipl/ipl_type, e.g. ccw; empty skips the check")
	loadparm   = flag.String("loadparm", "", "expected /sys/firmware/ipl/loadparm; empty skips the check")
	wantSHA    = flag.String("sha256", "", "expected hex sha256 of pattern.Bytes(-sha-mib MiB, -sha-seed)")
	shaMiB     = flag.Int("sha-mib", 8, "size in MiB of the hashed buffer")
	shaSeed    = flag.Uint64("sha-seed", 1, "seed of the hashed buffer")
	wantArgs   = flag.String("want-args", "", "expected positional arguments, joined by '|'; empty skips the check")
	wantEnv    = flag.String("want-env", "", "an expected environment entry KEY=VALUE; empty skips the check")
	goroutines = flag.Int("goroutines", 10000, "live goroutines to create")
	churnMiB   = flag.Int("churn-mib", 320, "MiB to allocate and drop in the GC test")
	heapMiB    = flag.Int("max-heap-mib", 160, "largest heap (HeapSys) allowed during the GC test")
	panicMode  = flag.String("panic", "", "instead of the tests: die of an uncaught panic; \"value\" panics with a string, \"nil\" dereferences nil in a goroutine")
	only       = flag.String("only", "", "run only the groups whose name starts with one of these comma-separated prefixes (for debugging)")
)

// results counts what has been reported.
type results struct {
	pass, fail, skip int
}

var res results

func pass(format string, args ...any) {
	res.pass++
	fmt.Printf("PASS: "+format+"\n", args...)
}

func fail(what string, details string, args ...any) {
	res.fail++
	fmt.Printf("FAIL: %s (%s)\n", what, fmt.Sprintf(details, args...))
}

func skip(what, reason string) {
	res.skip++
	fmt.Printf("SKIP: %s (%s)\n", what, reason)
}

// check reports one check: PASS with what, or FAIL with what and err.
func check(what string, err error) {
	if err != nil {
		fail(what, "%v", err)
		return
	}
	pass("%s", what)
}

// group is one named set of checks.
type group struct {
	name string
	run  func()
}

func main() {
	flag.Parse()
	if *panicMode != "" {
		deliberatePanic(*panicMode)
		return
	}
	fmt.Printf("torture: start %s/%s, GOMAXPROCS %d, NumCPU %d, %d args\n",
		runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), len(os.Args))
	groups := []group{
		{"args", testArgs},
		{"env", testEnv},
		{"goroutines", testGoroutines},
		{"threads", testThreads},
		{"preempt", testPreempt},
		{"chan", testChannels},
		{"select", testSelect},
		{"time", testTime},
		{"maps", testMaps},
		{"recover", testRecover},
		{"crypto", testSHA256},
		{"gc", testGC},
		{"memory", testMemoryReturn},
		{"platform", testPlatform},
	}
	for _, g := range groups {
		if *only != "" && !slices.ContainsFunc(strings.Split(*only, ","), func(p string) bool { return strings.HasPrefix(g.name, p) }) {
			continue
		}
		// A marker, not a tag: if the guest hangs, the console shows where.
		fmt.Printf("== %s\n", g.name)
		g.run()
	}
	status := 0
	if res.fail > 0 {
		status = 1
	}
	fmt.Printf("SUMMARY: %d tests, %d failures, %d skipped\n", res.pass+res.fail, res.fail, res.skip)
	fmt.Printf("EXIT: STATUS=%d\n", status)
	os.Exit(status)
}

func testArgs() {
	if len(os.Args) == 0 || os.Args[0] == "" {
		fail("args: os.Args[0]", "empty argv[0]: %q", os.Args)
	} else {
		pass("args: os.Args[0] = %q", os.Args[0])
	}
	if *wantArgs == "" {
		skip("args: positional", "no -want-args given")
		return
	}
	got := strings.Join(flag.Args(), "|")
	if got != *wantArgs {
		fail("args: positional", "got %q, want %q", flag.Args(), strings.Split(*wantArgs, "|"))
		return
	}
	pass("args: positional = %q", flag.Args())
}

func testEnv() {
	if *wantEnv == "" {
		skip("env: entry", "no -want-env given")
		return
	}
	key, val, ok := strings.Cut(*wantEnv, "=")
	if !ok {
		fail("env: entry", "-want-env %q has no '='", *wantEnv)
		return
	}
	got, found := os.LookupEnv(key)
	switch {
	case !found:
		fail("env: "+key, "not set; environment has %d entries: %q", len(os.Environ()), os.Environ())
	case got != val:
		fail("env: "+key, "= %q, want %q", got, val)
	default:
		pass("env: %s = %q", key, got)
	}
	if !slices.Contains(os.Environ(), *wantEnv) {
		fail("env: os.Environ", "%q missing from %q", *wantEnv, os.Environ())
	} else {
		pass("env: os.Environ has %d entries", len(os.Environ()))
	}
}

func testGoroutines() {
	n := *goroutines
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	var started, done sync.WaitGroup
	var sum atomic.Int64
	started.Add(n)
	done.Add(n)
	t0 := time.Now()
	for i := range n {
		go func() {
			defer done.Done()
			started.Done()
			<-release
			sum.Add(int64(i))
		}()
	}
	started.Wait()
	live := runtime.NumGoroutine()
	if live < before+n {
		fail(fmt.Sprintf("goroutines: %d live", n), "NumGoroutine = %d, want ≥ %d", live, before+n)
	} else {
		pass("goroutines: %d live (NumGoroutine %d, started in %v)", n, live, time.Since(t0).Round(time.Millisecond))
	}
	close(release)
	done.Wait()
	want := int64(n) * int64(n-1) / 2
	if sum.Load() != want {
		fail("goroutines: all ran after release", "sum of indices %d, want %d", sum.Load(), want)
	} else {
		pass("goroutines: all %d ran after release", n)
	}
	// The exited goroutines are gone (allow a few runtime helpers to come and go).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before+8 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+8 {
		fail("goroutines: exited", "NumGoroutine %d after all returned, was %d", g, before)
	} else {
		pass("goroutines: exited (NumGoroutine %d)", g)
	}
}

// deep recurses n frames deep with some stack per frame, so the stack must grow (and be
// copied) many times.
//
//go:noinline
func deep(n int) int {
	var pad [16]int
	pad[n%16] = n
	if n == 0 {
		return 0
	}
	return deep(n-1) + pad[n%16]%2
}

// testThreads forces OS threads (clone) and their exit: goroutines locked to their thread
// that return without unlocking take the thread down with them (exit).
func testThreads() {
	const n = 16
	for round := range 2 {
		tids := make(chan int, n)
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
				tids <- syscall.Gettid()
				<-release
			}()
		}
		seen := map[int]bool{}
		for range n {
			seen[<-tids] = true
		}
		close(release)
		wg.Wait()
		what := fmt.Sprintf("threads: round %d: %d locked goroutines on distinct OS threads", round+1, n)
		if len(seen) != n {
			fail(what, "%d distinct thread ids: %v", len(seen), seen)
		} else {
			pass("%s", what)
		}
	}
	// Stack growth: one deep recursion and many shallower ones at once.
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := 1000 + g
			if deep(d) != (d+1)/2 {
				bad.Add(1)
			}
		}()
	}
	r := deep(100000)
	wg.Wait()
	if r != 50000 || bad.Load() != 0 {
		fail("threads: stack growth", "deep(100000) = %d, want 50000; %d goroutines got deep(d) != (d+1)/2", r, bad.Load())
	} else {
		pass("threads: stack growth to 100000 frames, 100 goroutines at 1000+ frames")
	}
}

// spin loops at most max times without any call (so without a cooperative preemption
// point) until stop is set, and returns the iterations done.
//
//go:noinline
func spin(stop *atomic.Bool, max int) int {
	i := 0
	for ; i < max && !stop.Load(); i++ {
	}
	return i
}

// testPreempt needs asynchronous preemption (sysmon's SIGURG, delivered with a signal frame):
// with one P, a goroutine spinning without calls must be preempted so that a sleeping
// goroutine can run. The spin is cut into chunks of 2^24 iterations with a call (the time
// check) between them: a goroutine preempted only cooperatively, at that call, sees stop
// at iteration 0 of the next chunk, while an asynchronous preemption lands inside a chunk.
// (A GC during the spin is not timed: with one P and 10 000 dead goroutines to scan it
// takes seconds even on Linux.)
func testPreempt() {
	const (
		chunk = 1 << 24
		limit = 10 * time.Second
		what  = "preempt: a loop without calls yields to a 20ms timer"
	)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	var stop atomic.Bool
	start := time.Now()
	go func() {
		time.Sleep(20 * time.Millisecond)
		stop.Store(true)
	}()
	chunks, at := 0, -1
	for time.Since(start) < limit {
		if i := spin(&stop, chunk); i < chunk {
			at = i
			break
		}
		chunks++
	}
	took := time.Since(start)
	switch {
	case at < 0:
		fail(what, "the sleeper never ran in %v (%d chunks of %d iterations)", took, chunks, chunk)
	case at == 0:
		fail(what, "only at a call between chunks, after %v and %d chunks: no asynchronous preemption", took, chunks)
	default:
		pass("%s: preempted inside a chunk (iteration %d of %d, after %d chunks) at %v", what, at, chunk, chunks, took.Round(time.Millisecond))
	}
	for !stop.Load() {
		time.Sleep(time.Millisecond)
	}
}

// testMemoryReturn (metal only: MemFree is the kernel's free-frame count there, and quiet)
// touches a 192 MiB buffer, checks that the kernel's free memory drops by that much and
// that the pages read as zero first, then frees it and checks that debug.FreeOSMemory
// (MADV_DONTNEED/munmap) gives the frames back.
func testMemoryReturn() {
	const size = 192 << 20
	if *platform != "metal" {
		skip("memory: frames return to the kernel", "MemFree is only quiet on metal; run with -platform=metal")
		return
	}
	debug.FreeOSMemory()
	_, free0, err := meminfo()
	if err != nil {
		fail("memory: frames return to the kernel", "%v", err)
		return
	}
	b := make([]byte, size)
	dirty := 0
	for i := 0; i < len(b); i += 4096 {
		if b[i] != 0 {
			dirty++
		}
		b[i] = 1
	}
	_, free1, _ := meminfo()
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
	debug.FreeOSMemory()
	_, free2, _ := meminfo()
	used, back := int64(free0)-int64(free1), int64(free2)-int64(free1)
	details := fmt.Sprintf("MemFree %d MiB before, %d MiB with 192 MiB touched, %d MiB after FreeOSMemory", free0>>10, free1>>10, free2>>10)
	switch {
	case dirty > 0:
		fail("memory: 192 MiB of fresh pages read zero", "%d pages were not zero", dirty)
	case used < (size>>10)*9/10:
		fail("memory: touching 192 MiB takes frames", "%s", details)
	case back < (size>>10)*8/10:
		fail("memory: frames return to the kernel", "%s", details)
	default:
		pass("memory: frames return to the kernel: %s", details)
	}
}

func testChannels() {
	// Unbuffered ping-pong between two goroutines.
	const rounds = 2000
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for range rounds {
		ping <- v
		v = <-pong
	}
	close(ping)
	_, open := <-pong
	if v != rounds || open {
		fail("chan: unbuffered ping-pong", "value %d after %d rounds, pong open %v", v, rounds, open)
	} else {
		pass("chan: unbuffered ping-pong, %d rounds", rounds)
	}

	// Buffered FIFO order across a producer and a consumer.
	buf := make(chan int, 64)
	go func() {
		for i := range 10000 {
			buf <- i
		}
		close(buf)
	}()
	next, bad := 0, -1
	for x := range buf {
		if x != next && bad < 0 {
			bad = x
		}
		next++
	}
	if bad >= 0 || next != 10000 {
		fail("chan: buffered FIFO", "received %d values, first out of order %d", next, bad)
	} else {
		pass("chan: buffered FIFO, 10000 values")
	}

	// Fan-in from many senders.
	const senders = 100
	in := make(chan int)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				in <- s
			}
		}()
	}
	go func() { wg.Wait(); close(in) }()
	counts := make([]int, senders)
	for s := range in {
		counts[s]++
	}
	if i := slices.IndexFunc(counts, func(c int) bool { return c != 100 }); i >= 0 {
		fail("chan: fan-in", "sender %d delivered %d values, want 100", i, counts[i])
	} else {
		pass("chan: fan-in from %d senders", senders)
	}
}

func testSelect() {
	// Nothing ready: the timeout case fires, not before it is due.
	never := make(chan int)
	t0 := time.Now()
	select {
	case <-never:
		fail("select: timeout fires", "received from a channel nobody sends on")
	case <-time.After(50 * time.Millisecond):
		if d := time.Since(t0); d < 50*time.Millisecond || d > time.Second {
			fail("select: timeout fires", "after %v, want 50ms..1s", d)
		} else {
			pass("select: 50ms timeout fired after %v", d.Round(time.Millisecond))
		}
	}

	// A ready channel wins over a long timeout.
	ready := make(chan int, 1)
	go func() { time.Sleep(10 * time.Millisecond); ready <- 7 }()
	t0 = time.Now()
	select {
	case v := <-ready:
		if d := time.Since(t0); v != 7 || d > 500*time.Millisecond {
			fail("select: ready channel beats timeout", "got %d after %v", v, d)
		} else {
			pass("select: ready channel beats a 5s timeout (%v)", d.Round(time.Millisecond))
		}
	case <-time.After(5 * time.Second):
		fail("select: ready channel beats timeout", "timed out after 5s")
	}

	// Default case when nothing is ready; a closed channel is always ready.
	closed := make(chan int)
	close(closed)
	picked := ""
	select {
	case <-never:
		picked = "never"
	default:
		picked = "default"
	}
	v, ok := <-closed
	if picked != "default" || v != 0 || ok {
		fail("select: default and closed channel", "picked %s, closed receive %d, %v", picked, v, ok)
	} else {
		pass("select: default case and closed channel")
	}

	// context.WithTimeout and a Ticker, both built on the runtime's timers.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	<-ctx.Done()
	if d := time.Since(t0); !errors.Is(ctx.Err(), context.DeadlineExceeded) || d < 25*time.Millisecond || d > time.Second {
		fail("select: context deadline", "err %v after %v", ctx.Err(), d)
	} else {
		pass("select: context deadline after %v", d.Round(time.Millisecond))
	}
	tick := time.NewTicker(10 * time.Millisecond)
	t0 = time.Now()
	for range 5 {
		<-tick.C
	}
	tick.Stop()
	if d := time.Since(t0); d < 45*time.Millisecond || d > 2*time.Second {
		fail("select: ticker", "5 ticks of 10ms in %v", d)
	} else {
		pass("select: ticker, 5 ticks of 10ms in %v", d.Round(time.Millisecond))
	}
}

func testTime() {
	// time.Sleep(200ms) five times: none may be short, and the best must be within ±20ms.
	// The best, not the median: a guest descheduled by a loaded host wakes late through no
	// fault of its own (qemu-s390x on a real kernel overshoots the same way at load 10 on
	// 2 cores), while a wrong clock or a timer granularity problem makes every sleep wrong.
	var took []time.Duration
	for range 5 {
		t0 := time.Now()
		time.Sleep(200 * time.Millisecond)
		took = append(took, time.Since(t0))
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	best, med := sorted[0], sorted[len(sorted)/2]
	if best < 200*time.Millisecond || best > 220*time.Millisecond {
		fail("time: sleep 200ms", "took %v; want none short and the best within 200ms..220ms", roundAll(took))
	} else {
		pass("time: sleep 200ms took %v (best %v, median %v)", roundAll(took), best.Round(time.Microsecond), med.Round(time.Microsecond))
	}

	// Monotonic time never goes back: within one goroutine, and across goroutines that
	// publish their readings through a mutex (so the order of readings is the order of locks).
	var (
		mu       sync.Mutex
		last     = time.Now()
		backward atomic.Int64
		worst    atomic.Int64
		wg       sync.WaitGroup
		reads    atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := time.Now()
			for i := range 3000 {
				now := time.Now()
				if d := now.Sub(prev); d < 0 {
					backward.Add(1)
					if -int64(d) > worst.Load() {
						worst.Store(-int64(d))
					}
				}
				prev = now
				mu.Lock()
				now = time.Now()
				if d := now.Sub(last); d < 0 {
					backward.Add(1)
				}
				last = now
				mu.Unlock()
				reads.Add(2)
				switch {
				case i%500 == w:
					time.Sleep(time.Millisecond)
				case i%16 == 0:
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	if b := backward.Load(); b != 0 {
		fail("time: monotonic", "%d of %d readings went back, worst by %v", b, reads.Load(), time.Duration(worst.Load()))
	} else {
		pass("time: monotonic over %d readings in 4 goroutines", reads.Load())
	}

	// The wall clock is set to something after the program was written (the TOD clock is
	// set by QEMU from the host), and agrees with the monotonic clock over a sleep.
	t0 := time.Now()
	time.Sleep(50 * time.Millisecond)
	t1 := time.Now()
	wall := t1.Round(0).Sub(t0.Round(0)) // Round(0) strips the monotonic reading
	mono := t1.Sub(t0)
	if t0.Year() < 2024 || wall < 40*time.Millisecond || (wall-mono).Abs() > 20*time.Millisecond {
		fail("time: wall clock", "now %v; 50ms sleep: wall %v, monotonic %v", t0.UTC(), wall, mono)
	} else {
		pass("time: wall clock %s, 50ms sleep: wall %v, monotonic %v", t0.UTC().Format(time.RFC3339), wall.Round(time.Millisecond), mono.Round(time.Millisecond))
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Microsecond)
	}
	return out
}

func testMaps() {
	const n = 100000
	m := make(map[int]int)
	for i := range n {
		m[i] = i * i
	}
	for i := 0; i < n; i += 2 {
		delete(m, i)
	}
	var sum, bad int
	for k, v := range m {
		if k%2 == 0 || v != k*k {
			bad++
		}
		sum += k
	}
	want := (n / 2) * (n / 2) // sum of the odd numbers below n
	if len(m) != n/2 || bad != 0 || sum != want {
		fail("maps: int keys", "len %d, bad entries %d, key sum %d; want %d, 0, %d", len(m), bad, sum, n/2, want)
	} else {
		pass("maps: %d int keys inserted, half deleted, iterated", n)
	}

	type key struct {
		s string
		i int
	}
	ms := make(map[key][]string)
	for i := range 20000 {
		k := key{strconv.Itoa(i % 1000), i % 7}
		ms[k] = append(ms[k], strconv.Itoa(i))
	}
	total := 0
	for _, v := range ms {
		total += len(v)
	}
	keys := make([]key, 0, len(ms))
	for k := range ms {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].s != keys[b].s {
			return keys[a].s < keys[b].s
		}
		return keys[a].i < keys[b].i
	})
	if total != 20000 || len(ms) != 7000 || keys[0] != (key{"0", 0}) {
		fail("maps: struct keys", "%d values under %d keys, first %v; want 20000 under 7000, {0 0}", total, len(ms), keys[0])
	} else {
		pass("maps: struct keys, 20000 values under 7000 keys")
	}
	clear(m)
	if len(m) != 0 {
		fail("maps: clear", "len %d after clear", len(m))
	} else {
		pass("maps: clear")
	}

	// Concurrent readers and writers on a mutex-guarded map and a sync.Map.
	var (
		mu sync.RWMutex
		cm = map[int]int{}
		sm sync.Map
		wg sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := w*2000 + i
				mu.Lock()
				cm[k] = k
				mu.Unlock()
				sm.Store(k, k)
				mu.RLock()
				_ = cm[i]
				mu.RUnlock()
			}
		}()
	}
	wg.Wait()
	count := 0
	sm.Range(func(_, _ any) bool { count++; return true })
	if len(cm) != 16000 || count != 16000 {
		fail("maps: concurrent", "map %d entries, sync.Map %d; want 16000", len(cm), count)
	} else {
		pass("maps: concurrent writers, 16000 entries")
	}
}

// big has a field beyond the first page, so a nil *big dereference is an explicit compiler
// check rather than a hardware fault.
type big struct {
	pad [8192]byte
	x   int
}

type small struct{ a, b int }

//go:noinline
func loadSmall(p *small) int { return p.b }

//go:noinline
func storeSmall(p *small) { p.a = 42 }

//go:noinline
func loadBig(p *big) int { return p.x }

//go:noinline
func divide(a, b int) int { return a / b }

// catch runs f and returns what it panicked with, as a runtime.Error when it is one.
func catch(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func testRecover() {
	cases := []struct {
		what string
		f    func()
		want string
	}{
		{"nil load (hardware fault, SIGSEGV)", func() { loadSmall(nil) }, "invalid memory address or nil pointer dereference"},
		{"nil store (hardware fault, SIGSEGV)", func() { storeSmall(nil) }, "invalid memory address or nil pointer dereference"},
		{"nil load at offset 8192 (compiler check)", func() { loadBig(nil) }, "invalid memory address or nil pointer dereference"},
		{"integer divide by zero", func() { divide(1, zero) }, "integer divide by zero"},
		{"index out of range", func() { _ = []int{1}[zero+3] }, "index out of range"},
		{"nil map write", func() { var m map[int]int; m[1] = 1 }, "assignment to entry in nil map"},
	}
	for _, c := range cases {
		r := catch(c.f)
		re, ok := r.(runtime.Error)
		if !ok || !strings.Contains(re.Error(), c.want) {
			fail("recover: "+c.what, "recovered %T %v, want a runtime.Error containing %q", r, r, c.want)
			continue
		}
		pass("recover: %s: %q", c.what, re.Error())
	}

	// Repeated faults, also from other goroutines: each must come back as a panic (the
	// signal frame is built and torn down correctly every time).
	var wg sync.WaitGroup
	var got atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, ok := catch(func() { loadSmall(nil) }).(runtime.Error); ok {
					got.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got.Load() != 200 {
		fail("recover: 200 nil faults in 4 goroutines", "%d recovered", got.Load())
	} else {
		pass("recover: 200 nil faults in 4 goroutines")
	}
}

// zero is a variable so the compiler cannot see the division or index fault coming.
var zero = 0

func testSHA256() {
	// crypto/rand (getrandom): two reads are filled and differ. TLS and DHCP transaction ids
	// depend on it.
	a, b := make([]byte, 32), make([]byte, 32)
	_, errA := rand.Read(a)
	_, errB := rand.Read(b)
	switch {
	case errA != nil || errB != nil:
		fail("crypto: rand.Read", "%v", errors.Join(errA, errB))
	case bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)):
		fail("crypto: rand.Read", "two reads gave %x and %x", a, b)
	default:
		pass("crypto: rand.Read: two 32-byte reads differ")
	}

	if *wantSHA == "" {
		skip("crypto: sha256", "no -sha256 given")
		return
	}
	buf := pattern.Bytes(*shaMiB<<20, *shaSeed)
	t0 := time.Now()
	sum := sha256.Sum256(buf)
	got := hex.EncodeToString(sum[:])
	what := fmt.Sprintf("crypto: sha256 of %d MiB pattern (seed %d)", *shaMiB, *shaSeed)
	if !strings.EqualFold(got, *wantSHA) {
		fail(what, "= %s, want %s", got, *wantSHA)
		return
	}
	pass("%s = %s in %v", what, got, time.Since(t0).Round(time.Millisecond))
}

// testGC allocates -churn-mib MiB in a mix of large buffers and small pointer-rich
// objects, keeping only a bounded window alive, and checks that the heap stays bounded,
// that the GC ran, that fresh memory is zero (the kernel's demand-zero pages and
// MADV_DONTNEED really clear what the runtime gives back and reuses), and that live data
// survives collections intact.
func testGC() {
	type node struct {
		next *node
		val  int
		pad  [6]int
	}
	const window = 24
	var (
		ring     [window][]byte
		lists    [window]*node
		ms0, ms1 runtime.MemStats
		dirty    int
		corrupt  int
		maxSys   uint64
		third    uint64
	)
	runtime.ReadMemStats(&ms0)
	total := *churnMiB << 20
	allocated := 0
	t0 := time.Now()
	for i := 0; allocated < total; i++ {
		size := (256 + (i*37)%1024) << 10 // 256 KiB .. 1.25 MiB
		b := make([]byte, size)
		// Fresh memory must read as zero: sample one byte per page and the last byte.
		for off := 0; off < size; off += 4096 {
			if b[off] != 0 {
				dirty++
				break
			}
		}
		if b[size-1] != 0 {
			dirty++
		}
		tag := byte(i)
		for off := 0; off < size; off += 4096 {
			b[off] = tag
		}
		b[size-1] = tag
		// The buffer leaving the window must still hold its tag.
		slot := i % window
		if old := ring[slot]; old != nil {
			want := byte(i - window)
			if old[0] != want || old[len(old)-1] != want || old[len(old)/2&^4095] != want {
				corrupt++
			}
		}
		ring[slot] = b
		allocated += size
		// Small objects with pointers, so marking has work to do.
		var head *node
		for j := range 200 {
			head = &node{next: head, val: i*1000 + j}
			allocated += int(unsafe.Sizeof(node{}))
		}
		if old := lists[slot]; old != nil {
			n := 0
			for p := old; p != nil; p = p.next {
				if p.val != (i-window)*1000+199-n {
					corrupt++
					break
				}
				n++
			}
			if n != 200 {
				corrupt++
			}
		}
		lists[slot] = head
		if i%64 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			maxSys = max(maxSys, ms.HeapSys)
		}
		if third == 0 && allocated >= total/3 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			third = ms.HeapAlloc
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	maxSys = max(maxSys, ms1.HeapSys)
	elapsed := time.Since(t0)
	what := fmt.Sprintf("gc: %d MiB churn", *churnMiB)
	churned := ms1.TotalAlloc - ms0.TotalAlloc
	gcs := ms1.NumGC - ms0.NumGC
	details := fmt.Sprintf("TotalAlloc +%d MiB, %d GCs, HeapAlloc %d MiB after 1/3, %d MiB at end, max HeapSys %d MiB, in %v",
		churned>>20, gcs, third>>20, ms1.HeapAlloc>>20, maxSys>>20, elapsed.Round(time.Millisecond))
	switch {
	case churned < uint64(*churnMiB)<<20:
		fail(what, "allocated only %s", details)
	case gcs < 3:
		fail(what, "the GC barely ran: %s", details)
	case ms1.HeapAlloc > third+third/2+(8<<20):
		fail(what+": heap stable", "live heap grew: %s", details)
	case maxSys > uint64(*heapMiB)<<20:
		fail(what+": heap bounded", "HeapSys above %d MiB: %s", *heapMiB, details)
	default:
		pass("%s: %s", what, details)
	}
	if dirty > 0 {
		fail("gc: fresh memory is zero", "%d allocations had non-zero bytes", dirty)
	} else {
		pass("gc: fresh memory is zero")
	}
	if corrupt > 0 {
		fail("gc: live data intact", "%d buffers or lists changed while live", corrupt)
	} else {
		pass("gc: live data intact across %d GCs", gcs)
	}
	runtime.KeepAlive(ring)
	runtime.KeepAlive(lists)
}

// testPlatform checks the platform files of docs/abi.md against what the host passed.
func testPlatform() {
	if *platform != "metal" {
		skip("platform: /proc/meminfo, /sys/firmware/ipl/device, /sys/hypervisor/uuid",
			"metal's files; run with -platform=metal under netipl")
		return
	}
	if *memMiB == 0 {
		skip("platform: MemTotal", "no -mem-mib given")
	} else {
		total, free, err := meminfo()
		switch {
		case err != nil:
			fail("platform: MemTotal", "%v", err)
		case total != uint64(*memMiB)*1024:
			fail("platform: MemTotal", "/proc/meminfo MemTotal %d kB, want %d kB (-m %d)", total, *memMiB*1024, *memMiB)
		case free == 0 || free >= total:
			fail("platform: MemFree", "/proc/meminfo MemFree %d kB of %d kB", free, total)
		default:
			pass("platform: MemTotal = %d kB, MemFree = %d kB", total, free)
		}
	}
	fileCheck("platform: /sys/hypervisor/uuid", "/sys/hypervisor/uuid", *uuid, "no -uuid given")
	fileCheck("platform: /sys/firmware/ipl/device", "/sys/firmware/ipl/device", *iplDevice, "no -ipl-device given (-kernel mode has no IPL block)")
	fileCheck("platform: /sys/firmware/ipl/ipl_type", "/sys/firmware/ipl/ipl_type", *iplType, "no -ipl-type given (-kernel mode has no IPL block)")
	fileCheck("platform: /sys/firmware/ipl/loadparm", "/sys/firmware/ipl/loadparm", *loadparm, "no -loadparm given")
}

// fileCheck compares a one-line file with want (case-insensitively).
func fileCheck(what, path, want, skipReason string) {
	if want == "" {
		skip(what, skipReason)
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fail(what, "%v", err)
		return
	}
	got := strings.TrimSpace(string(b))
	if !strings.EqualFold(got, want) {
		fail(what, "= %q, want %q", got, want)
		return
	}
	pass("%s = %s", what, got)
}

// meminfo returns MemTotal and MemFree in kB.
func meminfo() (total, free uint64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/meminfo %s: %w", name, err)
		}
		switch name {
		case "MemTotal":
			total = v
		case "MemFree":
			free = v
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	if total == 0 {
		return 0, 0, errors.New("/proc/meminfo: no MemTotal line")
	}
	return total, free, nil
}

// deliberatePanic dies of an uncaught panic; the Go runtime prints the panic value and a
// goroutine trace and exits with status 2.
func deliberatePanic(mode string) {
	fmt.Printf("torture: panicking on purpose (-panic=%s)\n", mode)
	switch mode {
	case "value":
		panicNow()
	case "nil":
		done := make(chan struct{})
		go func() {
			defer close(done)
			loadSmall(nil)
		}()
		<-done
	default:
		fmt.Printf("torture: -panic=%q: want value or nil\n", mode)
		os.Exit(64)
	}
	fmt.Println("torture: still alive after the panic")
	os.Exit(3)
}

//go:noinline
func panicNow() {
	panic("torture: deliberate uncaught panic")
}
