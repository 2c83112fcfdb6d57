// Command hello is the smallest useful guest: it prints a greeting as the first thing
// main does, then the RAM it sees in /proc/meminfo (MemTotal and MemFree, the memory a
// loader could use), and exits 0. tests/metal boots it in a 128 MiB guest and with too
// little RAM; bench/metal.sh times its first line and reports its MemFree.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Greeting is the first line hello prints.
const Greeting = "hello: main() reached"

func main() {
	fmt.Println(Greeting)
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		fmt.Printf("hello: %v\n", err)
		os.Exit(1)
	}
	defer f.Close()
	var total, free string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), ":")
		switch name {
		case "MemTotal":
			total = strings.TrimSpace(rest)
		case "MemFree":
			free = strings.TrimSpace(rest)
		}
	}
	if err := sc.Err(); err != nil || total == "" || free == "" {
		fmt.Printf("hello: read /proc/meminfo: MemTotal %q, MemFree %q, error %v\n", total, free, err)
		os.Exit(1)
	}
	// One line, fixed shape, parsed by tests/metal and bench/metal.sh.
	fmt.Printf("hello: MemTotal: %s MemFree: %s\n", total, free)
}
