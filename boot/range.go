package boot

import "fmt"

// PageSize is the s390x page size; kexec segments are aligned to it.
const PageSize = 4096

// Range is the guest-physical range [Start, Start+Size). The zero Range is empty.
type Range struct {
	Start, Size uint64
}

// End is the first address after r.
func (r Range) End() uint64 { return r.Start + r.Size }

// Empty reports whether r holds no byte.
func (r Range) Empty() bool { return r.Size == 0 }

// Overlaps reports whether r and o share a byte.
func (r Range) Overlaps(o Range) bool {
	return !r.Empty() && !o.Empty() && r.Start < o.End() && o.Start < r.End()
}

// Contains reports whether o lies inside r (an empty o is inside any r).
func (r Range) Contains(o Range) bool {
	return o.Empty() || (o.Start >= r.Start && o.End() <= r.End())
}

// Intersect is the common part of r and o (empty if none).
func (r Range) Intersect(o Range) Range {
	s, e := max(r.Start, o.Start), min(r.End(), o.End())
	if s >= e {
		return Range{}
	}
	return Range{s, e - s}
}

// String formats r as "[0x10000, 0x2a0000)".
func (r Range) String() string { return fmt.Sprintf("[%#x, %#x)", r.Start, r.End()) }

// alignUp rounds n up to a multiple of a (a power of two).
func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// alignDown rounds n down to a multiple of a (a power of two).
func alignDown(n, a uint64) uint64 { return n &^ (a - 1) }

// pageRange widens r to whole pages.
func pageRange(r Range) Range {
	s, e := alignDown(r.Start, PageSize), alignUp(r.End(), PageSize)
	return Range{s, e - s}
}
