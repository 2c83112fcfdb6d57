package metal

// LinkBase is the physical (and link) address of the first byte of netipl.img: metal's first
// PT_LOAD starts here and its .text at LinkBase+0x1000 (the linker passes -T LinkBase+0x1000).
// 64 MiB keeps [0x2000, 64 MiB) free for a Linux kernel and initrd, and leaves 62 MiB for
// metal + payload below QEMU's BIOS copy at 126 MiB in a 128 MiB guest. See docs/memory.md.
const LinkBase = 0x4000000

// ImageLimit is the address the whole image must end below: QEMU loads s390-ccw.img at
// min(RAM, 2 GiB) - 2 MiB, i.e. 126 MiB in the smallest guest netipl supports (128 MiB).
const ImageLimit = 126 << 20

// PayloadAlign is the alignment of the payload PT_LOAD and of the loader ELF inside it.
const PayloadAlign = 0x10000

// MinFreeRAM is how much RAM above the image metal requires for frames (page tables, the
// loader's stacks, data and heap). Less than LinkBase + image + MinFreeRAM is refused at boot.
const MinFreeRAM = 24 << 20

const (
	pageSize   = 4096
	pageShift  = 12
	kstackSize = 65536
)

// User virtual address space of the loader (region-second ASCE: 2^53 bytes).
const (
	userEnd       = 1 << 53
	mmapMin       = 0x10000        // vm.mmap_min_addr: the nil-guard region is never mapped
	mmapBase      = 0x7f0000000000 // un-hinted mmaps go top-down from here
	stackTop      = 0x7fffff000000 // initial stack VMA [stackTop-stackSize, stackTop)
	userStackSize = 16 << 20
)

func pageDown(a uint64) uint64 { return a &^ (pageSize - 1) }
func pageUp(a uint64) uint64   { return (a + pageSize - 1) &^ (pageSize - 1) }

// Codes of disabled waits: the PSW address of the final stop says why metal stopped
// (visible with QEMU's "info registers" or -d int). None ends in 0xfff (that would be a clean quiesce).
const (
	waitKmainReturned   = 0x0dead001
	waitKernelBug       = 0x0dead002
	waitHandlerReturned = 0x0dead003
	waitIdleResumed     = 0x0dead004
	waitRecursiveTrap   = 0x0dead005
	waitExitFailure     = 0x0e000000 // | exit status
	waitBadPayload      = 0x0dead006
	waitTooLittleRAM    = 0x0dead007
	waitDeadlock        = 0x0dead008
	waitHalt            = 0x0dead009
	waitFatalSignal     = 0x0dead00a
	waitKexecReturned   = 0x0dead00b // diag 308 load-normal returned (trampolineCode's stop PSW)
)
