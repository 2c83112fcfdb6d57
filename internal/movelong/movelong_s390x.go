package movelong

// minLong is the size from which Copy uses MVCLE: below it one or two MVCs (what copy() compiles
// to) cost no more than MVCLE's setup.
const minLong = 512

// Copy copies min(len(dst), len(src)) bytes from src to dst, as copy does, and returns that
// count. Overlapping slices are copied with copy (MVCLE's result is unpredictable for a
// destructive overlap).
func Copy(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n < minLong || overlap(dst[:n], src[:n]) {
		return copy(dst, src)
	}
	moveLong(&dst[0], &src[0], uintptr(n))
	return n
}

// moveLong copies n > 0 bytes from src to dst with MVCLE (movelong_s390x.s).
//
//go:noescape
func moveLong(dst, src *byte, n uintptr)
