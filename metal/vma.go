package metal

// Virtual memory areas of the loader's single address space: a sorted fixed array of
// non-overlapping [start, end) ranges with split and merge. Pure Go, host-tested.

// Protection bits, as in Linux mmap(2).
const (
	protRead  = 0x1 // PROT_READ
	protWrite = 0x2 // PROT_WRITE
	protExec  = 0x4 // PROT_EXEC
)

// vma kinds.
const (
	vmaAnon   = iota // demand-zero anonymous memory
	vmaImage         // read-only pages of the payload, mapped in place at phys + (va - start)
	vmaDevMem        // /dev/mem: guest-physical memory at phys + (va - start), frames reserved
)

// hasPhys reports whether VMAs of kind k map a fixed physical range (phys moves with splits).
func hasPhys(k uint8) bool { return k == vmaImage || k == vmaDevMem }

const maxVMAs = 1024

type vma struct {
	start, end uint64
	prot       uint8
	kind       uint8
	phys       uint64 // vmaImage, vmaDevMem: physical address of start
}

type vmaTable struct {
	n int
	v [maxVMAs]vma
}

// find returns the index of the VMA containing addr, or -1.
func (t *vmaTable) find(addr uint64) int {
	lo, hi := 0, t.n
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case addr < t.v[m].start:
			hi = m
		case addr >= t.v[m].end:
			lo = m + 1
		default:
			return m
		}
	}
	return -1
}

// isFree reports whether no VMA intersects [start, end).
func (t *vmaTable) isFree(start, end uint64) bool {
	for i := 0; i < t.n; i++ {
		if t.v[i].start < end && start < t.v[i].end {
			return false
		}
	}
	return true
}

// remove deletes [start, end) from every VMA, splitting those that straddle the bounds.
// It reports false when the table would overflow.
func (t *vmaTable) remove(start, end uint64) bool {
	for i := 0; i < t.n; i++ {
		v := t.v[i]
		if v.end <= start || v.start >= end {
			continue
		}
		switch {
		case v.start < start && v.end > end: // split in two
			if t.n == maxVMAs {
				return false
			}
			copy(t.v[i+2:t.n+1], t.v[i+1:t.n])
			t.n++
			t.v[i].end = start
			t.v[i+1] = v
			t.v[i+1].start = end
			if hasPhys(v.kind) {
				t.v[i+1].phys = v.phys + (end - v.start)
			}
			return true
		case v.start < start: // keep the head
			t.v[i].end = start
		case v.end > end: // keep the tail
			t.v[i].start = end
			if hasPhys(v.kind) {
				t.v[i].phys = v.phys + (end - v.start)
			}
		default: // fully covered
			copy(t.v[i:t.n-1], t.v[i+1:t.n])
			t.n--
			i--
		}
	}
	return true
}

// insert adds v, replacing whatever covered its range, and merges it with equal neighbours.
// It reports false when the table is full.
func (t *vmaTable) insert(v vma) bool {
	if !t.remove(v.start, v.end) {
		return false
	}
	if t.n == maxVMAs {
		return false
	}
	i := 0
	for i < t.n && t.v[i].start < v.start {
		i++
	}
	copy(t.v[i+1:t.n+1], t.v[i:t.n])
	t.v[i] = v
	t.n++
	t.mergeAround(i)
	return true
}

func mergeable(a, b *vma) bool {
	if a.end != b.start || a.prot != b.prot || a.kind != b.kind {
		return false
	}
	return !hasPhys(a.kind) || a.phys+(a.end-a.start) == b.phys
}

func (t *vmaTable) mergeAround(i int) {
	if i+1 < t.n && mergeable(&t.v[i], &t.v[i+1]) {
		t.v[i].end = t.v[i+1].end
		copy(t.v[i+1:t.n-1], t.v[i+2:t.n])
		t.n--
	}
	if i > 0 && mergeable(&t.v[i-1], &t.v[i]) {
		t.v[i-1].end = t.v[i].end
		copy(t.v[i:t.n-1], t.v[i+1:t.n])
		t.n--
	}
}

// protect sets prot on [start, end). Every byte of the range must be mapped (else false, as
// Linux's ENOMEM). Image pages keep their kind.
func (t *vmaTable) protect(start, end uint64, prot uint8) bool {
	for a := start; a < end; {
		i := t.find(a)
		if i < 0 {
			return false
		}
		a = t.v[i].end
	}
	for a := start; a < end; {
		i := t.find(a)
		v := t.v[i]
		s, e := max(v.start, start), min(v.end, end)
		nv := v
		nv.start, nv.end, nv.prot = s, e, prot
		if hasPhys(v.kind) {
			nv.phys = v.phys + (s - v.start)
		}
		if !t.insert(nv) {
			return false
		}
		a = e
	}
	return true
}

// gapBelow returns the highest page-aligned start of a free range of size n ending at or below
// limit and starting at or above floor; ok is false when there is none.
func (t *vmaTable) gapBelow(n, floor, limit uint64) (start uint64, ok bool) {
	top := limit
	for i := t.n - 1; i >= -1; i-- {
		var lo uint64 // end of the VMA below the gap
		if i >= 0 {
			if t.v[i].start >= top {
				continue
			}
			lo = t.v[i].end
			if lo > top {
				top = min(top, t.v[i].start)
				continue
			}
		}
		lo = max(lo, floor)
		if top >= lo+n && top-n >= lo {
			return top - n, true
		}
		if i >= 0 {
			top = t.v[i].start
		}
		if top <= floor {
			break
		}
	}
	return 0, false
}
