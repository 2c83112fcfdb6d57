package metal

// The low-memory entry (lowentry_s390x.s): metal links at LinkBase (64 MiB), so in a guest whose
// RAM ends below the image QEMU drops every segment and nothing of metal runs. The linker
// therefore copies the position-independent routine lowentry into one extra small PT_LOAD at
// LowEntryBase and makes it the image's entry. It reads the RAM size (SCLP Read SCP Info, SCCB
// in its second page) and either jumps to kentry or prints the same too-little-RAM line as
// kmain and stops. See docs/image.md and docs/memory.md.
const (
	// LowEntryBase is the physical address of the stub segment and the image's e_entry: above
	// the lowcore and below 0x10000 (where QEMU pokes a Linux kernel's parameters), far below
	// any RAM size QEMU accepts.
	LowEntryBase = 0x8000
	// LowEntrySize is the stub segment's size in memory: page 0 holds the code and the message
	// templates (its file part), page 1 is the SCCB (zero-filled, not in the file).
	LowEntrySize = 2 * pageSize

	// LowEntryMagic marks the parameter block inside lowentry's code at LowEntryParamOff.
	LowEntryMagic    = "NETIPLLE"
	LowEntryParamOff = 8 // offset of the block from lowentry's first byte (fixed by the assembly)
	// Fields of the block (big-endian), offsets from the magic; the linker fills them in.
	LowEntryKentry   = 8  // u64: address of kentry (the jump target when RAM suffices)
	LowEntryNeed     = 16 // u64: bytes of RAM metal needs: page-aligned image end + MinFreeRAM
	LowEntryNeedMiB  = 24 // u64: LowEntryNeed in MiB, rounded up (as kmain's tooLittleRAM prints it)
	LowEntryMsg      = 32 // u32: offset from lowentry of the too-little-RAM template
	LowEntryFaultMsg = 36 // u32: offset from lowentry of the program-check template
	LowEntryParamLen = 40

	// Message templates, NUL-terminated in the segment: byte 1 stands for the RAM found in MiB,
	// byte 2 for LowEntryNeedMiB. LowEntryTooLittle renders exactly kmain's tooLittleRAM line.
	LowEntryTooLittle = "metal: \x01 MiB of RAM is too little: netipl needs at least \x02 MiB\n"
	LowEntryFault     = "metal: program check in the low-memory entry (RAM size unknown): netipl needs at least \x02 MiB\n"
)

// waitLowEntryFault is the disabled-wait code after a program check inside lowentry (e.g. the
// probe of the last needed byte when SCLP gave no RAM size). Too little RAM stops with
// waitTooLittleRAM, as in kmain.
const waitLowEntryFault = 0x0dead0e1
