package metal

import (
	"encoding/binary"
	"testing"
)

func buildSymtab(syms []struct {
	addr uint64
	name string
}) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(len(syms)))
	var names []byte
	for _, s := range syms {
		b = binary.BigEndian.AppendUint64(b, s.addr)
		b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
		b = binary.BigEndian.AppendUint32(b, uint32(len(s.name)))
		names = append(names, s.name...)
	}
	return append(b, names...)
}

func TestLookupSymbol(t *testing.T) {
	tab := buildSymtab([]struct {
		addr uint64
		name string
	}{{0x1000, "main.a"}, {0x1100, "main.b"}, {0x2000, "runtime.c"}})
	tests := []struct {
		addr uint64
		name string
		off  uint64
		ok   bool
	}{
		{0xfff, "", 0, false},
		{0x1000, "main.a", 0, true},
		{0x10ff, "main.a", 0xff, true},
		{0x1100, "main.b", 0, true},
		{0x5000, "runtime.c", 0x3000, true},
	}
	for _, tt := range tests {
		name, off, ok := lookupSymbol(tab, tt.addr)
		if string(name) != tt.name || off != tt.off || ok != tt.ok {
			t.Errorf("lookupSymbol(%#x) = %q, %#x, %v, want %q, %#x, %v", tt.addr, name, off, ok, tt.name, tt.off, tt.ok)
		}
	}
	if _, _, ok := lookupSymbol(tab[:20], 0x1000); ok {
		t.Error("lookupSymbol on a truncated table succeeded")
	}
}
