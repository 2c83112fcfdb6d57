package phys

// Scrub clears n bytes at physical address a (8-byte aligned, n a multiple of 64) with ordinary
// 8-byte stores, never with XC/MVC: under QEMU TCG that also drops every stale translation of
// code that once ran there (scrub_s390x.s says why clear() does not). Zero stays the fast way
// to clear memory that never held code.
func Scrub(a, n uintptr)
