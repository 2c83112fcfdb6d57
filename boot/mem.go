package boot

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"netipl/internal/movelong"
)

// ChunkSize is the granularity of payload mappings: Mem maps 16 MiB at a time (a 1 GiB initrd
// takes 64 mappings; metal has a bounded number of VMAs). Buffered pieces are allocated only
// when first written.
const ChunkSize = 16 << 20

// ErrBusy is what a Mapper's error wraps when the range is in use by metal (mmap of /dev/mem
// answered EBUSY); Mem then keeps that range in loader memory instead.
var ErrBusy = errors.New("physical memory in use")

// Mapper maps guest-physical ranges into the loader: /dev/mem in the guest (DevMem), a file
// standing in for RAM in host mode and tests.
type Mapper interface {
	// Map maps r (page-aligned) read-write; an error wrapping ErrBusy means "not now, buffer it".
	Map(r Range) ([]byte, error)
	// Unmap releases a mapping Map returned.
	Unmap(b []byte) error
}

// MemStats counts how payload bytes reached memory (style B18).
type MemStats struct {
	Mapped    uint64 // bytes of chunks mapped in place
	Buffered  uint64 // bytes kept in loader memory (lowcore, metal's ranges, refused mappings)
	Fallbacks uint64 // mappings refused with ErrBusy and buffered instead
}

// Mem is guest-physical payload memory as an io.WriterAt and io.ReaderAt: offsets are physical
// addresses. Writes go to mapped chunks where possible and to buffers where not; Segments then
// lists what metal must place. Safe for concurrent use. The zero Mem is not usable; call NewMem.
type Mem struct {
	mu     sync.Mutex
	mapper Mapper
	ram    uint64
	used   []Range // never mapped: the lowcore and /proc/iomem's in-use ranges, page-aligned
	budget uint64
	chunks map[uint64][]*piece
	stats  MemStats
}

// piece is a page-aligned part of a chunk, mapped or buffered, with the extent written so far.
type piece struct {
	r      Range
	b      []byte
	mapped bool
	lo, hi uint64 // written extent, absolute; lo == hi means nothing written
}

// NewMem makes payload memory over m (nil: everything buffered) for RAM ending at ram. used are
// ranges that must never be mapped (besides the lowcore, which never is); budget bounds the
// bytes kept in loader memory.
func NewMem(m Mapper, ram uint64, used []Range, budget uint64) *Mem {
	u := []Range{{0, LowcoreSize}}
	for _, r := range used {
		if !r.Empty() {
			u = append(u, pageRange(r))
		}
	}
	slices.SortFunc(u, func(a, b Range) int { return cmpU64(a.Start, b.Start) })
	return &Mem{mapper: m, ram: ram, used: u, budget: budget, chunks: map[uint64][]*piece{}}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stats returns the counters.
func (m *Mem) Stats() MemStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// BufferEstimate is how many bytes of r would have to be kept in loader memory because they
// overlap the lowcore or metal's ranges (before any mapping is refused).
func (m *Mem) BufferEstimate(r Range) uint64 {
	var n uint64
	pr := Range{alignDown(r.Start, bufferGranule), alignUp(r.End(), bufferGranule) - alignDown(r.Start, bufferGranule)}
	for _, u := range m.used {
		n += u.Intersect(pr).Size
	}
	return n
}

// Budget is how many more bytes may be buffered.
func (m *Mem) Budget() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.budget - min(m.budget, m.stats.Buffered)
}

// isUsed reports whether page p (page-aligned address) lies in a used range.
func (m *Mem) isUsed(p uint64) bool {
	pr := Range{p, PageSize}
	for _, u := range m.used {
		if u.Overlaps(pr) {
			return true
		}
		if u.Start > p {
			break
		}
	}
	return false
}

// chunk returns the pieces of chunk i, creating them on first use.
func (m *Mem) chunk(i uint64) ([]*piece, error) {
	if ps, ok := m.chunks[i]; ok {
		return ps, nil
	}
	cr := Range{i * ChunkSize, ChunkSize}.Intersect(Range{0, m.ram})
	var ps []*piece
	for p := cr.Start; p < cr.End(); {
		used := m.isUsed(p)
		e := p + PageSize
		for e < cr.End() && m.isUsed(e) == used {
			e += PageSize
		}
		r := Range{p, min(e, cr.End()) - p}
		pcs, err := m.newPieces(r, !used && m.mapper != nil)
		if err != nil {
			for _, q := range ps {
				m.dropPiece(q)
			}
			return nil, err
		}
		ps = append(ps, pcs...)
		p = r.End()
	}
	m.chunks[i] = ps
	return ps, nil
}

// bufferGranule bounds a buffered piece, so a write allocates at most 1 MiB of loader memory.
const bufferGranule = 1 << 20

// newPieces maps r, or buffers it (in pieces of at most bufferGranule, allocated when first
// written) when it must not be mapped or metal refuses the mapping.
func (m *Mem) newPieces(r Range, mapIt bool) ([]*piece, error) {
	if mapIt {
		b, err := m.mapper.Map(r)
		switch {
		case err == nil && uint64(len(b)) == r.Size:
			m.stats.Mapped += r.Size
			return []*piece{{r: r, b: b, mapped: true}}, nil
		case err == nil:
			m.mapper.Unmap(b)
			return nil, fmt.Errorf("boot: map %s: got %d bytes", r, len(b))
		case !errors.Is(err, ErrBusy):
			return nil, fmt.Errorf("boot: map %s: %w", r, err)
		case r.Size > bufferGranule:
			// Part of the run is busy: map it 1 MiB at a time, buffering only what is refused.
			var ps []*piece
			for a := r.Start; a < r.End(); {
				e := min(alignDown(a, bufferGranule)+bufferGranule, r.End())
				sub, err := m.newPieces(Range{a, e - a}, true)
				if err != nil {
					for _, q := range ps {
						m.dropPiece(q)
					}
					return nil, err
				}
				ps = append(ps, sub...)
				a = e
			}
			return ps, nil
		}
		m.stats.Fallbacks++
	}
	var ps []*piece
	for a := r.Start; a < r.End(); {
		e := min(alignDown(a, bufferGranule)+bufferGranule, r.End())
		ps = append(ps, &piece{r: Range{a, e - a}}) // allocated on the first write (see fill)
		a = e
	}
	return ps, nil
}

// fill allocates a buffered piece's memory within the budget.
func (m *Mem) fill(p *piece) error {
	if p.mapped || p.b != nil {
		return nil
	}
	if m.stats.Buffered+p.r.Size > m.budget {
		return fmt.Errorf("boot: keeping %s in loader memory needs %s more than the %s it may use (RAM in use by netipl)",
			p.r, mib(m.stats.Buffered+p.r.Size-m.budget), mib(m.budget))
	}
	m.stats.Buffered += p.r.Size
	p.b = make([]byte, p.r.Size)
	return nil
}

func (m *Mem) dropPiece(p *piece) {
	if p.mapped {
		m.stats.Mapped -= p.r.Size
		m.mapper.Unmap(p.b)
	} else if p.b != nil {
		m.stats.Buffered -= p.r.Size
	}
}

// access calls f for each piece part covering [off, off+n), creating chunks when create is set.
func (m *Mem) access(off uint64, n int, create bool, f func(p *piece, at uint64, k int) error) error {
	if off+uint64(n) > m.ram || off+uint64(n) < off {
		return fmt.Errorf("boot: %s is beyond the end of RAM (%#x)", Range{off, uint64(n)}, m.ram)
	}
	for done := 0; done < n; {
		a := off + uint64(done)
		ps, ok := m.chunks[a/ChunkSize]
		if !ok {
			if !create {
				return fmt.Errorf("boot: read %s: nothing was written at %#x", Range{off, uint64(n)}, a)
			}
			var err error
			if ps, err = m.chunk(a / ChunkSize); err != nil {
				return err
			}
		}
		k := 0
		for _, p := range ps {
			if a >= p.r.Start && a < p.r.End() {
				k = int(min(uint64(n-done), p.r.End()-a))
				if err := f(p, a, done); err != nil {
					return err
				}
				break
			}
		}
		if k == 0 {
			return fmt.Errorf("boot: no memory piece holds %#x", a)
		}
		done += k
	}
	return nil
}

// WriteAt implements io.WriterAt; off is a guest-physical address.
func (m *Mem) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("boot: write at negative address %d", off)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.access(uint64(off), len(b), true, func(p *piece, a uint64, done int) error {
		if err := m.fill(p); err != nil {
			return err
		}
		dst, src := p.b[a-p.r.Start:], b[done:]
		var k int
		if &dst[0] == &src[0] {
			k = min(len(dst), len(src)) // memory WritableAt lent: the bytes are in place already
		} else {
			k = movelong.Copy(dst, src) // MVCLE on s390x: every TFTP block lands here
		}
		if p.lo == p.hi {
			p.lo, p.hi = a, a+uint64(k)
		} else {
			p.lo, p.hi = min(p.lo, a), max(p.hi, a+uint64(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// WritableAt lends the memory at guest-physical address off, so a reader can fill it without a
// copy: it returns the destination of [off, off+k) for some 0 < k <= n (up to the end of the
// mapped or buffered piece that holds off), or nil when off is not payload memory or a buffered
// piece does not fit the budget. The slice's capacity ends where its length does. Bytes written
// into it count only once committed with WriteAt(lent[:k], off), which recognises the memory
// and copies nothing; until then Segments ignores them.
func (m *Mem) WritableAt(off int64, n int) []byte {
	if off < 0 || n <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var lent []byte
	m.access(uint64(off), 1, true, func(p *piece, a uint64, _ int) error {
		if err := m.fill(p); err != nil {
			return err
		}
		i := a - p.r.Start
		j := i + min(uint64(n), p.r.End()-a)
		lent = p.b[i:j:j]
		return nil
	})
	return lent
}

// ReadAt implements io.ReaderAt over what was written (reading an untouched chunk is an error).
func (m *Mem) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("boot: read at negative address %d", off)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.access(uint64(off), len(b), false, func(p *piece, a uint64, done int) error {
		if p.b == nil {
			return fmt.Errorf("boot: read %s: nothing was written at %#x", Range{uint64(off), uint64(len(b))}, a)
		}
		copy(b[done:], p.b[a-p.r.Start:])
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// Zero writes zeros over r (padding between initrds: mapped RAM holds whatever was there).
func (m *Mem) Zero(r Range) error {
	z := make([]byte, min(r.Size, 64<<10))
	for a := r.Start; a < r.End(); {
		k := min(uint64(len(z)), r.End()-a)
		if _, err := m.WriteAt(z[:k], int64(a)); err != nil {
			return err
		}
		a += k
	}
	return nil
}

// Segment is one kexec segment: Buf goes to Mem. InPlace segments' Buf is the mapping of Mem
// itself (metal does not copy them).
type Segment struct {
	Buf     []byte
	Mem     Range
	InPlace bool
}

func (s Segment) String() string {
	how := "buffered"
	if s.InPlace {
		how = "in place"
	}
	return fmt.Sprintf("%s %s", s.Mem, how)
}

// Segments lists what was written as kexec segments: page-aligned, disjoint, sorted by address,
// each trimmed to the pages actually written.
func (m *Mem) Segments() []Segment {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Segment
	for _, ps := range m.chunks {
		for _, p := range ps {
			if p.lo == p.hi {
				continue
			}
			r := pageRange(Range{p.lo, p.hi - p.lo}).Intersect(p.r)
			out = append(out, Segment{Buf: p.b[r.Start-p.r.Start : r.End()-p.r.Start], Mem: r, InPlace: p.mapped})
		}
	}
	slices.SortFunc(out, func(a, b Segment) int { return cmpU64(a.Mem.Start, b.Mem.Start) })
	return out
}

// Close unmaps every mapping (host mode; in the guest the mappings live until the kexec).
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, ps := range m.chunks {
		for _, p := range ps {
			if p.mapped {
				if err := m.mapper.Unmap(p.b); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	m.chunks = map[uint64][]*piece{}
	return errors.Join(errs...)
}
