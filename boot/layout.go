package boot

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Layout places the kernel and the initrds in guest RAM. Call PlaceKernel first, then
// PlaceInitrd for each initrd in order. The zero Layout has no RAM.
type Layout struct {
	// RAM is the end of guest RAM (the first address that is not RAM).
	RAM uint64
	// Kernel is the kernel image at 0 (set by PlaceKernel).
	Kernel Range
	// Initrds are the initrds in order, each starting on a 4 KiB boundary after the previous.
	Initrds []Range
}

// PlaceKernel puts a kernel of size bytes at 0.
func (l *Layout) PlaceKernel(size uint64) (Range, error) {
	r := Range{0, size}
	if size == 0 {
		return Range{}, fmt.Errorf("boot: kernel image is empty")
	}
	if r.End() > l.RAM {
		return Range{}, fmt.Errorf("boot: kernel %s of %s does not fit in %s of RAM", r, mib(size), mib(l.RAM))
	}
	l.Kernel, l.Initrds = r, nil
	return r, nil
}

// NextInitrd is where the next initrd starts: the 4 KiB boundary after the kernel or after the
// previous initrd (syslinux's padding, pxecfg.InitrdAlign).
func (l *Layout) NextInitrd() uint64 {
	if n := len(l.Initrds); n > 0 {
		return alignUp(l.Initrds[n-1].End(), PageSize)
	}
	return alignUp(max(l.Kernel.End(), LowcoreSize), PageSize)
}

// Room is how many bytes the next initrd may have.
func (l *Layout) Room() uint64 {
	if s := l.NextInitrd(); s < l.RAM {
		return l.RAM - s
	}
	return 0
}

// PlaceInitrd puts the next initrd of size bytes after the kernel and the earlier initrds.
// name is used in the error.
func (l *Layout) PlaceInitrd(name string, size uint64) (Range, error) {
	if l.Kernel.Empty() {
		return Range{}, fmt.Errorf("boot: initrd %q placed before the kernel", name)
	}
	r := Range{l.NextInitrd(), size}
	if r.End() > l.RAM || r.End() < r.Start {
		return Range{}, fmt.Errorf("boot: initrd %q of %s at %#x does not fit in %s of RAM (%s free after the kernel and earlier initrds)",
			name, mib(size), r.Start, mib(l.RAM), mib(l.Room()))
	}
	l.Initrds = append(l.Initrds, r)
	return r, nil
}

// DeclareInitrdSize makes the combined initrd the kernel sees n bytes long, as an .INS file's
// initrd.siz (or initrd.addrsize) declares: shorter than what was loaded cuts the last initrd,
// longer is an error (the kernel would read past the data).
func (l *Layout) DeclareInitrdSize(n uint64) error {
	ir := l.Initrd()
	if ir.Empty() {
		return fmt.Errorf("boot: an initrd size of %d bytes is declared, but there is no initrd", n)
	}
	if n > ir.Size {
		return fmt.Errorf("boot: the declared initrd size %d is larger than the %d bytes loaded", n, ir.Size)
	}
	last := &l.Initrds[len(l.Initrds)-1]
	cut := ir.Size - n
	if cut >= last.Size {
		return fmt.Errorf("boot: the declared initrd size %d ends before the last initrd %s", n, *last)
	}
	last.Size -= cut
	return nil
}

// Initrd is the combined initrd the kernel sees (empty without initrds).
func (l *Layout) Initrd() Range {
	if len(l.Initrds) == 0 {
		return Range{}
	}
	s, e := l.Initrds[0].Start, l.Initrds[len(l.Initrds)-1].End()
	return Range{s, e - s}
}

// mib formats a byte count for messages: "5066752 bytes" below 1 MiB... "4.8 MiB" above.
func mib(n uint64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// MemInfo is what /proc/meminfo says. The zero MemInfo has no RAM.
type MemInfo struct {
	Total, Free uint64 // bytes (MemTotal, MemFree)
}

// ParseMeminfo reads MemTotal and MemFree from /proc/meminfo.
func ParseMeminfo(data []byte) (MemInfo, error) {
	var m MemInfo
	var seen int
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || (f[0] != "MemTotal:" && f[0] != "MemFree:") {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || n > 1<<50 || (len(f) > 2 && f[2] != "kB") {
			return MemInfo{}, fmt.Errorf("boot: /proc/meminfo: bad line %q", s.Text())
		}
		if f[0] == "MemTotal:" {
			m.Total, seen = n<<10, seen|1
		} else {
			m.Free, seen = n<<10, seen|2
		}
	}
	if seen&1 == 0 {
		return MemInfo{}, fmt.Errorf("boot: /proc/meminfo: no MemTotal line")
	}
	if seen&2 == 0 {
		m.Free = m.Total
	}
	return m, nil
}

// IOMem is what /proc/iomem says: RAM and the ranges in it that are in use.
// The zero IOMem lists nothing.
type IOMem struct {
	// RAM are the "System RAM" ranges.
	RAM []Range
	// Used are all other ranges ("Kernel code", "Kernel data", "Reserved", …), nested or not,
	// each with its name.
	Used []NamedRange
}

// NamedRange is a Range with its /proc/iomem name.
type NamedRange struct {
	Range
	Name string
}

// RAMEnd is the end of the highest System RAM range.
func (m IOMem) RAMEnd() uint64 {
	var e uint64
	for _, r := range m.RAM {
		e = max(e, r.End())
	}
	return e
}

// ParseIOMem reads /proc/iomem: lines "start-end : name" with hex bounds, the end inclusive,
// nested entries indented.
func ParseIOMem(data []byte) (IOMem, error) {
	var m IOMem
	s := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		span, name, ok := strings.Cut(line, " : ")
		lo, hi, ok2 := strings.Cut(span, "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil || b < a || b == ^uint64(0) {
			return IOMem{}, fmt.Errorf("boot: /proc/iomem:%d: bad line %q", n, s.Text())
		}
		r := Range{a, b - a + 1}
		if name = strings.TrimSpace(name); name == "System RAM" {
			m.RAM = append(m.RAM, r)
		} else {
			m.Used = append(m.Used, NamedRange{r, name})
		}
	}
	return m, nil
}
