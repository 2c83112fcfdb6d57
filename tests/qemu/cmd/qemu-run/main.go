// Command qemu-run boots an image under qemu-system-s390x with package netipl/tests/qemu
// and prints, in a form scripts can grep, when chosen console lines appeared and how much
// host CPU QEMU had used by then. bench/metal.sh and other benchmark scripts use it.
//
//	qemu-run [-qemu BIN] [-mode kernel|netboot_fw] -image IMG [-m MiB] [-nic] [-devno fe.0.0007]
//	         [-mark RE]... [-stop RE] [-runs N] [-timeout D] [-console]
//
// Output, one line each (times in seconds since QEMU was started):
//
//	console: <line>                       (with -console, every console line of every run)
//	run <i>: mark <j> at <s> cpu <s>      (the first line matching the j-th -mark, 0-based)
//	run <i>: mark <j> missing
//	run <i>: end <outcome> cpu <s>
//	median: mark <j> at <s> cpu <s> (<n> runs)
//
// The exit status is 1 when a run did not start or a mark was missing from some run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"

	"netipl/tests/qemu"
)

type marks []*regexp.Regexp

func (m *marks) String() string { return fmt.Sprint(*m) }
func (m *marks) Set(s string) error {
	re, err := regexp.Compile(s)
	if err != nil {
		return err
	}
	*m = append(*m, re)
	return nil
}

func main() {
	var (
		marks   marks
		bin     = flag.String("qemu", qemu.SystemBinary, "the emulator to run")
		mode    = flag.String("mode", "kernel", "launch mode: kernel or netboot_fw")
		image   = flag.String("image", "", "ELF image to boot")
		mem     = flag.Int("m", 0, "guest RAM in MiB (0: QEMU's default, 128)")
		nic     = flag.Bool("nic", false, "add a slirp virtio-net-ccw NIC (always added in netboot_fw mode)")
		devno   = flag.String("devno", "", "the NIC's devno, e.g. fe.0.0007")
		stop    = flag.String("stop", "", "kill QEMU when a console line matches this regexp")
		runs    = flag.Int("runs", 1, "number of runs")
		timeout = flag.Duration("timeout", time.Minute, "per-run timeout")
		console = flag.Bool("console", false, "print every console line")
	)
	flag.Var(&marks, "mark", "regexp of a console line to time (repeatable)")
	flag.Parse()
	m, err := qemu.ParseMode(*mode)
	if err != nil {
		fatal(err)
	}
	c := qemu.Config{Binary: *bin, Mode: m, Image: *image, MemoryMiB: *mem, Timeout: *timeout}
	if *nic || m == qemu.ModeNetbootFW {
		c.NICs = []qemu.NIC{{Devno: *devno}}
	}
	var opts qemu.RunOptions
	if *stop != "" {
		if opts.StopAt, err = regexp.Compile(*stop); err != nil {
			fatal(err)
		}
	}
	if *console {
		opts.OnLine = func(l qemu.Line) { fmt.Printf("console: %s\n", l.Text) }
	}
	at := make([][]time.Duration, len(marks))
	cpu := make([][]time.Duration, len(marks))
	missing := false
	for i := range *runs {
		res, err := qemu.Run(context.Background(), c, opts)
		if err != nil {
			fatal(err)
		}
		for j, re := range marks {
			l, ok := res.First(re)
			if !ok {
				fmt.Printf("run %d: mark %d missing\n", i, j)
				missing = true
				continue
			}
			fmt.Printf("run %d: mark %d at %.4f cpu %.4f\n", i, j, l.At.Seconds(), l.CPU.Seconds())
			at[j] = append(at[j], l.At)
			cpu[j] = append(cpu[j], l.CPU)
		}
		fmt.Printf("run %d: end %s cpu %.4f\n", i, res.Outcome(), res.CPU.Seconds())
		if len(res.Stderr) > 0 {
			fmt.Fprintf(os.Stderr, "run %d: stderr: %s", i, res.Stderr)
		}
	}
	for j := range marks {
		if len(at[j]) == 0 {
			continue
		}
		fmt.Printf("median: mark %d at %.4f cpu %.4f (%d runs)\n", j, median(at[j]).Seconds(), median(cpu[j]).Seconds(), len(at[j]))
	}
	if missing {
		os.Exit(1)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "qemu-run:", err)
	os.Exit(2)
}
