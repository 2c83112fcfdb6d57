package tftp

import (
	"testing"
	"time"
)

func TestRTOEstimator(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		name    string
		samples []time.Duration
		backoff int
		want    time.Duration
	}{
		{"initial", nil, 0, 1000 * ms},
		{"first sample: srtt + 4·(srtt/2)", []time.Duration{30 * ms}, 0, 100 * ms},       // 30 + 60 = 90, clamped to 100
		{"slow path", []time.Duration{400 * ms}, 0, 1200 * ms},                           // 400 + 4·200
		{"steady", []time.Duration{400 * ms, 400 * ms, 400 * ms, 400 * ms}, 0, 737 * ms}, // rttvar 200 → 84.375
		{"backoff doubles", []time.Duration{400 * ms}, 1, 2400 * ms},
		{"backoff capped", []time.Duration{400 * ms}, 5, 4000 * ms},
		{"negative sample ignored", []time.Duration{-5 * ms}, 0, 1000 * ms},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newRTO(time.Second, 100*ms, 4*time.Second)
			for _, s := range tt.samples {
				e.sample(s)
			}
			for i := 0; i < tt.backoff; i++ {
				e.backoff()
			}
			if got := e.current().Truncate(ms); got != tt.want {
				t.Errorf("samples %v, %d backoffs: rto = %v, want %v", tt.samples, tt.backoff, got, tt.want)
			}
		})
	}
}
