package qemu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Check is one PASS:, FAIL: or SKIP: line of a self-test.
type Check struct {
	// Name is the text after the tag, e.g. "goroutines: 10000 live" or
	// "time: sleep 200ms (took 231ms)".
	Name string
	// Line is the console line number (0-based) it came from.
	Line int
}

// Summary is a `SUMMARY: N tests, M failures[, K skipped]` line.
type Summary struct {
	Tests, Failures, Skipped int
}

// Report is the kvm-unit-tests style output of an in-guest self-test (style B19):
//
//	PASS: <group>: <what>
//	FAIL: <group>: <what> (<details>)
//	SKIP: <group>: <what> (<reason>)
//	SUMMARY: <N> tests, <M> failures[, <K> skipped]
//	EXIT: STATUS=<n>
//
// Tags count only at the start of a line. The zero Report has seen nothing.
type Report struct {
	Pass, Fail, Skip []Check
	// Summary is the last SUMMARY line, nil if there was none.
	Summary *Summary
	// ExitStatus is the last `EXIT: STATUS=n` line's n, nil if there was none.
	ExitStatus *int
	// Malformed lists tagged lines that did not parse (e.g. "SUMMARY: many tests").
	Malformed []string
}

// ParseReport extracts the self-test lines from console lines.
func ParseReport(lines []string) Report {
	var r Report
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "PASS: "):
			r.Pass = append(r.Pass, Check{Name: l[len("PASS: "):], Line: i})
		case strings.HasPrefix(l, "FAIL: "):
			r.Fail = append(r.Fail, Check{Name: l[len("FAIL: "):], Line: i})
		case strings.HasPrefix(l, "SKIP: "):
			r.Skip = append(r.Skip, Check{Name: l[len("SKIP: "):], Line: i})
		case strings.HasPrefix(l, "SUMMARY:"):
			s, err := parseSummary(l)
			if err != nil {
				r.Malformed = append(r.Malformed, l)
				continue
			}
			r.Summary = &s
		case strings.HasPrefix(l, "EXIT:"):
			n, err := parseExit(l)
			if err != nil {
				r.Malformed = append(r.Malformed, l)
				continue
			}
			r.ExitStatus = &n
		}
	}
	return r
}

// parseSummary reads "SUMMARY: 12 tests, 1 failures" with an optional ", 2 skipped".
func parseSummary(l string) (Summary, error) {
	var s Summary
	rest := strings.TrimSpace(strings.TrimPrefix(l, "SUMMARY:"))
	parts := strings.Split(rest, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return s, fmt.Errorf("qemu: parse %q: want N tests, M failures[, K skipped]", l)
	}
	fields := []struct {
		dst  *int
		unit []string
	}{
		{&s.Tests, []string{"tests", "test"}},
		{&s.Failures, []string{"failures", "failure", "unexpected failures"}},
		{&s.Skipped, []string{"skipped"}},
	}
	for i, p := range parts {
		num, unit, ok := strings.Cut(strings.TrimSpace(p), " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || !oneOf(unit, fields[i].unit) {
			return s, fmt.Errorf("qemu: parse %q: field %q: want N %s", l, p, fields[i].unit[0])
		}
		*fields[i].dst = n
	}
	return s, nil
}

// parseExit reads "EXIT: STATUS=3".
func parseExit(l string) (int, error) {
	v, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(l, "EXIT:")), "STATUS=")
	if !ok {
		return 0, fmt.Errorf("qemu: parse %q: want EXIT: STATUS=n", l)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("qemu: parse %q: %w", l, err)
	}
	return n, nil
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// Passed returns the PASS line whose name starts with prefix.
func (r Report) Passed(prefix string) (Check, bool) { return find(r.Pass, prefix) }

// Failed returns the FAIL line whose name starts with prefix.
func (r Report) Failed(prefix string) (Check, bool) { return find(r.Fail, prefix) }

// Skipped returns the SKIP line whose name starts with prefix.
func (r Report) Skipped(prefix string) (Check, bool) { return find(r.Skip, prefix) }

func find(cs []Check, prefix string) (Check, bool) {
	for _, c := range cs {
		if strings.HasPrefix(c.Name, prefix) {
			return c, true
		}
	}
	return Check{}, false
}

// Errors for Report.Err, so callers can tell the cases apart.
var (
	ErrNoSummary = errors.New("no SUMMARY line")
	ErrFailures  = errors.New("self-test failures")
	ErrMismatch  = errors.New("SUMMARY disagrees with the PASS/FAIL/SKIP lines")
	ErrExit      = errors.New("non-zero EXIT status")
	ErrMalformed = errors.New("malformed report line")
)

// Err says whether the report describes a complete, successful self-test: a SUMMARY line
// that agrees with the lines seen, no failures, no malformed lines, and, if an EXIT line
// was printed, status 0. The error names every problem found.
func (r Report) Err() error {
	var errs []error
	if len(r.Malformed) > 0 {
		errs = append(errs, fmt.Errorf("%w: %q", ErrMalformed, r.Malformed))
	}
	for _, f := range r.Fail {
		errs = append(errs, fmt.Errorf("%w: FAIL: %s", ErrFailures, f.Name))
	}
	if r.Summary == nil {
		errs = append(errs, ErrNoSummary)
	} else {
		s := *r.Summary
		if s.Tests != len(r.Pass)+len(r.Fail) || s.Failures != len(r.Fail) || s.Skipped != len(r.Skip) {
			errs = append(errs, fmt.Errorf("%w: SUMMARY %d tests, %d failures, %d skipped; lines %d PASS, %d FAIL, %d SKIP",
				ErrMismatch, s.Tests, s.Failures, s.Skipped, len(r.Pass), len(r.Fail), len(r.Skip)))
		}
		if s.Failures > 0 && len(r.Fail) == 0 {
			errs = append(errs, fmt.Errorf("%w: SUMMARY reports %d", ErrFailures, s.Failures))
		}
	}
	if r.ExitStatus != nil && *r.ExitStatus != 0 {
		errs = append(errs, fmt.Errorf("%w: EXIT: STATUS=%d", ErrExit, *r.ExitStatus))
	}
	return errors.Join(errs...)
}
