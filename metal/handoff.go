package metal

// The pure parts of the kernel handoff (docs/abi.md "handoff contract"): kexec_load segment
// validation, the copy plan the trampoline executes and where its pages may go, and
// /proc/iomem. Host-tested; handoff_s390x.go drives them.

// Linux kexec constants (include/uapi/linux/kexec.h, include/uapi/linux/reboot.h).
const (
	kexecArchDefault = 0
	kexecArchS390    = 22 << 16
	kexecMaxSegments = 16 * 1024  // docs/abi.md: more is EINVAL
	rebootKexec      = 0x45584543 // LINUX_REBOOT_CMD_KEXEC
	kexecEntryS390EP = 0x10000    // "S390EP" at 0x10008: start at 0x10000 in 64-bit mode
	kexecEntryIPLPSW = 0          // IPL semantics: the short PSW at absolute 0
	eADDRNOTAVAIL    = 99
)

// kexecSegment is struct kexec_segment (32 bytes on s390x): buf/bufsz in the loader's
// memory, mem/memsz the physical destination.
type kexecSegment struct {
	buf, bufsz, mem, memsz uint64
}

// validateKexec checks a kexec_load request as docs/abi.md says and sorts segs by
// destination. It returns 0 or a negative errno: EINVAL for flags other than the s390 or
// default architecture, an entry other than 0 or 0x10000, too many segments, unaligned or
// overlapping destinations, or bufsz > memsz; EADDRNOTAVAIL for a destination outside RAM.
func validateKexec(entry, flags uint64, segs []kexecSegment, ram uint64) int64 {
	if flags != kexecArchS390 && flags != kexecArchDefault {
		return -eINVAL // KEXEC_ON_CRASH, KEXEC_PRESERVE_CONTEXT or another architecture
	}
	if entry != kexecEntryS390EP && entry != kexecEntryIPLPSW {
		return -eINVAL
	}
	if len(segs) > kexecMaxSegments {
		return -eINVAL
	}
	for i := range segs {
		s := &segs[i]
		if s.mem%pageSize != 0 || s.memsz%pageSize != 0 || s.bufsz > s.memsz {
			return -eINVAL
		}
		if s.mem+s.memsz < s.mem || s.mem+s.memsz > ram {
			return -eADDRNOTAVAIL
		}
	}
	sortSegments(segs)
	for i := 1; i < len(segs); i++ {
		if segs[i-1].mem+segs[i-1].memsz > segs[i].mem {
			return -eINVAL
		}
	}
	return 0
}

// sortSegments sorts by destination (heap sort: no allocation, n log n for 16 Ki segments).
func sortSegments(s []kexecSegment) {
	n := len(s)
	for i := n/2 - 1; i >= 0; i-- {
		siftDown(s, i, n)
	}
	for end := n - 1; end > 0; end-- {
		s[0], s[end] = s[end], s[0]
		siftDown(s, 0, end)
	}
}

func siftDown(s []kexecSegment, i, n int) {
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && s[c+1].mem > s[c].mem {
			c++
		}
		if s[i].mem >= s[c].mem {
			return
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
}

// inDestination reports whether [pa, pa+n) intersects a destination of the sorted segments.
func inDestination(segs []kexecSegment, pa, n uint64) bool {
	lo, hi := 0, len(segs)
	for lo < hi { // first segment that ends after pa
		m := (lo + hi) / 2
		if segs[m].mem+segs[m].memsz <= pa {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(segs) && segs[lo].mem < pa+n && segs[lo].memsz != 0
}

// The copy plan: pages of 16-byte header {u64 count, u64 next page (0 = last)} and up to
// planPerPage entries {u64 dst, u64 dstLen, u64 src, u64 srcLen}, executed in order by the
// trampoline as MVCLE dst,dstLen ← src,srcLen with zero padding (srcLen 0 = zero fill).
const (
	planHeader  = 16
	planEntry   = 32
	planPerPage = (pageSize - planHeader) / planEntry
)

// planAppend adds an entry to the plan page p (a 4 KiB slice), merging it into the previous
// entry when both continue each other. It reports false when the page is full.
func planAppend(p []byte, dst, dstLen, src, srcLen uint64) bool {
	n := be64(p[0:])
	if n > 0 {
		e := p[planHeader+(n-1)*planEntry:]
		pd, pdl, ps, psl := be64(e[0:]), be64(e[8:]), be64(e[16:]), be64(e[24:])
		zeros := src == 0 && srcLen == 0 && ps == 0 && psl == 0
		copies := src != 0 && srcLen == dstLen && ps != 0 && psl == pdl && ps+psl == src
		if pd+pdl == dst && (zeros || copies) {
			putBE64(e[8:], pdl+dstLen)
			if src != 0 {
				putBE64(e[24:], psl+srcLen)
			}
			return true
		}
	}
	if n == planPerPage {
		return false
	}
	e := p[planHeader+n*planEntry:]
	putBE64(e[0:], dst)
	putBE64(e[8:], dstLen)
	putBE64(e[16:], src)
	putBE64(e[24:], srcLen)
	putBE64(p[0:], n+1)
	return true
}

// iomemLayout is what /proc/iomem shows besides the frame bitmap.
type iomemLayout struct {
	ram                  uint64 // bytes of RAM metal manages
	codeEnd              uint64 // metal's text is [imageStart, codeEnd)
	imageStart, imageEnd uint64 // metal's image and payload: [LinkBase, kend), never free
}

// renderIomem writes /proc/iomem in Linux's format ("%08x-%08x : name", inclusive ends,
// children indented by two spaces): System RAM, then in address order the lowcore and
// frames in use as Reserved and metal's image as Kernel code and Kernel data. When b runs
// short the remaining in-use frames are reported as one Reserved range (conservative: the
// loader plans around it).
func renderIomem(b []byte, l *iomemLayout, f *frames) int {
	n := iomemLine(b, 0, 0, l.ram, "System RAM", false)
	pfn := uint64(0)
	for {
		lo, hi, ok := f.nextUsedRun(pfn)
		if !ok {
			break
		}
		lo, hi = lo*pageSize, hi*pageSize
		if lo < l.imageStart && hi > l.imageStart {
			n = iomemLine(b, n, lo, l.imageStart, "Reserved", true)
			lo = l.imageStart
		}
		if lo == l.imageStart && hi >= l.imageEnd {
			n = iomemLine(b, n, lo, l.codeEnd, "Kernel code", true)
			n = iomemLine(b, n, l.codeEnd, l.imageEnd, "Kernel data", true)
			lo = l.imageEnd
		}
		if lo < hi {
			if len(b)-n < 2*64 { // room for this line and one more only: cover the rest
				hi = l.ram
			}
			n = iomemLine(b, n, lo, hi, "Reserved", true)
		}
		pfn = hi / pageSize
	}
	return n
}

// iomemLine writes "[  ]%08x-%08x : name\n" for [start, end).
func iomemLine(b []byte, n int, start, end uint64, name string, child bool) int {
	if end <= start {
		return n
	}
	if child {
		n = putStr(b, n, "  ")
	}
	n = putHexPad8(b, n, start)
	n = putStr(b, n, "-")
	n = putHexPad8(b, n, end-1)
	n = putStr(b, n, " : ")
	n = putStr(b, n, name)
	return putStr(b, n, "\n")
}

// putHexPad8 writes v in lower-case hex with at least 8 digits (Linux's %08llx).
func putHexPad8(b []byte, n int, v uint64) int {
	digits := 8
	for v>>(4*digits) != 0 && digits < 16 {
		digits++
	}
	return putHexRaw(b, n, v, digits)
}

// trampolineCode starts the kernel. metal copies it to a frame below 2 GiB outside every
// destination and branches to it with R2 = the first plan page, R4 = the boot subchannel's
// subsystem-id word, R5 = 1 to start at 0x10000 (S390EP) or 0 to load the PSW at 0. It runs
// with DAT off and every interruption masked, touches only the plan, the staging frames and
// the destinations, and mirrors QEMU's s390-netboot.img (jump2ipl.c): store the subsystem id
// at 0xb8 (0 at 0xbc); for 0x10000 save the 8 bytes at 0, put a reset PSW there that points at
// the stub, and diag 308 subcode 1 (load normal: subsystem reset, CPU initial reset, load the
// PSW at 0); the stub restores the 8 bytes and branches to 0x10000. If the diag returns, a
// disabled wait with address waitKexecReturned. Assembled with GNU as from this source (which
// handoff_test.go re-assembles and compares when binutils-s390x-linux-gnu is installed):
//
//	.Lpage:	ltgr	%r2,%r2           // no more plan pages?
//		jz	.Ldone
//		lg	%r3,0(%r2)        // entries in this page
//		la	%r10,16(%r2)
//	.Lentry: ltgr	%r3,%r3
//		jz	.Lnext
//		lmg	%r6,%r9,0(%r10)   // dst, dstLen, src, srcLen
//	.Lmove:	mvcle	%r6,%r8,0         // copy, pad with zeros
//		jo	.Lmove            // cc 3: not done yet
//		la	%r10,32(%r10)
//		aghi	%r3,-1
//		j	.Lentry
//	.Lnext:	lg	%r2,8(%r2)        // next plan page
//		j	.Lpage
//	.Ldone:	st	%r4,184           // subsystem-id word at 0xb8
//		mvhi	188,0
//		ltgr	%r5,%r5
//		jz	.Lipl
//		larl	%r10,.Lsaved
//		mvc	0(8,%r10),0       // save the 8 bytes at 0
//		larl	%r1,.Lstub
//		llihf	%r11,0x00080001   // short PSW, 64-bit mode, DAT and interrupts off
//		oilf	%r11,0x80000000
//		ogr	%r11,%r1
//		stg	%r11,0
//	.Lipl:	lghi	%r1,1
//		diag	%r1,%r1,0x308     // load normal
//		larl	%r10,.Lstop
//		lpswe	0(%r10)
//	.Lstub:	larl	%r10,.Lsaved
//		mvc	0(8),0(%r10)      // restore the 8 bytes at 0
//		llilf	%r1,0x10000
//		br	%r1
//		.align	8
//	.Lstop:	.quad	0x0002000180000000, 0x0dead00b
//	.Lsaved: .quad	0
var trampolineCode = [...]byte{
	0xb9, 0x02, 0x00, 0x22, 0xa7, 0x84, 0x00, 0x1d, 0xe3, 0x30, 0x20, 0x00,
	0x00, 0x04, 0x41, 0xa0, 0x20, 0x10, 0xb9, 0x02, 0x00, 0x33, 0xa7, 0x84,
	0x00, 0x0f, 0xeb, 0x69, 0xa0, 0x00, 0x00, 0x04, 0xa8, 0x68, 0x00, 0x00,
	0xa7, 0x14, 0xff, 0xfe, 0x41, 0xa0, 0xa0, 0x20, 0xa7, 0x3b, 0xff, 0xff,
	0xa7, 0xf4, 0xff, 0xf1, 0xe3, 0x20, 0x20, 0x08, 0x00, 0x04, 0xa7, 0xf4,
	0xff, 0xe3, 0x50, 0x40, 0x00, 0xb8, 0xe5, 0x4c, 0x00, 0xbc, 0x00, 0x00,
	0xb9, 0x02, 0x00, 0x55, 0xa7, 0x84, 0x00, 0x16, 0xc0, 0xa0, 0x00, 0x00,
	0x00, 0x30, 0xd2, 0x07, 0xa0, 0x00, 0x00, 0x00, 0xc0, 0x10, 0x00, 0x00,
	0x00, 0x17, 0xc0, 0xbe, 0x00, 0x08, 0x00, 0x01, 0xc0, 0xbd, 0x80, 0x00,
	0x00, 0x00, 0xb9, 0x81, 0x00, 0xb1, 0xe3, 0xb0, 0x00, 0x00, 0x00, 0x24,
	0xa7, 0x19, 0x00, 0x01, 0x83, 0x11, 0x03, 0x08, 0xc0, 0xa0, 0x00, 0x00,
	0x00, 0x10, 0xb2, 0xb2, 0xa0, 0x00, 0xc0, 0xa0, 0x00, 0x00, 0x00, 0x13,
	0xd2, 0x07, 0x00, 0x00, 0xa0, 0x00, 0xc0, 0x1f, 0x00, 0x01, 0x00, 0x00,
	0x07, 0xf1, 0x07, 0x07, 0x00, 0x02, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x0d, 0xea, 0xd0, 0x0b, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00,
}
