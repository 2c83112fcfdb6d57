package qemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Line is one console line and when it arrived.
type Line struct {
	// Text is the line without its line ending ("\n", "\r\n").
	Text string
	// At is the time since QEMU was started.
	At time.Duration
	// CPU is the host CPU time (user+system) QEMU had used when the line was read,
	// sampled from /proc/<pid>/stat; zero where that file cannot be read.
	CPU time.Duration
}

// Result is what a run produced. Lines come from QEMU's stdout, which carries the guest
// console under -nographic; QEMU's own complaints go to Stderr.
type Result struct {
	// Args is the full command line, binary first.
	Args []string
	// Lines are the console lines in order; a last line without a newline is included.
	Lines []Line
	// Stderr is QEMU's standard error.
	Stderr []byte
	// ExitCode is QEMU's exit status, or -1 when it was killed (timeout or StopAt).
	ExitCode int
	// TimedOut is set when the run hit Config.Timeout (or the context's deadline) and QEMU was killed.
	TimedOut bool
	// Stopped is set when a line matched RunOptions.StopAt and QEMU was killed on purpose.
	Stopped bool
	// Elapsed is the wall time from start to exit.
	Elapsed time.Duration
	// CPU is QEMU's host CPU time (user+system) over the whole run.
	CPU time.Duration
}

// RunOptions are the knobs of Run that are about the process and watching it rather than QEMU's configuration.
type RunOptions struct {
	// Env is added to the emulator's environment (qemu-s390x passes it on to the program it runs).
	Env []string
	// StopAt, if set, ends the run (kills QEMU) as soon as a console line matches it.
	StopAt *regexp.Regexp
	// OnLine, if set, is called for every console line as it arrives (e.g. t.Log for live output).
	OnLine func(Line)
}

// Run boots c and waits until QEMU exits, the timeout expires, ctx is done or a line
// matches opts.StopAt. A guest that fails is not an error: the error is for runs that
// could not be started or watched (missing binary, bad Config); inspect Result for the rest.
func Run(ctx context.Context, c Config, opts RunOptions) (*Result, error) {
	args, err := c.Args()
	if err != nil {
		return nil, err
	}
	return RunCommand(ctx, c.binary(), args, c.timeout(), opts)
}

// RunCommand runs any emulator command (e.g. qemu-s390x PROGRAM ARGS, or a fake QEMU in
// tests) under the same watch as Run: console capture, timeout, StopAt, process-group kill.
func RunCommand(ctx context.Context, binary string, args []string, timeout time.Duration, opts RunOptions) (*Result, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.Command(binary, args...)
	if len(opts.Env) > 0 {
		cmd.Env = append(os.Environ(), opts.Env...)
	}
	cmd.Stdin = nil // /dev/null: QEMU's mon:stdio must not read the test's terminal
	// Own process group, so a kill also reaches whatever a wrapper script started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child that left the group and kept stderr open must not block Wait forever.
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("qemu: run %s: stdout pipe: %w", binary, err)
	}
	res := &Result{Args: append([]string{binary}, args...), ExitCode: -1}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: run %s: %w", binary, err)
	}
	pid := cmd.Process.Pid

	kill := func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }
	readDone := make(chan struct{})
	stopNow := make(chan struct{}, 1)
	go func() {
		defer close(readDone)
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			text, err := r.ReadString('\n')
			if text != "" {
				l := Line{Text: strings.TrimRight(text, "\r\n"), At: time.Since(start), CPU: processCPU(pid)}
				res.Lines = append(res.Lines, l) // read by Run only after readDone
				if opts.OnLine != nil {
					opts.OnLine(l)
				}
				if opts.StopAt != nil && opts.StopAt.MatchString(l.Text) {
					select {
					case stopNow <- struct{}{}:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()

	waitDone := make(chan error, 1)
	go func() {
		<-readDone // Wait closes the pipe; read everything first
		waitDone <- cmd.Wait()
	}()

	var (
		waitErr error
		stopped bool
	)
	select {
	case waitErr = <-waitDone:
	case <-ctx.Done():
		res.TimedOut = true
		kill()
		waitErr = waitForExit(waitDone, stdout)
	case <-stopNow:
		stopped = true
		kill()
		waitErr = waitForExit(waitDone, stdout)
	}
	res.Elapsed = time.Since(start)
	res.Stopped = stopped
	res.Stderr = stderr.Bytes()
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
		if !res.TimedOut && !res.Stopped {
			res.ExitCode = ps.ExitCode()
		}
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("qemu: wait for %s: %w", binary, waitErr)
	}
	return res, nil
}

// waitForExit waits for the reader and cmd.Wait after a kill. A grandchild that escaped
// the process group could hold stdout open; closing our end unblocks the reader.
func waitForExit(waitDone <-chan error, stdout io.Closer) error {
	select {
	case err := <-waitDone:
		return err
	case <-time.After(5 * time.Second):
		stdout.Close()
		return <-waitDone
	}
}

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux port).
const clockTicks = 100

// processCPU returns utime+stime of pid from /proc/<pid>/stat, or 0 if unreadable.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	cpu, err := parseStatCPU(string(b))
	if err != nil {
		return 0
	}
	return cpu
}

// parseStatCPU extracts utime+stime (fields 14 and 15) from a /proc/<pid>/stat line.
// The command name (field 2) is in parentheses and may contain spaces or ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("qemu: parse /proc stat %.40q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14 → f[11], stime field 15 → f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("qemu: parse /proc stat %.40q: %d fields after the name, want ≥ 13", stat, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("qemu: parse /proc stat utime/stime: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// Texts returns the console lines' text.
func (r *Result) Texts() []string {
	out := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		out[i] = l.Text
	}
	return out
}

// Console returns the console as one string, lines joined by "\n".
func (r *Result) Console() string {
	return strings.Join(r.Texts(), "\n")
}

// First returns the first line matching re.
func (r *Result) First(re *regexp.Regexp) (Line, bool) {
	for _, l := range r.Lines {
		if re.MatchString(l.Text) {
			return l, true
		}
	}
	return Line{}, false
}

// Contains reports whether some console line contains s.
func (r *Result) Contains(s string) bool {
	for _, l := range r.Lines {
		if strings.Contains(l.Text, s) {
			return true
		}
	}
	return false
}

// Report parses the console as kvm-unit-tests style self-test output.
func (r *Result) Report() Report {
	return ParseReport(r.Texts())
}

// Outcome says in a few words how the run ended: "exit 0", "exit 1", "timed out after 30s", "stopped at a wanted line".
func (r *Result) Outcome() string {
	switch {
	case r.TimedOut:
		return "timed out after " + r.Elapsed.Round(time.Millisecond).String()
	case r.Stopped:
		return "stopped at a wanted line after " + r.Elapsed.Round(time.Millisecond).String()
	}
	return "exit " + strconv.Itoa(r.ExitCode) + " after " + r.Elapsed.Round(time.Millisecond).String()
}

// String is the whole run for a failure message: command, outcome, console, stderr.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s\n%s, host CPU %v\n--- console (%d lines) ---\n", strings.Join(r.Args, " "), r.Outcome(), r.CPU, len(r.Lines))
	for _, l := range r.Lines {
		fmt.Fprintf(&b, "[%8.3fs] %s\n", l.At.Seconds(), l.Text)
	}
	if len(r.Stderr) > 0 {
		fmt.Fprintf(&b, "--- stderr ---\n%s", r.Stderr)
		if r.Stderr[len(r.Stderr)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
