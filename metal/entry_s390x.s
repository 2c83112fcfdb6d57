// Entry, trap stubs, context switch and privileged-instruction wrappers of metal.
// Reference: z/Architecture Principles of Operation (PoP) SA22-7832-13. Privileged and system
// instructions have no Go assembler mnemonics and are emitted with WORD/BYTE; each carries its
// mnemonic in a comment. R10/R11 are assembler temporaries and are kept out of data flow.

#include "go_asm.h"
#include "textflag.h"

// kernel stack top: kstack + kstackSize - 160 (a standard s390x save area above SP).
#define KSTACKTOP $·kstack+65376(SB)

// func kentry() — the ELF entry. Reached with DAT off, supervisor state, interrupts masked and
// either all registers zero (QEMU -kernel) or BIOS leftovers (s390-ccw.img netboot_fw path).
// Sets its own stack, clears .bss/.noptrbss, loads CR0/CR6, stores the new PSWs, builds the
// fake g, arms the runtime panic entry points as traps and calls kmain. Never returns.
TEXT ·kentry(SB),NOSPLIT|NOFRAME,$0
	MOVD	KSTACKTOP, R15
	// clear [runtime·bss, runtime·end): the netboot path does not promise zeroed memory
	MOVD	$runtime·bss(SB), R2
	MOVD	$runtime·end(SB), R3
zero:
	CMPUBGE	R2, R3, zeroed
	MOVD	$0, 0(R2)
	ADD	$8, R2
	BR	zero
zeroed:
	// CR0 = cr0Value (AFP, VX, clock-comparator subclass); CR6 = 0 (no I/O subclasses yet)
	MOVD	$const_cr0Value, R1
	MOVD	R1, 0x280(R0)
	WORD	$0xEB000280	// LCTLG c0,c0,0x280
	BYTE	$0x00
	BYTE	$0x2F
	MOVD	$0, R1
	MOVD	R1, 0x280(R0)
	WORD	$0xEB660280	// LCTLG c6,c6,0x280
	BYTE	$0x00
	BYTE	$0x2F
	// new PSWs: 64-bit, DAT off, all interruptions masked, supervisor
	MOVD	$const_pswKernel, R1
	MOVD	R1, 0x1a0(R0)
	MOVD	$·restartEntry(SB), R2
	MOVD	R2, 0x1a8(R0)
	MOVD	R1, 0x1b0(R0)
	MOVD	$·extEntry(SB), R2
	MOVD	R2, 0x1b8(R0)
	MOVD	R1, 0x1c0(R0)
	MOVD	$·svcEntry(SB), R2
	MOVD	R2, 0x1c8(R0)
	MOVD	R1, 0x1d0(R0)
	MOVD	$·pgmEntry(SB), R2
	MOVD	R2, 0x1d8(R0)
	MOVD	R1, 0x1e0(R0)
	MOVD	$·mcckEntry(SB), R2
	MOVD	R2, 0x1e8(R0)
	MOVD	R1, 0x1f0(R0)
	MOVD	$·ioEntry(SB), R2
	MOVD	R2, 0x1f8(R0)
	// fake g: stack.lo, stack.hi, stackguard0, stackguard1 so compiler prologues pass
	MOVD	$·fakeg(SB), g
	MOVD	$·kstack(SB), R2
	MOVD	R2, 0(g)
	MOVD	$·kstack+65536(SB), R3
	MOVD	R3, 8(g)
	ADD	$4096, R2
	MOVD	R2, 16(g)
	MOVD	R2, 24(g)
	BL	·kmain(SB)
	MOVD	$const_waitKmainReturned, R2
	BR	haltR2<>(SB)
	// never reached: this reference keeps ·lowentry (lowentry_s390x.s) in the link; the
	// linker copies it to LowEntryBase and makes it the image's entry (docs/image.md)
	BR	·lowentry(SB)

// Trap stubs. Each saves the interrupted GPRs at lowcore 0x200 with base 0 (no free register
// needed), then jumps to trapSave with R2 = old-PSW address, R3 = Go handler.
TEXT ·svcEntry(SB),NOSPLIT|NOFRAME,$0
	STMG	R0, R15, 0x200(R0)
	MOVD	$0x140, R2
	MOVD	$·svcTrap(SB), R3
	BR	trapSave<>(SB)

TEXT ·extEntry(SB),NOSPLIT|NOFRAME,$0
	STMG	R0, R15, 0x200(R0)
	MOVD	$0x130, R2
	MOVD	$·extTrap(SB), R3
	BR	trapSave<>(SB)

TEXT ·ioEntry(SB),NOSPLIT|NOFRAME,$0
	STMG	R0, R15, 0x200(R0)
	MOVD	$0x170, R2
	MOVD	$·ioTrap(SB), R3
	BR	trapSave<>(SB)

// pgmEntry: a program check in problem state is the loader's (fault or signal); one in
// supervisor state is a metal bug and goes to kernelBug with the registers left at 0x200.
TEXT ·pgmEntry(SB),NOSPLIT|NOFRAME,$0
	STMG	R0, R15, 0x200(R0)
	MOVBZ	0x151(R0), R1	// old PSW byte 1; 0x01 = problem state
	AND	$1, R1
	CMPBEQ	R1, $0, kernel
	MOVD	$0x150, R2
	MOVD	$·pgmTrap(SB), R3
	BR	trapSave<>(SB)
kernel:
	MOVD	KSTACKTOP, R15
	MOVD	$·fakeg(SB), g
	BL	·kernelBug(SB)
	MOVD	$const_waitKernelBug, R2
	BR	haltR2<>(SB)

TEXT ·mcckEntry(SB),NOSPLIT|NOFRAME,$0
	STMG	R0, R15, 0x200(R0)
	MOVD	KSTACKTOP, R15
	MOVD	$·fakeg(SB), g
	BL	·machineCheck(SB)
	MOVD	$const_waitKernelBug, R2
	BR	haltR2<>(SB)

TEXT ·restartEntry(SB),NOSPLIT|NOFRAME,$0
	STMG	R0, R15, 0x200(R0)
	MOVD	KSTACKTOP, R15
	MOVD	$·fakeg(SB), g
	BL	·restartInterrupt(SB)
	MOVD	$const_waitKernelBug, R2
	BR	haltR2<>(SB)

// trapSave copies the interrupted context into the current thread's tcb (·curTCB): GPRs from
// 0x200, the old PSW from (R2), FPC and V0-V31; then calls the Go handler in R3 on a fresh
// kernel stack. Handlers end in dispatch, which never returns here.
TEXT trapSave<>(SB),NOSPLIT|NOFRAME,$0
	MOVD	·curTCB(SB), R1
	MVC	$128, 0x200(R0), tcb_gprs(R1)
	MVC	$16, 0(R2), tcb_psw(R1)
	WORD	$(0xB29C1000+tcb_fpc)	// STFPC tcb_fpc(R1)
	VSTM	V0, V15, tcb_vrs(R1)
	VSTM	V16, V31, (tcb_vrs+256)(R1)
	MOVD	KSTACKTOP, R15
	MOVD	$·fakeg(SB), g
	BL	(R3)
	MOVD	$const_waitHandlerReturned, R2
	BR	haltR2<>(SB)

// func resume() — continue the thread ·curTCB: restores FPC, V0-V31, the PSW (via lowcore
// 0x300) and all GPRs, then LPSWE. Never returns. In: nothing. Clobbers: everything.
TEXT ·resume(SB),NOSPLIT|NOFRAME,$0
again:
	MOVD	·curTCB(SB), R1
	WORD	$(0xB29D1000+tcb_fpc)	// LFPC tcb_fpc(R1)
	VLM	tcb_vrs(R1), V0, V15
	VLM	(tcb_vrs+256)(R1), V16, V31
	MVC	$16, tcb_psw(R1), 0x300(R0)
	LMG	tcb_gprs(R1), R0, R15
	WORD	$0xB2B20300	// LPSWE 0x300
	BR	again

// func idleWait() — enabled wait (I/O, external, machine check) until an interruption. The
// interruption's handler runs on a fresh kernel stack and never comes back here; ·curTCB must
// point at the idle tcb so the trap stub's save is harmless. Never returns.
TEXT ·idleWait(SB),NOSPLIT|NOFRAME,$0
again:
	MOVD	$const_pswIdle, R1
	MOVD	R1, 0x310(R0)
	MOVD	$idleWoke<>(SB), R1
	MOVD	R1, 0x318(R0)
	WORD	$0xB2B20310	// LPSWE 0x310
	BR	again

TEXT idleWoke<>(SB),NOSPLIT|NOFRAME,$0
	MOVD	$const_waitIdleResumed, R2
	BR	haltR2<>(SB)

// func disabledWait(code uint64) — load a disabled-wait PSW whose address is code: the CPU
// stops for good (QEMU reports a guest panic unless code&0xfff == 0xfff). Never returns.
TEXT ·disabledWait(SB),NOSPLIT|NOFRAME,$0-8
	MOVD	code+0(FP), R2
	BR	haltR2<>(SB)

TEXT haltR2<>(SB),NOSPLIT|NOFRAME,$0
stop:
	MOVD	$const_pswDisabled, R1
	MOVD	R1, 0x320(R0)
	MOVD	R2, 0x328(R0)
	WORD	$0xB2B20320	// LPSWE 0x320
	BR	stop

// func sigpStopSelf() — SIGP order 5 (stop) to CPU 0, this CPU: QEMU exits with status 0 once
// every CPU is stopped. Falls back to a quiesce disabled wait (address ...fff). Never returns.
TEXT ·sigpStopSelf(SB),NOSPLIT|NOFRAME,$0
	MOVD	$0, R2
	MOVD	$0, R3
	WORD	$0xAE230005	// SIGP r2,r3,5
	MOVD	$0xfff, R2
	BR	haltR2<>(SB)

// func servc(cmd uint32, sccb uintptr) cc — SERVICE CALL (SERVC, B220): issue SCLP
// command cmd on the SCCB at sccb. In: R1 = cmd, R2 = sccb. Out: condition code.
TEXT ·servc(SB),NOSPLIT|NOFRAME,$0-17
	MOVWZ	cmd+0(FP), R1
	MOVD	sccb+8(FP), R2
	WORD	$0xB2200012	// SERVC r1,r2
	IPM	R3
	SRD	$28, R3
	AND	$3, R3
	MOVB	R3, ret+16(FP)
	RET

// func stckf() uint64 — STORE CLOCK FAST (B27C): the TOD clock.
TEXT ·stckf(SB),NOSPLIT|NOFRAME,$0-8
	STCKF	ret+0(FP)
	RET

// func setClockComparator(v uint64) — SET CLOCK COMPARATOR (SCKC, B206) from the argument slot.
TEXT ·setClockComparator(SB),NOSPLIT|NOFRAME,$0-8
	WORD	$0xB206F008	// SCKC 8(R15)
	RET

// func setCR6(mask uint64) — LCTLG CR6: the I/O-interruption subclass mask (bits 32-39 enable
// ISC 0-7; the NIC uses ISC 3, 0x10000000). In: mask at 8(R15). Clobbers nothing.
TEXT ·setCR6(SB),NOSPLIT|NOFRAME,$0-8
	WORD	$0xEB66F008	// LCTLG c6,c6,8(R15)
	BYTE	$0x00
	BYTE	$0x2F
	RET

// func loadASCE(asce uint64) — LCTLG CR1, CR7 and CR13 (primary, secondary, home ASCE).
TEXT ·loadASCE(SB),NOSPLIT|NOFRAME,$0-8
	WORD	$0xEB11F008	// LCTLG c1,c1,8(R15)
	BYTE	$0x00
	BYTE	$0x2F
	WORD	$0xEB77F008	// LCTLG c7,c7,8(R15)
	BYTE	$0x00
	BYTE	$0x2F
	WORD	$0xEBDDF008	// LCTLG c13,c13,8(R15)
	BYTE	$0x00
	BYTE	$0x2F
	RET

// func ptlb() — PURGE TLB (B20D) of this CPU.
TEXT ·ptlb(SB),NOSPLIT|NOFRAME,$0
	WORD	$0xB20D0000	// PTLB
	RET

// func stfle(buf uintptr) — STORE FACILITY LIST EXTENDED (B2B0) of 4 doublewords at buf.
TEXT ·stfle(SB),NOSPLIT|NOFRAME,$0-8
	MOVD	buf+0(FP), R1
	MOVD	$3, R0
	WORD	$0xB2B01000	// STFLE 0(R1)
	RET

// func prno(fc uint64, param, buf, n uintptr) — PERFORM RANDOM NUMBER OPERATION (B93C).
// fc 0 = query (16-byte bitmap at param), 114 = TRNG (n bytes of conditioned entropy at buf).
// In: R0 = fc, R1 = param, R2/R3 = no raw output, R4/R5 = buf/n. Loops on cc 3 (partial).
TEXT ·prno(SB),NOSPLIT|NOFRAME,$0-32
	MOVD	fc+0(FP), R0
	MOVD	param+8(FP), R1
	MOVD	$0, R2
	MOVD	$0, R3
	MOVD	buf+16(FP), R4
	MOVD	n+24(FP), R5
more:
	WORD	$0xB93C0024	// PRNO r2,r4
	BVS	more
	RET

// func diag308(subcode uint64, addr uintptr) (rc uint64) — DIAGNOSE X'308' (IPL functions):
// r2 = addr, r4 = subcode, rc comes back in r3 (0x0001 ok, 0x0102 no configuration).
TEXT ·diag308(SB),NOSPLIT|NOFRAME,$0-24
	MOVD	subcode+0(FP), R4
	MOVD	addr+8(FP), R2
	MOVD	$0, R3
	WORD	$0x83240308	// DIAG r2,r4,0x308
	MOVD	R3, rc+16(FP)
	RET

// func stsi(buf uintptr, fc, sel1, sel2 uint64) cc — STORE SYSTEM INFORMATION (B27D):
// R0 = fc<<28 | sel1, R1 = sel2, the 4 KiB SYSIB goes to buf (page aligned).
TEXT ·stsi(SB),NOSPLIT|NOFRAME,$0-33
	MOVD	fc+8(FP), R0
	SLD	$28, R0
	MOVD	sel1+16(FP), R1
	OR	R1, R0
	MOVD	sel2+24(FP), R1
	MOVD	buf+0(FP), R2
	WORD	$0xB27D2000	// STSI 0(R2)
	IPM	R3
	SRD	$28, R3
	AND	$3, R3
	MOVB	R3, ret+32(FP)
	RET

// func imageEnd() uintptr — the address of runtime·end (end of metal's .noptrbss).
TEXT ·imageEnd(SB),NOSPLIT|NOFRAME,$0-8
	MOVD	$runtime·end(SB), R1
	MOVD	R1, ret+0(FP)
	RET

// func textEnd() uintptr — the address of runtime·etext (end of metal's code, for /proc/iomem).
TEXT ·textEnd(SB),NOSPLIT|NOFRAME,$0-8
	MOVD	$runtime·etext(SB), R1
	MOVD	R1, ret+0(FP)
	RET

// func kexecJump(tramp, plan uintptr, schid uint32, viaStub uint64) — enters the kernel-start
// trampoline (handoff_s390x.go) copied to tramp: R2 = first plan page, R4 = subsystem-id word,
// R5 = 1 to start at 0x10000 through the reset-PSW stub, 0 to load the PSW at 0. Never returns.
TEXT ·kexecJump(SB),NOSPLIT|NOFRAME,$0-32
	MOVD	tramp+0(FP), R1
	MOVD	plan+8(FP), R2
	MOVWZ	schid+16(FP), R4
	MOVD	viaStub+24(FP), R5
	BR	(R1)
