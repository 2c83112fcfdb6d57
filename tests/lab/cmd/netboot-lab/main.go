// Command netboot-lab runs the lab's scenarios against an s390x netboot firmware under
// qemu-system-s390x and prints a table scenario × result × seconds.
//
//	go run ./tests/lab/cmd/netboot-lab -firmware qemu -scenario all
//	go run ./tests/lab/cmd/netboot-lab -firmware build/netipl.img -scenario direct-kernel,pxe-dir-default
//	go run ./tests/lab/cmd/netboot-lab -firmware qemu,build/netipl.img   # both, then a side-by-side table
//	go run ./tests/lab/cmd/netboot-lab -bench-tftp   # the lab's TFTP throughput (no QEMU)
//
// Exit status: 0 when every scenario is PASS or XFAIL, 1 otherwise, 2 on bad usage or a
// malformed scenario file.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"netipl/tests/lab"
)

func main() {
	firmware := flag.String("firmware", "qemu", `netboot image: "qemu" (QEMU's s390-netboot.img) or a path; comma separated: each runs the matrix in turn, then a side-by-side table`)
	scenario := flag.String("scenario", "all", "scenario names, comma separated, or all")
	dir := flag.String("dir", "tests/lab/scenarios", "directory of *.scn files")
	fixtures := flag.String("fixtures", ".cache/fixtures", "directory with vmlinuz and initrd.gz")
	out := flag.String("out", "build/lab", "directory for each scenario's console, lab log and pcap")
	qemu := flag.String("qemu", "qemu-system-s390x", "QEMU binary")
	link := flag.String("link", "stream", "QEMU NIC backend to the lab: stream (TCP) or dgram (UDP)")
	kernelMode := flag.Bool("kernel-mode", false, "start the firmware with -kernel (NIC without bootindex) instead of -global s390-ipl.netboot_fw")
	verbose := flag.Bool("v", false, "copy QEMU's console to stderr")
	benchTFTP := flag.Bool("bench-tftp", false, "measure the lab's TFTP server throughput through its stack (no QEMU) and exit")
	benchSize := flag.Int("bench-size", 32<<20, "bytes per transfer for -bench-tftp and -bench-qemu")
	benchQEMU := flag.Bool("bench-qemu", false, "measure the firmware's TFTP throughput over slirp and over the lab and exit")
	list := flag.Bool("list", false, "list the scenarios with their descriptions and exit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if *benchTFTP {
		if err := lab.BenchTFTP(os.Stdout, *benchSize); err != nil {
			fmt.Fprintln(os.Stderr, "netboot-lab:", err)
			os.Exit(1)
		}
		return
	}
	type firmwareRef struct{ name, path string }
	var fws []firmwareRef
	for _, f := range strings.Split(*firmware, ",") {
		fw := firmwareRef{name: "netipl", path: f}
		if f == "qemu" {
			fw = firmwareRef{name: "qemu", path: lab.QEMUNetbootImage}
		} else if abs, err := filepath.Abs(f); err == nil {
			fw.path = abs
		}
		if _, err := os.Stat(fw.path); err != nil {
			fmt.Fprintln(os.Stderr, "netboot-lab: firmware:", err)
			os.Exit(2)
		}
		fws = append(fws, fw)
	}
	if *benchQEMU {
		if len(fws) != 1 {
			fmt.Fprintln(os.Stderr, "netboot-lab: -bench-qemu takes one firmware")
			os.Exit(2)
		}
		if err := lab.BenchFirmwareTFTP(ctx, os.Stdout, *qemu, fws[0].path, *benchSize); err != nil {
			fmt.Fprintln(os.Stderr, "netboot-lab:", err)
			os.Exit(1)
		}
		return
	}

	all, err := lab.LoadScenarios(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "netboot-lab:", err)
		os.Exit(2)
	}
	if *list {
		for _, sc := range all {
			xf := ""
			for _, fw := range lab.Firmwares {
				if why, ok := sc.XFail[fw]; ok {
					xf += " [xfail " + fw + ": " + why + "]"
				}
			}
			fmt.Printf("%-24s %4.0fs  %s%s\n", sc.Name, sc.Timeout.Seconds(), sc.Desc, xf)
		}
		return
	}
	var chosen []*lab.Scenario
	if *scenario == "all" {
		chosen = all
	} else {
		byName := map[string]*lab.Scenario{}
		for _, sc := range all {
			byName[sc.Name] = sc
		}
		for _, n := range strings.Split(*scenario, ",") {
			sc, ok := byName[strings.TrimSpace(n)]
			if !ok {
				fmt.Fprintf(os.Stderr, "netboot-lab: no scenario %q in %s\n", n, *dir)
				os.Exit(2)
			}
			chosen = append(chosen, sc)
		}
	}

	var con io.Writer
	if *verbose {
		con = os.Stderr
	}
	bad := 0
	results := make([][]lab.Result, len(fws))
	totals := make([]time.Duration, len(fws))
	for i, fw := range fws {
		opt := lab.RunOptions{FirmwareName: fw.name, Firmware: fw.path, QEMU: *qemu, Fixtures: *fixtures,
			OutDir: *out, Console: con, Link: *link, KernelMode: *kernelMode}
		if len(fws) > 1 {
			opt.OutDir = filepath.Join(*out, fw.name)
		}
		fmt.Printf("firmware %s (%s), %d scenarios, logs in %s\n", fw.name, fw.path, len(chosen), opt.OutDir)
		fmt.Printf("%-24s %-6s %8s  %s\n", "scenario", "result", "seconds", "note")
		start := time.Now()
		counts := map[lab.Outcome]int{}
		for _, sc := range chosen {
			r := lab.Run(ctx, sc, opt)
			results[i] = append(results[i], r)
			counts[r.Outcome]++
			if !r.Outcome.OK() {
				bad++
			}
			note := r.Reason
			if r.Faults.InScope > 0 && sc.Faults.Active() {
				note = strings.TrimSpace(note + " [" + r.Faults.String() + "]")
			}
			fmt.Printf("%-24s %-6s %8.1f  %s\n", sc.Name, r.Outcome, r.Elapsed.Seconds(), note)
			if ctx.Err() != nil {
				break
			}
		}
		totals[i] = time.Since(start)
		fmt.Printf("total: %d scenarios in %.1f s: %d PASS, %d XFAIL, %d FAIL, %d HANG, %d XPASS, %d ERROR\n",
			len(results[i]), totals[i].Seconds(), counts[lab.Pass], counts[lab.XFail], counts[lab.Fail],
			counts[lab.Hang], counts[lab.XPass], counts[lab.Error])
		if ctx.Err() != nil {
			break
		}
	}
	if len(fws) > 1 {
		printSideBySide(os.Stdout, chosen, results, totals, func(i int) string { return fws[i].name })
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// printSideBySide prints a markdown table scenario × firmware (outcome and seconds) with each
// matrix's wall time.
func printSideBySide(w io.Writer, chosen []*lab.Scenario, results [][]lab.Result, totals []time.Duration, name func(int) string) {
	fmt.Fprintf(w, "\n| scenario |")
	for i := range results {
		fmt.Fprintf(w, " %s |", name(i))
	}
	fmt.Fprintf(w, "\n|---|")
	for range results {
		fmt.Fprintf(w, "---|")
	}
	fmt.Fprintln(w)
	for j, sc := range chosen {
		fmt.Fprintf(w, "| %s |", sc.Name)
		for i := range results {
			if j < len(results[i]) {
				r := results[i][j]
				fmt.Fprintf(w, " %s %.1f |", r.Outcome, r.Elapsed.Seconds())
			} else {
				fmt.Fprintf(w, " — |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| **matrix wall time** |")
	for i := range results {
		fmt.Fprintf(w, " %.1f s |", totals[i].Seconds())
	}
	fmt.Fprintln(w)
}
