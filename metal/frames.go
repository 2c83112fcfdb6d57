package metal

import "netipl/metal/internal/phys"

// frames is the physical frame allocator: a bitmap over every 4 KiB frame of RAM (1 = free)
// that hands out frames from the top of RAM downwards, so low memory (the payload zone a Linux
// kernel is later loaded into) stays free as long as possible. It is pure Go over a caller-supplied
// bitmap: no allocation, host-tested.
type frames struct {
	base   uintptr // address of the bitmap: one bit per frame, 1 = free (a uintptr, so no write barriers)
	words  uintptr // length of the bitmap in uint64s
	n      uint64  // frames covered by bits
	free   uint64  // count of free frames
	cursor uint64  // every frame at index >= cursor is in use; searches start below it
	low    uint64  // lowest free count ever seen (watermark)
}

// init covers n frames, all in use; addFree then releases ranges.
func (f *frames) init(base uintptr, n uint64) {
	f.base = base
	f.words = uintptr(n+63) / 64
	f.n = n
	clear(f.bits())
	f.free = 0
	f.cursor = 0
	f.low = 0
}

// addFree marks frames [lo, hi) free.
func (f *frames) addFree(lo, hi uint64) {
	if hi > f.n {
		hi = f.n
	}
	for i := lo; i < hi; i++ {
		f.release(i)
	}
	f.low = f.free
}

func (f *frames) bits() []uint64 { return phys.Words(f.base, f.words) }

func (f *frames) isFree(i uint64) bool { return f.bits()[i/64]&(1<<(i%64)) != 0 }

// alloc takes the highest free frame. ok is false when none is left.
func (f *frames) alloc() (pfn uint64, ok bool) {
	bits := f.bits()
	i := f.cursor
	for i > 0 {
		w := (i - 1) / 64
		word := bits[w]
		// mask off bits at or above i within this word
		top := (i-1)%64 + 1
		if top < 64 {
			word &= (1 << top) - 1
		}
		if word != 0 {
			b := uint64(63)
			for word&(1<<b) == 0 {
				b--
			}
			pfn = w*64 + b
			bits[w] &^= 1 << b
			f.free--
			if f.free < f.low {
				f.low = f.free
			}
			f.cursor = pfn // nothing above pfn is free; release raises the cursor again
			return pfn, true
		}
		i = w * 64
	}
	return 0, false
}

// allocRun takes the highest run of n contiguous free frames whose first frame is a multiple of n.
func (f *frames) allocRun(n uint64) (pfn uint64, ok bool) {
	if n == 1 {
		return f.alloc()
	}
	bits := f.bits()
	start := f.cursor / n * n
	for start >= n {
		start -= n
		all := true
		for j := uint64(0); j < n; j++ {
			if !f.isFree(start + j) {
				all = false
				break
			}
		}
		if all {
			for j := uint64(0); j < n; j++ {
				bits[(start+j)/64] &^= 1 << ((start + j) % 64)
			}
			f.free -= n
			if f.free < f.low {
				f.low = f.free
			}
			return start, true
		}
	}
	return 0, false
}

// release returns frame pfn. Releasing a free frame is ignored (and reported false).
func (f *frames) release(pfn uint64) bool {
	if pfn >= f.n || f.isFree(pfn) {
		return false
	}
	f.bits()[pfn/64] |= 1 << (pfn % 64)
	f.free++
	if pfn+1 > f.cursor {
		f.cursor = pfn + 1
	}
	return true
}

// claim marks frames [lo, hi) in use if every one of them is free (a /dev/mem mapping
// reserves them); it reports false, changing nothing, when one is in use or out of range.
func (f *frames) claim(lo, hi uint64) bool {
	if lo > hi || hi > f.n {
		return false
	}
	for i := lo; i < hi; i++ {
		if !f.isFree(i) {
			return false
		}
	}
	bits := f.bits()
	for i := lo; i < hi; i++ {
		bits[i/64] &^= 1 << (i % 64)
	}
	f.free -= hi - lo
	if f.free < f.low {
		f.low = f.free
	}
	return true
}

// nextUsedRun returns the first run [lo, hi) of in-use frames at or above from; ok is false
// when every frame from there on is free.
func (f *frames) nextUsedRun(from uint64) (lo, hi uint64, ok bool) {
	i := from
	for i < f.n && f.isFree(i) {
		i++
	}
	if i >= f.n {
		return 0, 0, false
	}
	lo = i
	for i < f.n && !f.isFree(i) {
		i++
	}
	return lo, i, true
}

// allocBelow takes the highest free frame below limit (a frame number).
func (f *frames) allocBelow(limit uint64) (pfn uint64, ok bool) {
	c := f.cursor
	if limit < c {
		f.cursor = limit
	}
	pfn, ok = f.alloc()
	if c > f.cursor {
		f.cursor = c // frames at or above the old cursor are still all in use
	}
	return pfn, ok
}
