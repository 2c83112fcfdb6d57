// gclimit models the loader's heap during a payload transfer (loader/flow.go tuneGC) to see what the
// GOGC 800 + RAM/8 soft limit costs when payload pieces are buffered in loader memory (they
// overlap netipl's own ranges): buffered pieces (1 MiB noscan slices, live), a pointerful live
// heap and per-packet garbage; it prints collections, GC CPU and the heap at the end. A model,
// not the loader: run by bench/gclimit.sh.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

type node struct {
	next *node
	buf  []byte
	p    [6]*int
}

var sink []byte
var keepNodes []*node
var pieces [][]byte

func main() {
	buffered := flag.Int("buffered", 0, "MiB of buffered payload pieces (live, noscan)")
	live := flag.Int("live", 12, "MiB of pointerful live heap")
	alloc := flag.Int("alloc", 200, "MiB of garbage allocated during the transfer")
	gogc := flag.Int("gogc", 100, "GOGC")
	limit := flag.Int("limit", 0, "soft memory limit MiB (0: none)")
	flag.Parse()
	debug.SetGCPercent(*gogc)
	if *limit > 0 {
		debug.SetMemoryLimit(int64(*limit) << 20)
	}
	// live pointerful heap: nodes with 256-byte buffers
	for i := 0; i < (*live<<20)/(256+96); i++ {
		n := &node{buf: make([]byte, 256)}
		if len(keepNodes) > 0 {
			n.next = keepNodes[len(keepNodes)-1]
		}
		keepNodes = append(keepNodes, n)
	}
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(s)
	gc0, tot0 := s[0].Value.Float64(), s[1].Value.Float64()
	start := time.Now()
	// transfer: pieces are buffered one by one as the payload passes them, garbage all along
	total := *alloc << 20
	perPiece := total
	if *buffered > 0 {
		perPiece = total / *buffered
	}
	done := 0
	for done < total {
		b := make([]byte, 2048) // a packet's worth of garbage
		b[0] = 1
		sink = b
		if done%4096 == 0 {
			x := &node{} // a little pointerful garbage too
			_ = x
		}
		done += 2048
		if len(pieces) < *buffered && done >= (len(pieces)+1)*perPiece/2 {
			pieces = append(pieces, make([]byte, 1<<20))
		}
	}
	for len(pieces) < *buffered {
		pieces = append(pieces, make([]byte, 1<<20))
	}
	el := time.Since(start)
	metrics.Read(s)
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	fmt.Printf("buffered %3d MiB live %2d MiB gogc %4d limit %3d MiB: %4d GCs, GC CPU %.3f s of %.3f s, wall %v, heap at end %d MiB\n",
		*buffered, *live, *gogc, *limit, m1.NumGC-m0.NumGC, s[0].Value.Float64()-gc0, s[1].Value.Float64()-tot0, el.Round(time.Millisecond), m1.HeapAlloc>>20)
	runtime.KeepAlive(keepNodes)
	runtime.KeepAlive(pieces)
}
