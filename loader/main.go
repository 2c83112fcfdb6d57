// Command loader is netipl's network loader. For now it is a small honest program: it reports
// what it sees of the machine and stops, until the network boot flow lands.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Println("Network boot starting...")
	if f, err := os.Open("/proc/meminfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "MemTotal:") || strings.HasPrefix(s.Text(), "MemFree:") {
				fmt.Println("  " + strings.Join(strings.Fields(s.Text()), " "))
			}
		}
		f.Close()
	} else {
		fmt.Println("  RAM: unknown:", err)
	}
	for _, name := range []string{"ipl_type", "device", "loadparm"} {
		b, err := os.ReadFile("/sys/firmware/ipl/" + name)
		if err != nil {
			fmt.Printf("  IPL %s: unknown: %v\n", name, err)
			continue
		}
		fmt.Printf("  IPL %s: %s\n", name, strings.TrimSpace(string(b)))
	}
	fmt.Println("netipl: the network loader is not built yet")
	os.Exit(1)
}
