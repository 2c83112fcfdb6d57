package virtio

import (
	"testing"
	"unsafe"
)

// TestBlockLayout checks every architected block against the PoP figures (style B5).
func TestBlockLayout(t *testing.T) {
	var (
		p PMCW
		s SCSW
		h SCHIB
		o ORB
		i IRB
		c CCW1
	)
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"PMCW size", unsafe.Sizeof(p), 28},
		{"PMCW.IntParm", unsafe.Offsetof(p.IntParm), 0x00},
		{"PMCW.Flags", unsafe.Offsetof(p.Flags), 0x04},
		{"PMCW.DevNo", unsafe.Offsetof(p.DevNo), 0x06},
		{"PMCW.LPM", unsafe.Offsetof(p.LPM), 0x08},
		{"PMCW.PNOM", unsafe.Offsetof(p.PNOM), 0x09},
		{"PMCW.LPUM", unsafe.Offsetof(p.LPUM), 0x0a},
		{"PMCW.PIM", unsafe.Offsetof(p.PIM), 0x0b},
		{"PMCW.MBI", unsafe.Offsetof(p.MBI), 0x0c},
		{"PMCW.POM", unsafe.Offsetof(p.POM), 0x0e},
		{"PMCW.PAM", unsafe.Offsetof(p.PAM), 0x0f},
		{"PMCW.CHPID", unsafe.Offsetof(p.CHPID), 0x10},
		{"PMCW.Chars", unsafe.Offsetof(p.Chars), 0x18},
		{"SCSW size", unsafe.Sizeof(s), 12},
		{"SCSW.Flags", unsafe.Offsetof(s.Flags), 0x00},
		{"SCSW.Ctrl", unsafe.Offsetof(s.Ctrl), 0x02},
		{"SCSW.CPA", unsafe.Offsetof(s.CPA), 0x04},
		{"SCSW.DStat", unsafe.Offsetof(s.DStat), 0x08},
		{"SCSW.SStat", unsafe.Offsetof(s.SStat), 0x09},
		{"SCSW.Count", unsafe.Offsetof(s.Count), 0x0a},
		{"SCHIB size", unsafe.Sizeof(h), 52},
		{"SCHIB.PMCW", unsafe.Offsetof(h.PMCW), 0x00},
		{"SCHIB.SCSW", unsafe.Offsetof(h.SCSW), 0x1c},
		{"SCHIB.Model", unsafe.Offsetof(h.Model), 0x28},
		{"ORB size", unsafe.Sizeof(o), 32},
		{"ORB.IntParm", unsafe.Offsetof(o.IntParm), 0x00},
		{"ORB.Ctrl0", unsafe.Offsetof(o.Ctrl0), 0x04},
		{"ORB.LPM", unsafe.Offsetof(o.LPM), 0x06},
		{"ORB.Ctrl1", unsafe.Offsetof(o.Ctrl1), 0x07},
		{"ORB.CPA", unsafe.Offsetof(o.CPA), 0x08},
		{"IRB size", unsafe.Sizeof(i), 96},
		{"IRB.SCSW", unsafe.Offsetof(i.SCSW), 0x00},
		{"IRB.ESW", unsafe.Offsetof(i.ESW), 0x0c},
		{"IRB.ECW", unsafe.Offsetof(i.ECW), 0x20},
		{"IRB.EMW", unsafe.Offsetof(i.EMW), 0x40},
		{"CCW1 size", unsafe.Sizeof(c), 8},
		{"CCW1.Cmd", unsafe.Offsetof(c.Cmd), 0},
		{"CCW1.Flags", unsafe.Offsetof(c.Flags), 1},
		{"CCW1.Count", unsafe.Offsetof(c.Count), 2},
		{"CCW1.CDA", unsafe.Offsetof(c.CDA), 4},
		{"SCHIB alignment", unsafe.Alignof(h), 4},
		{"ORB alignment", unsafe.Alignof(o), 4},
		{"IRB alignment", unsafe.Alignof(i), 4},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

// TestPMCWBits checks the flag positions against the PoP bit numbers of PMCW word 1 (bits 32-63
// of the PMCW: Q=32, ISC=34-36, E=40, V=47) and of SCSW word 0.
func TestPMCWBits(t *testing.T) {
	bit := func(n int) uint16 { return 0x8000 >> (n - 32) } // PMCW bit n within the 16-bit Flags
	if pmcwEnabled != bit(40) || pmcwDNV != bit(47) || pmcwISCMask != bit(34)|bit(35)|bit(36) || 7<<pmcwISCShift != pmcwISCMask {
		t.Errorf("PMCW flags: E=%#x V=%#x ISC=%#x<<%d", pmcwEnabled, pmcwDNV, pmcwISCMask, pmcwISCShift)
	}
	sbit := func(n int) uint16 { return 0x8000 >> (n - 16) } // SCSW word 0 bit n within Ctrl
	if scswFCStart != sbit(17) || scswFCHalt != sbit(18) || scswFCClear != sbit(19) ||
		scswSCAlert != sbit(27) || scswSCPrimary != sbit(29) || scswSCSecondary != sbit(30) || scswSCPending != sbit(31) {
		t.Error("SCSW control bits do not match PoP bits 17-19 and 27-31")
	}
	obit := func(n int) uint16 { return 0x8000 >> (n - 32) } // ORB word 1 bit n within Ctrl0
	if orbFormat1CCW != obit(40) || orbPrefetch != obit(41) {
		t.Errorf("ORB F=%#x P=%#x, want bits 40 and 41", orbFormat1CCW, orbPrefetch)
	}
}

func TestSubchannelID(t *testing.T) {
	tests := []struct {
		ssid  uint8
		schno uint16
		want  uint32
	}{
		{0, 0, 0x00010000},
		{0, 0x0007, 0x00010007},
		{1, 0x1234, 0x00031234},
		{3, 0xffff, 0x0007ffff},
	}
	for _, tt := range tests {
		got := NewSubchannelID(tt.ssid, tt.schno)
		if uint32(got) != tt.want || got.SSID() != tt.ssid || got.Number() != tt.schno {
			t.Errorf("NewSubchannelID(%d, %#x) = %#x (ssid %d, schno %#x), want %#x", tt.ssid, tt.schno, uint32(got), got.SSID(), got.Number(), tt.want)
		}
	}
}

func TestDMALayout(t *testing.T) {
	_, _, ring := RingSize(MaxQueueSize)
	regions := []struct {
		name      string
		off, size int
	}{
		{"CHSC", offCHSC, 0x1000},
		{"CCW", offCCW, 8},
		{"CCW data", offCCWData, ccwDataMax},
		{"indicators", offIndicators, indicatorsSize},
		{"RX ring", offRXRing, ring},
		{"TX ring", offTXRing, ring},
		{"RX buffers", offRXBufs, MaxQueueSize * bufStride},
		{"TX buffers", offTXBufs, MaxQueueSize * bufStride},
	}
	for i, a := range regions {
		if a.off+a.size > DMASize {
			t.Errorf("%s [%#x, %#x) beyond DMASize %#x", a.name, a.off, a.off+a.size, DMASize)
		}
		for _, b := range regions[i+1:] {
			if a.off < b.off+b.size && b.off < a.off+a.size {
				t.Errorf("%s [%#x, %#x) overlaps %s [%#x, %#x)", a.name, a.off, a.off+a.size, b.name, b.off, b.off+b.size)
			}
		}
	}
	if offCCW%8 != 0 || offIndicators%8 != 0 || offRXRing%16 != 0 || offTXRing%16 != 0 || offCHSC%4096 != 0 {
		t.Error("CCW, indicators, rings or CHSC page misaligned")
	}
	if ring > 0x3000 {
		t.Errorf("a %d-entry ring needs %#x bytes, more than the 0x3000 reserved", MaxQueueSize, ring)
	}
	if NetHeaderSize+MaxFrame > bufStride {
		t.Error("a maximal frame does not fit a buffer")
	}
}
