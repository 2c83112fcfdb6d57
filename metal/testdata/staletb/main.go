// Command staletb checks that a frame metal hands out carries no stale translations of code
// that ran from it before (docs/memory.md, "Frames are scrubbed with plain stores"). It runs
// code from a range of pages, lets metal take the frames back (MADV_DONTNEED), faults the pages
// in again (metal gives back the same frames, top-down, zeroed), copies new code in with one
// MVC per page that starts below the old code, and runs it. The old translation survives under
// QEMU TCG when metal cleared the frame with XC (Go's clear()), and then the old code runs.
// metal/qemu_test.go runs it and reads the last line.
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

const (
	pages   = 64
	pageSz  = 4096
	codeOff = 0x110 // the code: 0x10 bytes into a 256-byte block, away from MVC/XC first bytes
	blockAt = 0x100 // where the second copy (one MVC of 256 bytes) starts
)

// callCode calls the code at pc (which returns with BR R14) and returns its R2.
func callCode(pc uintptr) uint64

// mvc256 copies 256 bytes from src to dst with one MVC.
func mvc256(dst, src uintptr)

// returning is "LGHI R2,v; BR R14".
func returning(v byte) []byte { return []byte{0xa7, 0x29, 0x00, v, 0x07, 0xfe} }

func main() {
	runtime.LockOSThread()
	mem, err := syscall.Mmap(-1, 0, pages*pageSz, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
		syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Println("staletb: mmap:", err)
		os.Exit(1)
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	first := 0
	for p := 0; p < pages; p++ {
		copy(mem[p*pageSz+codeOff:], returning(1))
		if callCode(base+uintptr(p*pageSz+codeOff)) == 1 {
			first++
		}
	}
	if err := syscall.Madvise(mem, syscall.MADV_DONTNEED); err != nil {
		fmt.Println("staletb: madvise:", err)
		os.Exit(1)
	}
	var block [256]byte
	copy(block[codeOff-blockAt:], returning(2))
	zeroed, stale, fresh := 0, 0, 0
	for p := 0; p < pages; p++ {
		if mem[p*pageSz+codeOff] == 0 {
			zeroed++
		}
		mvc256(base+uintptr(p*pageSz+blockAt), uintptr(unsafe.Pointer(&block[0])))
		switch callCode(base + uintptr(p*pageSz+codeOff)) {
		case 1:
			stale++
		case 2:
			fresh++
		}
	}
	fmt.Printf("staletb: first code ran on %d of %d pages; after MADV_DONTNEED %d zeroed, %d ran the new code, %d the old\n",
		first, pages, zeroed, fresh, stale)
}
