package metal

// TOD clock conversions, PoP 4.6.1: bit 51 of the TOD clock is one microsecond, so one TOD
// unit is 1/4096 µs = 125/512 ns.

// todEpoch1970 is the TOD value of 1970-01-01 00:00:00 UTC.
const todEpoch1970 = 0x7d91048bca000000

// todPerSecond is the number of TOD units in one second.
const todPerSecond = 4096000000

func todToNs(t uint64) uint64 { return (t>>9)*125 + (t&511)*125>>9 }

// nsToTOD converts a duration, rounding up, and saturates instead of overflowing.
func nsToTOD(ns uint64) uint64 {
	if ns > 1<<52 {
		return 1 << 62
	}
	return (ns*512 + 124) / 125
}

// timespecToNs converts a relative timespec; ok is false for a negative or malformed one.
func timespecToNs(sec, nsec int64) (uint64, bool) {
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, false
	}
	if sec > 1<<32 {
		sec = 1 << 32
	}
	return uint64(sec)*1e9 + uint64(nsec), true
}
