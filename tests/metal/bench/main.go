// Command bench is the guest side of bench/metal.sh: it measures, from inside the guest
// with time.Now(), the cost of one system call round trip (getpid, a raw syscall with no
// scheduler involvement), and optionally idles in time.Sleep so the host can measure what
// an idle guest costs. Output lines (parsed by bench/metal.sh):
//
//	bench: first line
//	bench: getpid N iterations: X ns/op
//	bench: idle start D
//	bench: idle end
package main

import (
	"flag"
	"fmt"
	"syscall"
	"time"
)

func main() {
	fmt.Println("bench: first line")
	n := flag.Int("getpid", 100000, "getpid round trips to time (0: none)")
	idle := flag.Duration("idle", 0, "sleep this long at the end, printing a line before and after")
	flag.Parse()
	if *n > 0 {
		pid := syscall.Getpid()
		t0 := time.Now()
		for range *n {
			if syscall.Getpid() != pid {
				fmt.Println("bench: getpid changed")
			}
		}
		d := time.Since(t0)
		fmt.Printf("bench: getpid %d iterations: %.0f ns/op\n", *n, float64(d.Nanoseconds())/float64(*n))
	}
	if *idle > 0 {
		fmt.Printf("bench: idle start %v\n", *idle)
		time.Sleep(*idle)
		fmt.Println("bench: idle end")
	}
}
