// Command loader is netipl's network loader: the boot flow of a network IPL.
//
//	NIC (/dev/net/tun) → DHCPv4 (after one silent round, beside it: RS + SLAAC + DHCPv6
//	Information-Request for option 59, ipv6.go) → boot file (kernel, "# pxelinux" config, directory, .INS, URL)
//	→ pxelinux.cfg lookup, every name printed → entry by LOADPARM → kernel and initrds streamed
//	over TFTP or HTTP into their final place (/dev/mem), with rates → optional <file>.sha256
//	check → SYSAPPEND → DHCP release → kexec_load + reboot(LINUX_REBOOT_CMD_KEXEC).
//
// Under metal it runs with no arguments and every fact comes from the platform files of
// docs/abi.md. On a Linux host it runs over a tap device (host mode, design §6 tier 3):
//
//	loader -tap tap0 -mac 52:54:00:12:34:56 -dry-run [-mem ram.img] [-ram MiB] [-loadparm L] [-uuid U]
//	       [-timeout 15m] [-stall-timeout 30s]
//
// Two time budgets keep every failure finite: -timeout bounds the whole flow (default 15 min) and
// -stall-timeout aborts a file that moves less than 64 KiB in that time (default 30 s), naming
// the file and the server. The environment variables NETIPL_TIMEOUT and NETIPL_STALL_TIMEOUT set
// the defaults; in the guest they are the only way (netipl-link -env, docs/image.md).
//
// -dry-run prints the boot plan instead of starting the kernel; -mem names a file that stands in
// for guest RAM, so the plan's bytes can be checked. The console lines are design §5's (console.go).
// On failure it prints one reason line and "Failed to load OS from network" and exits 1, which
// metal reports ("metal: exit status 1", docs/boot.md) and turns into a disabled wait.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"netipl/pxecfg"
)

// options are the loader's settings; the zero value (no flags) is the guest's.
type options struct {
	Tap      string
	MAC      string
	DryRun   bool
	MemFile  string
	RAMMiB   uint64
	Loadparm string
	UUID     string
	Window   int
	DHCPTime time.Duration
	Timeout  time.Duration
	Stall    time.Duration
	NoIPv6   bool
}

// Time budgets. Both are generous for a boot that works (the 1 GiB initrd of NETIPL_BOOT_BIG
// takes 50 s over HTTP, about 6 min at lock-step TFTP's 3.1 MB/s through slirp) and finite, so a hostile or
// broken server ends in a reason line instead of a hang.
const (
	// defaultTimeout bounds the whole flow, DHCP to kexec.
	defaultTimeout = 15 * time.Minute
	// defaultStall is the per-file progress deadline (see netFetcher.stall).
	defaultStall = 30 * time.Second
)

// Environment variables that set the budgets where there are no flags: in the guest the loader
// runs with the environment the image was linked with (netipl-link -env, docs/image.md).
const (
	envTimeout = "NETIPL_TIMEOUT"
	envStall   = "NETIPL_STALL_TIMEOUT"
)

// durationEnv returns the duration in environment variable name, or def when it is unset.
func durationEnv(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q is not a duration like 90s or 20m", name, v)
	}
	return d, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses flags, runs the flow and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return runEnv(args, os.Getenv, stdout, stderr)
}

// runEnv is run with the environment given as getenv.
func runEnv(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var o options
	con := &console{w: stdout}
	timeout, err := durationEnv(getenv, envTimeout, defaultTimeout)
	if err == nil {
		o.Stall, err = durationEnv(getenv, envStall, defaultStall)
	}
	if err != nil {
		// In the guest there is nobody to read a usage message: fail like any other boot.
		con.start()
		con.fail(err)
		return 1
	}
	fs := flag.NewFlagSet("loader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Tap, "tap", "eth0", "tap interface of the boot NIC (metal's /dev/net/tun accepts any name)")
	fs.StringVar(&o.MAC, "mac", "", "MAC address of the boot NIC (default: "+pathMAC+")")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the boot plan instead of starting the kernel")
	fs.StringVar(&o.MemFile, "mem", "", "with -dry-run: a file standing in for guest RAM (default: loader memory)")
	fs.Uint64Var(&o.RAMMiB, "ram", 0, "guest RAM in MiB (default: /proc/iomem, else /proc/meminfo)")
	fs.StringVar(&o.Loadparm, "loadparm", "", "LOADPARM (default: "+pathLoadparm+")")
	fs.StringVar(&o.UUID, "uuid", "", "VM UUID (default: "+pathUUID+")")
	fs.IntVar(&o.Window, "window", 16, "TFTP windowsize to ask for (RFC 7440); without one, max(this, 48) blocks are pipelined against servers that answer every ACK (QEMU slirp); 1 = lock-step for both")
	fs.DurationVar(&o.DHCPTime, "dhcp-timeout", 0, "bound on DHCP (default: the client's, 60 s)")
	fs.BoolVar(&o.NoIPv6, "no-ipv6", false, "no IPv6 fallback (RS + DHCPv6) when DHCPv4 has no answer")
	fs.DurationVar(&o.Timeout, "timeout", timeout, "bound on the whole flow, DHCP to kexec; 0 = none (env "+envTimeout+")")
	fs.DurationVar(&o.Stall, "stall-timeout", o.Stall, "abort a file that moves less than 64 KiB in this time; 0 = never (env "+envStall+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "loader: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.MemFile != "" && !o.DryRun {
		fmt.Fprintln(stderr, "loader: -mem needs -dry-run")
		return 2
	}
	ctx := context.Background()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.Timeout, &budgetError{o.Timeout})
		defer cancel()
	}
	if err := netboot(ctx, o, con); err != nil {
		var be *budgetError
		if errors.As(context.Cause(ctx), &be) && !errors.As(err, &be) {
			err = fmt.Errorf("%w, in: %v", be, err)
		}
		con.fail(err)
		return 1
	}
	return 0
}

// budgetError is the reason when the whole flow ran out of time.
type budgetError struct{ d time.Duration }

func (e *budgetError) Error() string {
	return fmt.Sprintf("boot flow not done after %s (-timeout, %s)", e.d, envTimeout)
}

// machineFacts gathers the machine facts, flags first.
func machineFacts(o options, guest bool) (machine, error) {
	var m machine
	var err error
	if o.MAC != "" {
		if m.MAC, err = net.ParseMAC(o.MAC); err != nil {
			return m, fmt.Errorf("-mac: %w", err)
		}
	} else if m.MAC, err = readMAC(pathMAC); err != nil {
		return m, err
	}
	m.Loadparm = o.Loadparm
	if m.Loadparm == "" {
		m.Loadparm = readLoadparm(pathLoadparm)
	}
	if o.UUID != "" {
		if m.UUID, err = pxecfg.ParseUUID(o.UUID); err != nil {
			return m, fmt.Errorf("-uuid: %w", err)
		}
	} else if m.UUID, err = readUUID(pathUUID); err != nil {
		return m, err
	}
	iomem := ""
	if guest {
		iomem = pathIOMem
	}
	if m.RAM, m.Free, m.Used, err = readMemory(pathMeminfo, iomem); err != nil {
		return m, err
	}
	if o.RAMMiB != 0 {
		m.RAM, m.Free = o.RAMMiB<<20, o.RAMMiB<<20
	}
	return m, nil
}
