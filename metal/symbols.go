package metal

import "encoding/binary"

// The symbol table the linker puts in the payload (docs/image.md) so crash dumps can name
// the function at a PC: u64 count; count × {u64 addr, u32 name offset, u32 name length},
// sorted by addr; then the names. It covers metal's and the loader's text symbols.

const symEntrySize = 16

// lookupSymbol returns the name of the symbol containing addr and addr's offset into it.
func lookupSymbol(tab []byte, addr uint64) (name []byte, off uint64, ok bool) {
	if len(tab) < 8 {
		return nil, 0, false
	}
	be := binary.BigEndian
	n := be.Uint64(tab)
	if n == 0 || n > uint64(len(tab)-8)/symEntrySize {
		return nil, 0, false
	}
	ents := tab[8 : 8+n*symEntrySize]
	names := tab[8+n*symEntrySize:]
	lo, hi := uint64(0), n // find the last entry with entry.addr <= addr
	for lo < hi {
		m := (lo + hi) / 2
		if be.Uint64(ents[m*symEntrySize:]) <= addr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return nil, 0, false
	}
	e := ents[(lo-1)*symEntrySize:]
	no, nl := uint64(be.Uint32(e[8:])), uint64(be.Uint32(e[12:]))
	if no > uint64(len(names)) || nl > uint64(len(names))-no || nl == 0 {
		return nil, 0, false
	}
	return names[no : no+nl], addr - be.Uint64(e), true
}
