package metal

import "testing"

func TestTODConversions(t *testing.T) {
	if got := todToNs(todPerSecond); got != 1e9 {
		t.Errorf("todToNs(1s) = %d", got)
	}
	if got := todToNs(4096); got != 1000 {
		t.Errorf("todToNs(1µs) = %d", got)
	}
	if got := nsToTOD(1e9); got != todPerSecond {
		t.Errorf("nsToTOD(1s) = %d", got)
	}
	if got := nsToTOD(1); got != 5 { // rounds up: 4.096 units
		t.Errorf("nsToTOD(1) = %d", got)
	}
	if _, ok := timespecToNs(0, 1e9); ok {
		t.Error("timespecToNs(0, 1e9) ok")
	}
	if ns, ok := timespecToNs(2, 5); !ok || ns != 2e9+5 {
		t.Errorf("timespecToNs(2,5) = %d, %v", ns, ok)
	}
	// 2026-01-01 in TOD units, checked against Linux's tod_to_unix.
	const unix2026 = 1767225600
	tod := uint64(todEpoch1970) + uint64(unix2026)*todPerSecond
	if got := todToNs(tod-todEpoch1970) / 1e9; got != unix2026 {
		t.Errorf("realtime seconds = %d, want %d", got, unix2026)
	}
}
