package metal

import "encoding/binary"

// The payload PT_LOAD appended by the linker (docs/image.md). All fields big-endian u64.
const (
	PayloadMagic   = "NETIPL\x00\x01"
	payloadHdrSize = 64
	phMagic        = 0
	phTotal        = 8
	phLoaderOff    = 16
	phLoaderSize   = 24
	phArgsOff      = 32
	phArgsSize     = 40
	phSymsOff      = 48 // symbol table (docs/image.md), 0 when absent
	phSymsSize     = 56
	PayloadHdrSize = payloadHdrSize
)

// payloadHeader is the decoded header; the zero value means "no payload".
type payloadHeader struct {
	total, loaderOff, loaderSize, argsOff, argsSize, symsOff, symsSize uint64
}

// payload errors, printed from a static table (no fmt in metal).
const (
	payloadOK = iota
	payloadBadMagic
	payloadBadSize
	payloadBadLoader
	payloadBadArgs
	payloadBadSyms
)

var payloadErrText = [...]string{
	payloadOK:        "ok",
	payloadBadMagic:  "bad magic",
	payloadBadSize:   "total size out of range",
	payloadBadLoader: "loader ELF outside the payload or misaligned",
	payloadBadArgs:   "argv/env block outside the payload or not NUL-terminated",
	payloadBadSyms:   "symbol table outside the payload",
}

// parsePayloadHeader checks the header against the avail bytes that follow it.
func parsePayloadHeader(b []byte, avail uint64) (h payloadHeader, code int) {
	if len(b) < payloadHdrSize || string(b[:8]) != PayloadMagic {
		return h, payloadBadMagic
	}
	be := binary.BigEndian
	h.total = be.Uint64(b[phTotal:])
	h.loaderOff = be.Uint64(b[phLoaderOff:])
	h.loaderSize = be.Uint64(b[phLoaderSize:])
	h.argsOff = be.Uint64(b[phArgsOff:])
	h.argsSize = be.Uint64(b[phArgsSize:])
	h.symsOff = be.Uint64(b[phSymsOff:])
	h.symsSize = be.Uint64(b[phSymsSize:])
	if h.total < payloadHdrSize || h.total > avail {
		return h, payloadBadSize
	}
	if !inside(h.loaderOff, h.loaderSize, h.total) || h.loaderOff%PayloadAlign != 0 || h.loaderSize < 64 {
		return h, payloadBadLoader
	}
	if !inside(h.argsOff, h.argsSize, h.total) || h.argsSize < 2 {
		return h, payloadBadArgs
	}
	if !inside(h.symsOff, h.symsSize, h.total) {
		return h, payloadBadSyms
	}
	return h, payloadOK
}

func inside(off, size, total uint64) bool {
	return off <= total && size <= total-off
}

// ELF64 big-endian EM_S390 executables (System V gABI, s390x psABI).
const (
	elfEMS390 = 22
	elfETExec = 2
	elfPTLoad = 1
	elfPFW    = 2
	maxLoads  = 8
)

type elfLoad struct {
	vaddr, off, filesz, memsz uint64
	flags                     uint32
}

type elfImage struct {
	entry uint64
	n     int
	loads [maxLoads]elfLoad
}

const (
	elfOK = iota
	elfBadHeader
	elfBadMachine
	elfBadPhdr
	elfBadSegment
	elfTooManyLoads
)

var elfErrText = [...]string{
	elfOK:           "ok",
	elfBadHeader:    "not an ELF64 big-endian executable",
	elfBadMachine:   "not built for s390x (EM_S390)",
	elfBadPhdr:      "program headers outside the file",
	elfBadSegment:   "segment outside the file, in the nil page, or misaligned",
	elfTooManyLoads: "more than 8 PT_LOAD segments",
}

// parseELF validates the loader ELF in b and returns its PT_LOAD segments.
func parseELF(b []byte, img *elfImage) int {
	if len(b) < 64 || string(b[:4]) != "\x7fELF" || b[4] != 2 || b[5] != 2 {
		return elfBadHeader
	}
	be := binary.BigEndian
	if be.Uint16(b[16:]) != elfETExec {
		return elfBadHeader
	}
	if be.Uint16(b[18:]) != elfEMS390 {
		return elfBadMachine
	}
	img.entry = be.Uint64(b[24:])
	phoff := be.Uint64(b[32:])
	phentsize := uint64(be.Uint16(b[54:]))
	phnum := uint64(be.Uint16(b[56:]))
	if phentsize < 56 || phoff > uint64(len(b)) || phnum*phentsize > uint64(len(b))-phoff {
		return elfBadPhdr
	}
	img.n = 0
	for i := uint64(0); i < phnum; i++ {
		p := b[phoff+i*phentsize:]
		if be.Uint32(p) != elfPTLoad {
			continue
		}
		l := elfLoad{
			flags:  be.Uint32(p[4:]),
			off:    be.Uint64(p[8:]),
			vaddr:  be.Uint64(p[16:]),
			filesz: be.Uint64(p[32:]),
			memsz:  be.Uint64(p[40:]),
		}
		if !inside(l.off, l.filesz, uint64(len(b))) || l.filesz > l.memsz ||
			l.vaddr < mmapMin || l.vaddr+l.memsz > mmapBase || l.vaddr%pageSize != l.off%pageSize {
			return elfBadSegment
		}
		if l.flags&elfPFW == 0 && l.memsz != l.filesz {
			return elfBadSegment
		}
		if img.n == maxLoads {
			return elfTooManyLoads
		}
		img.loads[img.n] = l
		img.n++
	}
	if img.n == 0 {
		return elfBadSegment
	}
	return elfOK
}
