// Command netipl is the host-side companion of the netipl firmware. Subcommands:
//
//	netipl explain -root DIR|URL [DHCP and machine facts]
//
// explain shows what the firmware would do with a boot server: every config name it probes
// and the result, the config chosen, every entry, and the exact kernel, initrd list and
// command line it would boot. It runs the same code as the loader (package pxecfg).
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: netipl <command> [flags]

commands:
  explain   show what netipl would boot from a TFTP/HTTP tree (netipl explain -h)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "explain":
		return explain(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "netipl: unknown command %q\n%s", args[0], usage)
	return 2
}
