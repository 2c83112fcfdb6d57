// Package boot turns what the loader chose (a kernel, initrds, a command line) into a checked
// plan for guest-physical memory, and hands that plan to metal to start the kernel.
//
// # Specification
//
// The layout is Linux's s390 boot protocol as QEMU's s390-netboot.img and `-kernel` use it
// (Linux arch/s390/include/asm/setup.h, arch/s390/boot/head.S; QEMU 7.2 pc-bios/s390-ccw/netmain.c
// and hw/s390x/ipl.c; research/qemu-netboot.md §2.9, §4). The handoff to metal is the Linux ABI
// of docs/abi.md: /dev/mem for payload memory, kexec_load + reboot(LINUX_REBOOT_CMD_KEXEC).
//
// # The handoff
//
//   - The kernel image is placed at absolute 0, whole (its first 8 KiB overlay the lowcore).
//   - Its entry is checked, never guessed: "S390EP" at 0x10008 means entry 0x10000 (64-bit, DAT off);
//     otherwise an IPL PSW at 0 (a short PSW, bit 12 set, whose address lies inside the image)
//     means IPL semantics, entry 0 (metal loads that PSW as diag 308 load-normal does);
//     otherwise the image is refused with the reason (QEMU's image jumps to 0x10000 regardless).
//   - Initrds are concatenated from the next 4 KiB boundary after the kernel; every initrd but
//     the last is zero-padded to 4 KiB (syslinux's rule, pxecfg.InitrdLayout). The kernel sees one
//     initrd: INITRD_START (u64 at 0x10408) and INITRD_SIZE (u64 at 0x10410) of the parmarea.
//   - The command line goes to COMMAND_LINE (0x10480), NUL-terminated, bounded by the kernel's
//     max_command_line_size (u64 at 0x10430; 0 means the historical 896). A longer command line
//     is an error, not a silent truncation (QEMU's image truncates at 896 and may drop the NUL).
//   - The parmarea is written only when there is an initrd or a command line, and only into a
//     kernel image that contains it ([0x10400, 0x10480+max)). A bare kernel boot file keeps
//     its own built-in command line, as with QEMU.
//   - Everything must lie in guest RAM; sizes are checked against RAM before a download starts
//     (TFTP tsize, HTTP Content-Length) and again while writing.
//
// # Memory and the executor
//
// [Mem] is an io.WriterAt/io.ReaderAt whose offsets are guest-physical addresses. In the guest
// it maps 16 MiB chunks of /dev/mem so downloads stream straight to their final address (no second
// copy); what cannot be mapped — the lowcore [0, 0x2000), ranges /proc/iomem lists as metal's own
// (Kernel code, Kernel data, Reserved), or a chunk whose mmap metal refuses with EBUSY — is kept in
// ordinary loader memory, within a budget taken from MemFree. [Mem.Segments] lists the result
// as kexec segments, page-aligned and disjoint; a mapped segment's buffer is the mapping of its
// own destination, so metal does not copy it. On linux/s390x [Exec] calls kexec_load with those
// segments and the entry, then reboot(LINUX_REBOOT_CMD_KEXEC); metal copies the buffered
// segments through its trampoline, resets the NIC and subchannels, stores the subsystem id at
// 0xb8 and starts the kernel. Elsewhere Exec returns an error (the loader's host mode prints the
// plan instead).
//
// # Zero values
//
// The zero Range is empty at address 0. The zero Plan boots nothing. The zero Layout has no
// RAM and places nothing. The zero Mem is not usable; call NewMem.
package boot
