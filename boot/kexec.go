package boot

import "unsafe"

// kexecSegment is Linux's struct kexec_segment (include/uapi/linux/kexec.h), 32 bytes on s390x;
// kexec_load takes an array of them (docs/abi.md, "Start").
type kexecSegment struct {
	buf   unsafe.Pointer // 0x00 void *buf
	bufsz uintptr        // 0x08 size_t bufsz
	mem   uintptr        // 0x10 unsigned long mem
	memsz uintptr        // 0x18 size_t memsz
}
