// Package phys is metal's one door to physical memory. metal runs with DAT off, so a physical
// address is also the address its own code sees; every conversion of a number into a pointer
// happens here and nowhere else in metal.
//
// All accessors are big-endian native loads and stores (z/Architecture is big-endian). Nothing
// here allocates or touches the Go runtime.
package phys

import "unsafe"

// Load8 returns the byte at physical address a.
//
//go:nosplit
func Load8(a uintptr) uint8 { return *(*uint8)(at(a)) }

// Load16 returns the halfword at physical address a (2-byte aligned).
//
//go:nosplit
func Load16(a uintptr) uint16 { return *(*uint16)(at(a)) }

// Load32 returns the word at physical address a (4-byte aligned).
//
//go:nosplit
func Load32(a uintptr) uint32 { return *(*uint32)(at(a)) }

// Load64 returns the doubleword at physical address a (8-byte aligned).
//
//go:nosplit
func Load64(a uintptr) uint64 { return *(*uint64)(at(a)) }

// Store8 stores v at physical address a.
//
//go:nosplit
func Store8(a uintptr, v uint8) { *(*uint8)(at(a)) = v }

// Store16 stores v at physical address a.
//
//go:nosplit
func Store16(a uintptr, v uint16) { *(*uint16)(at(a)) = v }

// Store32 stores v at physical address a.
//
//go:nosplit
func Store32(a uintptr, v uint32) { *(*uint32)(at(a)) = v }

// Store64 stores v at physical address a.
//
//go:nosplit
func Store64(a uintptr, v uint64) { *(*uint64)(at(a)) = v }

// Bytes returns the n bytes at physical address a as a slice (no copy, no allocation).
//
//go:nosplit
func Bytes(a, n uintptr) []byte { return unsafe.Slice((*byte)(at(a)), n) }

// Words returns the n doublewords at physical address a (8-byte aligned) as a slice.
//
//go:nosplit
func Words(a, n uintptr) []uint64 { return unsafe.Slice((*uint64)(at(a)), n) }

// Zero clears n bytes at physical address a.
//
//go:nosplit
func Zero(a, n uintptr) { clear(Bytes(a, n)) }

// Copy copies n bytes from physical address src to physical address dst (ranges may overlap).
//
//go:nosplit
func Copy(dst, src, n uintptr) { copy(Bytes(dst, n), Bytes(src, n)) }

// at turns physical address a into a pointer. It is the only such conversion in metal.
//
//go:nosplit
func at(a uintptr) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(nil), a) }
