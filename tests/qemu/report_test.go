package qemu

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReport(t *testing.T) {
	console := strings.Split(strings.Join([]string{
		"metal: booting",
		"PASS: goroutines: 10000 live",
		"FAIL: time: sleep 200ms (took 260ms)\r",
		"  PASS: indented lines are not tags",
		"SKIP: platform: /proc/meminfo (not on metal)",
		"PASS: maps: 100000 keys",
		"SUMMARY: 3 tests, 1 failures, 1 skipped",
		"EXIT: STATUS=1",
	}, "\n"), "\n")
	r := ParseReport(console)
	if got := len(r.Pass); got != 2 {
		t.Errorf("ParseReport: %d PASS, want 2: %+v", got, r.Pass)
	}
	if c, ok := r.Failed("time:"); !ok || c.Name != "time: sleep 200ms (took 260ms)" || c.Line != 2 {
		t.Errorf("ParseReport: Failed(time:) = %+v, %v; want line 2 without \\r", c, ok)
	}
	if _, ok := r.Skipped("platform:"); !ok {
		t.Errorf("ParseReport: no SKIP platform:")
	}
	if r.Summary == nil || *r.Summary != (Summary{Tests: 3, Failures: 1, Skipped: 1}) {
		t.Errorf("ParseReport: Summary = %+v, want {3 1 1}", r.Summary)
	}
	if r.ExitStatus == nil || *r.ExitStatus != 1 {
		t.Errorf("ParseReport: ExitStatus = %v, want 1", r.ExitStatus)
	}
	err := r.Err()
	if !errors.Is(err, ErrFailures) || !errors.Is(err, ErrExit) || errors.Is(err, ErrMismatch) {
		t.Errorf("Err() = %v, want ErrFailures and ErrExit only", err)
	}
	if !strings.Contains(err.Error(), "FAIL: time: sleep 200ms (took 260ms)") {
		t.Errorf("Err() = %v, want the failing line quoted", err)
	}
}

func TestReportErr(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  error // nil: success
	}{
		{"clean", []string{"PASS: a: b", "PASS: a: c", "SUMMARY: 2 tests, 0 failures", "EXIT: STATUS=0"}, nil},
		{"clean without EXIT line", []string{"PASS: a: b", "SUMMARY: 1 tests, 0 failures"}, nil},
		{"singular units", []string{"PASS: a: b", "SUMMARY: 1 test, 0 failures"}, nil},
		{"truncated: no summary", []string{"PASS: a: b"}, ErrNoSummary},
		{"empty console", nil, ErrNoSummary},
		{"summary counts a test never printed", []string{"PASS: a: b", "SUMMARY: 2 tests, 0 failures"}, ErrMismatch},
		{"summary hides a failure", []string{"PASS: a: b", "FAIL: a: c", "SUMMARY: 2 tests, 0 failures"}, ErrFailures},
		{"summary claims a failure", []string{"PASS: a: b", "SUMMARY: 1 tests, 1 failures"}, ErrFailures},
		{"non-zero exit", []string{"PASS: a: b", "SUMMARY: 1 tests, 0 failures", "EXIT: STATUS=3"}, ErrExit},
		{"malformed summary", []string{"PASS: a: b", "SUMMARY: lots of tests", "SUMMARY: 1 tests, 0 failures"}, ErrMalformed},
		{"malformed exit", []string{"PASS: a: b", "SUMMARY: 1 tests, 0 failures", "EXIT: 0"}, ErrMalformed},
		{"negative count", []string{"SUMMARY: -1 tests, 0 failures"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParseReport(tt.lines).Err()
			if tt.want == nil {
				if err != nil {
					t.Errorf("ParseReport(%q).Err() = %v, want nil", tt.lines, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseReport(%q).Err() = %v, want %v", tt.lines, err, tt.want)
			}
		})
	}
}

// FuzzParseReport: any console text parses without panicking, every tagged line lands in
// exactly one place, and Err agrees with what was parsed.
func FuzzParseReport(f *testing.F) {
	f.Add("PASS: a: b\nFAIL: c: d (e)\nSKIP: f: g (h)\nSUMMARY: 2 tests, 1 failures, 1 skipped\nEXIT: STATUS=1")
	f.Add("SUMMARY: 1 test, 0 failures\nEXIT: STATUS=0\r\n")
	f.Add("SUMMARY: 9999999999999999999999 tests, 0 failures\nEXIT: STATUS=-3")
	f.Fuzz(func(t *testing.T, console string) {
		if len(console) > 4096 {
			return
		}
		lines := strings.Split(console, "\n")
		r := ParseReport(lines)
		checks, others := 0, 0 // PASS/FAIL/SKIP lines; SUMMARY/EXIT lines
		for _, l := range lines {
			l = strings.TrimRight(l, "\r")
			switch {
			case strings.HasPrefix(l, "PASS: "), strings.HasPrefix(l, "FAIL: "), strings.HasPrefix(l, "SKIP: "):
				checks++
			case strings.HasPrefix(l, "SUMMARY:"), strings.HasPrefix(l, "EXIT:"):
				others++
			}
		}
		if got := len(r.Pass) + len(r.Fail) + len(r.Skip); got != checks {
			t.Errorf("ParseReport(%q): %d PASS/FAIL/SKIP, want %d", console, got, checks)
		}
		if len(r.Malformed) > others {
			t.Errorf("ParseReport(%q): %d malformed of %d SUMMARY/EXIT lines", console, len(r.Malformed), others)
		}
		if err := r.Err(); err == nil && (r.Summary == nil || len(r.Fail) > 0 || len(r.Malformed) > 0) {
			t.Errorf("ParseReport(%q).Err() = nil for %+v", console, r)
		}
	})
}
