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

// addFree marks frames [lo, hi) free, a word of the bitmap at a time (a 16 GiB guest has
// 4 Mi frames: per-frame release took 16 ms of boot for 512 MiB under TCG).
func (f *frames) addFree(lo, hi uint64) {
	if hi > f.n {
		hi = f.n
	}
	if lo >= hi {
		f.low = f.free
		return
	}
	bits := f.bits()
	for w := lo / 64; w*64 < hi; w++ {
		m := spanMask(w, lo, hi)
		f.free += uint64(bitCount(m &^ bits[w]))
		bits[w] |= m
	}
	if hi > f.cursor {
		f.cursor = hi
	}
	f.low = f.free
}

// spanMask returns the bits of bitmap word w that stand for frames in [lo, hi) (lo < hi).
func spanMask(w, lo, hi uint64) uint64 {
	first := w * 64
	m := ^uint64(0)
	if lo > first {
		m <<= lo - first
	}
	if hi < first+64 {
		m &= 1<<(hi-first) - 1
	}
	return m
}

// bitCount is the number of set bits in x (pure arithmetic: metal calls no library code).
func bitCount(x uint64) int {
	x -= x >> 1 & 0x5555555555555555
	x = x&0x3333333333333333 + x>>2&0x3333333333333333
	x = (x + x>>4) & 0x0f0f0f0f0f0f0f0f
	return int(x * 0x0101010101010101 >> 56)
}

// lowestBit is the index of the lowest set bit of x (x != 0).
func lowestBit(x uint64) uint64 {
	return uint64(bitCount(x&-x - 1))
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
	if lo == hi {
		return true
	}
	bits := f.bits()
	for w := lo / 64; w*64 < hi; w++ {
		if m := spanMask(w, lo, hi); bits[w]&m != m {
			return false
		}
	}
	for w := lo / 64; w*64 < hi; w++ {
		bits[w] &^= spanMask(w, lo, hi)
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
	if from >= f.n {
		return 0, 0, false
	}
	lo, found := f.nextWithBit(from, false)
	if !found {
		return 0, 0, false
	}
	hi, found = f.nextWithBit(lo, true)
	if !found {
		hi = f.n
	}
	return lo, hi, true
}

// nextWithBit returns the first frame at or above from (below n) whose bit equals free, a word
// at a time.
func (f *frames) nextWithBit(from uint64, free bool) (uint64, bool) {
	bits := f.bits()
	for w := from / 64; w*64 < f.n; w++ {
		x := bits[w]
		if !free {
			x = ^x
		}
		x &= spanMask(w, max(from, w*64), min(f.n, w*64+64))
		if x != 0 {
			return w*64 + lowestBit(x), true
		}
	}
	return 0, false
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
