package metal

import (
	"encoding/binary"
	"os"
	"testing"
)

func payloadHdr(total, lo, ls, ao, as, so, ss uint64) []byte {
	b := make([]byte, payloadHdrSize)
	copy(b, PayloadMagic)
	for i, v := range []uint64{total, lo, ls, ao, as, so, ss} {
		binary.BigEndian.PutUint64(b[8+8*i:], v)
	}
	return b
}

func TestParsePayloadHeader(t *testing.T) {
	tests := []struct {
		name  string
		hdr   []byte
		avail uint64
		want  int
	}{
		{"ok", payloadHdr(0x30000, 0x10000, 0x10000, 0x20000, 16, 0x20010, 8), 0x40000, payloadOK},
		{"bad magic", append([]byte("NETIPL\x00\x02"), make([]byte, 56)...), 0x40000, payloadBadMagic},
		{"short", []byte(PayloadMagic), 0x40000, payloadBadMagic},
		{"beyond RAM", payloadHdr(0x30000, 0x10000, 0x10000, 0x20000, 16, 0, 0), 0x20000, payloadBadSize},
		{"loader misaligned", payloadHdr(0x30000, 0x1000, 0x10000, 0x20000, 16, 0, 0), 0x40000, payloadBadLoader},
		{"loader outside", payloadHdr(0x30000, 0x10000, 0x30000, 0x20000, 16, 0, 0), 0x40000, payloadBadLoader},
		{"args overflow", payloadHdr(0x30000, 0x10000, 0x100, 0x20000, ^uint64(0), 0, 0), 0x40000, payloadBadArgs},
		{"syms outside", payloadHdr(0x30000, 0x10000, 0x100, 0x20000, 16, 0x2fff0, 0x100), 0x40000, payloadBadSyms},
	}
	for _, tt := range tests {
		if _, got := parsePayloadHeader(tt.hdr, tt.avail); got != tt.want {
			t.Errorf("%s: parsePayloadHeader = %s, want %s", tt.name, payloadErrText[got], payloadErrText[tt.want])
		}
	}
}

func TestParseELFHost(t *testing.T) {
	// The test binary itself is an ELF for the host: little-endian amd64 is rejected as a
	// header mismatch, a big-endian non-s390x one as the wrong machine.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	var img elfImage
	if got := parseELF(self, &img); got != elfBadHeader && got != elfBadMachine {
		t.Errorf("parseELF(host binary) = %s", elfErrText[got])
	}
	if got := parseELF([]byte("\x7fELF"), &img); got != elfBadHeader {
		t.Errorf("parseELF(truncated) = %s", elfErrText[got])
	}
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x02")
	binary.BigEndian.PutUint16(h[16:], elfETExec)
	binary.BigEndian.PutUint16(h[18:], 62)
	if got := parseELF(h, &img); got != elfBadMachine {
		t.Errorf("parseELF(EM_X86_64 big-endian) = %s", elfErrText[got])
	}
	binary.BigEndian.PutUint16(h[18:], elfEMS390)
	binary.BigEndian.PutUint64(h[32:], 64)
	binary.BigEndian.PutUint16(h[54:], 56)
	binary.BigEndian.PutUint16(h[56:], 2)
	if got := parseELF(h, &img); got != elfBadPhdr {
		t.Errorf("parseELF(phdrs beyond the file) = %s", elfErrText[got])
	}
	// one PT_LOAD in the nil page
	ph := make([]byte, 56)
	binary.BigEndian.PutUint32(ph, elfPTLoad)
	binary.BigEndian.PutUint32(ph[4:], 5)
	binary.BigEndian.PutUint64(ph[16:], 0x1000)
	binary.BigEndian.PutUint64(ph[32:], 0x40)
	binary.BigEndian.PutUint64(ph[40:], 0x40)
	binary.BigEndian.PutUint16(h[56:], 1)
	if got := parseELF(append(h, ph...), &img); got != elfBadSegment {
		t.Errorf("parseELF(segment at 0x1000) = %s", elfErrText[got])
	}
	binary.BigEndian.PutUint64(ph[16:], 0x10000)
	if got := parseELF(append(h, ph...), &img); got != elfOK || img.n != 1 {
		t.Errorf("parseELF(good) = %s, %d loads", elfErrText[got], img.n)
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add(payloadHdr(0x30000, 0x10000, 0x10000, 0x20000, 16, 0x20010, 8), uint64(0x40000))
	f.Fuzz(func(t *testing.T, b []byte, avail uint64) {
		if len(b) > 4096 {
			return
		}
		h, code := parsePayloadHeader(b, avail)
		if code == payloadOK && (h.total > avail || h.loaderOff+h.loaderSize > h.total || h.argsOff+h.argsSize > h.total) {
			t.Fatalf("accepted an inconsistent header %+v (avail %#x)", h, avail)
		}
		var img elfImage
		if parseELF(b, &img) == elfOK {
			for _, l := range img.loads[:img.n] {
				if l.off+l.filesz > uint64(len(b)) || l.vaddr < mmapMin {
					t.Fatalf("accepted segment %+v in %d bytes", l, len(b))
				}
			}
		}
		_, _, _ = lookupSymbol(b, avail)
	})
}
