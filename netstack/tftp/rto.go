package tftp

import "time"

// rtoEstimator computes the retransmission timeout from round-trip samples the way RFC 6298 §2 does for TCP
// (SRTT, RTTVAR, RTO = SRTT + 4·RTTVAR, clamped), with exponential backoff on timeouts (§5.5). Callers apply
// Karn's rule: no sample from a round trip whose request was retransmitted.
type rtoEstimator struct {
	srtt, rttvar time.Duration
	rto          time.Duration
	min, max     time.Duration
	sampled      bool
}

func newRTO(initial, min, max time.Duration) rtoEstimator {
	e := rtoEstimator{min: min, max: max}
	e.rto = e.clamp(initial)
	return e
}

func (e *rtoEstimator) clamp(d time.Duration) time.Duration {
	if d < e.min {
		return e.min
	}
	if d > e.max {
		return e.max
	}
	return d
}

// sample feeds one measured round trip (RFC 6298 §2.2, §2.3 with alpha 1/8, beta 1/4).
func (e *rtoEstimator) sample(rtt time.Duration) {
	if rtt < 0 {
		return
	}
	if !e.sampled {
		e.srtt, e.rttvar, e.sampled = rtt, rtt/2, true
	} else {
		diff := e.srtt - rtt
		if diff < 0 {
			diff = -diff
		}
		e.rttvar = (3*e.rttvar + diff) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.rto = e.clamp(e.srtt + 4*e.rttvar)
}

// backoff doubles the timeout after an expiry (RFC 6298 §5.5).
func (e *rtoEstimator) backoff() { e.rto = e.clamp(2 * e.rto) }

// current is the timeout to use for the next wait.
func (e *rtoEstimator) current() time.Duration { return e.rto }
