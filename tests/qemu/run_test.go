package qemu

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeQEMU writes an executable shell script standing in for qemu-system-s390x.
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunCapturesConsoleAndExitCode(t *testing.T) {
	bin := fakeQEMU(t, `
printf 'LOADPARM=[        ]\r\n'
echo "args: $*"
echo 'qemu-system-s390x: a complaint' >&2
printf 'PASS: a: b\nSUMMARY: 1 tests, 0 failures\nno newline at end'
exit 1
`)
	c := Config{Binary: bin, Image: "/x.img", MemoryMiB: 64, Timeout: 10 * time.Second}
	var seen []string
	res, err := Run(context.Background(), c, RunOptions{OnLine: func(l Line) { seen = append(seen, l.Text) }})
	if err != nil {
		t.Fatalf("Run(%+v) error %v", c, err)
	}
	want := []string{
		"LOADPARM=[        ]",
		"args: -M s390-ccw-virtio -nographic -no-reboot -action panic=exit-failure -m 64 -kernel /x.img",
		"PASS: a: b",
		"SUMMARY: 1 tests, 0 failures",
		"no newline at end",
	}
	if got := res.Texts(); !slices.Equal(got, want) {
		t.Errorf("Run: console lines\n  %q\nwant\n  %q", got, want)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("Run: OnLine saw %q, want %q", seen, want)
	}
	if res.ExitCode != 1 || res.TimedOut || res.Stopped {
		t.Errorf("Run: ExitCode %d TimedOut %v Stopped %v; want 1 false false", res.ExitCode, res.TimedOut, res.Stopped)
	}
	if !strings.Contains(string(res.Stderr), "a complaint") {
		t.Errorf("Run: Stderr = %q, want the complaint", res.Stderr)
	}
	if err := res.Report().Err(); err != nil {
		t.Errorf("Run: Report().Err() = %v", err)
	}
	if s := res.String(); !strings.Contains(s, "exit 1 after") || !strings.Contains(s, "] PASS: a: b") || !strings.Contains(s, "a complaint") {
		t.Errorf("Result.String() lacks outcome, console or stderr:\n%s", s)
	}
	for i := 1; i < len(res.Lines); i++ {
		if res.Lines[i].At < res.Lines[i-1].At {
			t.Errorf("Run: line %d at %v before line %d at %v", i, res.Lines[i].At, i-1, res.Lines[i-1].At)
		}
	}
}

// A guest that hangs (and a wrapper whose child keeps the console pipe open) is killed
// at the timeout; the output printed before is kept.
func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "survived")
	bin := fakeQEMU(t, `
echo 'Network boot starting...'
(sleep 1.5; touch `+marker+`) &
sleep 60
`)
	start := time.Now()
	res, err := RunCommand(context.Background(), bin, nil, 500*time.Millisecond, RunOptions{})
	if err != nil {
		t.Fatalf("RunCommand error %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("RunCommand took %v after a 500ms timeout", took)
	}
	if !res.TimedOut || res.ExitCode != -1 {
		t.Errorf("RunCommand: TimedOut %v ExitCode %d; want true -1", res.TimedOut, res.ExitCode)
	}
	if !res.Contains("Network boot starting...") {
		t.Errorf("RunCommand: console %q lost the line printed before the hang", res.Texts())
	}
	if !strings.Contains(res.Outcome(), "timed out") {
		t.Errorf("Outcome() = %q, want timed out", res.Outcome())
	}
	time.Sleep(2 * time.Second)
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a child of the fake QEMU survived the kill and ran to the end")
	}
}

func TestRunContextCancel(t *testing.T) {
	bin := fakeQEMU(t, "sleep 60\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := RunCommand(ctx, bin, nil, time.Minute, RunOptions{})
	if err != nil || !res.TimedOut || res.Elapsed > 5*time.Second {
		t.Errorf("RunCommand with a cancelled context = %+v, %v; want TimedOut quickly", res, err)
	}
}

func TestRunStopAt(t *testing.T) {
	bin := fakeQEMU(t, `
echo 'LOADPARM=[        ]'
echo 'Network boot starting...'
sleep 60
echo 'never'
`)
	res, err := RunCommand(context.Background(), bin, nil, 20*time.Second, RunOptions{StopAt: regexp.MustCompile(`^Network boot starting`)})
	if err != nil {
		t.Fatalf("RunCommand error %v", err)
	}
	if !res.Stopped || res.TimedOut || res.Elapsed > 5*time.Second {
		t.Errorf("RunCommand: Stopped %v TimedOut %v after %v; want stopped quickly", res.Stopped, res.TimedOut, res.Elapsed)
	}
	l, ok := res.First(regexp.MustCompile(`^Network boot`))
	if !ok || l.At <= 0 || l.At > res.Elapsed {
		t.Errorf("First(Network boot) = %+v, %v; want a time within the run (%v)", l, ok, res.Elapsed)
	}
}

func TestRunMissingBinary(t *testing.T) {
	c := Config{Binary: filepath.Join(t.TempDir(), "no-such-qemu"), Image: "/x.img"}
	if _, err := Run(context.Background(), c, RunOptions{}); err == nil {
		t.Errorf("Run(%+v) succeeded with a missing binary", c)
	}
	if _, err := Run(context.Background(), Config{}, RunOptions{}); err == nil {
		t.Errorf("Run(Config{}) succeeded without an image")
	}
}

// CPU time is sampled per line: a fake QEMU that burns CPU between two lines shows it.
func TestRunSamplesCPU(t *testing.T) {
	bin := fakeQEMU(t, `
echo start
i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done
echo end
`)
	res, err := RunCommand(context.Background(), bin, nil, 30*time.Second, RunOptions{})
	if err != nil || len(res.Lines) != 2 {
		t.Fatalf("RunCommand = %v, %v", res, err)
	}
	if d := res.Lines[1].CPU - res.Lines[0].CPU; d <= 0 {
		t.Errorf("CPU between lines = %v (%v → %v), want > 0", d, res.Lines[0].CPU, res.Lines[1].CPU)
	}
	if res.CPU < res.Lines[1].CPU {
		t.Errorf("Result.CPU %v < last line's CPU %v", res.CPU, res.Lines[1].CPU)
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{stat: "1234 (qemu-system-s39) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0 100 1000 10 0",
			want: 2870 * time.Millisecond},
		{stat: "99 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 3 4 0 0", want: 70 * time.Millisecond},
		{stat: "99 no parens", wantErr: true},
		{stat: "99 (x) R 1 2", wantErr: true},
		{stat: "99 (x) R 1 2 3 4 5 6 7 8 9 10 x 4 0 0", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseStatCPU(tt.stat)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v (error %v)", tt.stat, got, err, tt.want, tt.wantErr)
		}
	}
}
