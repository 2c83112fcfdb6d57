// The low-memory entry stub of netipl.img (metal/lowentry.go, docs/image.md). The linker copies
// these bytes to metal.LowEntryBase and makes them e_entry, so the routine must be position
// independent: no symbol references, only relative branches inside itself; its base comes from
// BASR, its data from the parameter block the linker fills in at lowentry+LowEntryParamOff.
// R10/R11 (assembler temporaries, used by DIVDU/MODDU and AND) carry no data of ours.

#include "go_asm.h"
#include "textflag.h"

// fields of the parameter block, R12 = lowentry
#define P_KENTRY (const_LowEntryParamOff+const_LowEntryKentry)(R12)
#define P_NEED (const_LowEntryParamOff+const_LowEntryNeed)(R12)
#define P_NEEDMIB (const_LowEntryParamOff+const_LowEntryNeedMiB)(R12)
#define P_MSG (const_LowEntryParamOff+const_LowEntryMsg)(R12)
#define P_FAULTMSG (const_LowEntryParamOff+const_LowEntryFaultMsg)(R12)

// func lowentry() — the ELF entry; never returns. Reached like kentry (DAT off, supervisor,
// masked; registers zero under -kernel, BIOS leftovers under netboot_fw) but possibly in a guest
// whose RAM ends below metal. Sets the program-new PSW to its own fault path, reads the RAM size
// with SCLP Read SCP Info (forced, then plain) into the SCCB page after its first page, and:
//   RAM >= need         → branches to kentry (address from the block; kentry needs no registers);
//   RAM <  need         → prints LowEntryTooLittle and stops (disabled wait waitTooLittleRAM);
//   no SCLP answer      → loads the last needed byte: present → kentry, missing → program check;
//   program check       → prints LowEntryFault and stops (disabled wait waitLowEntryFault).
// Registers: R12 = lowentry, g (R13) = SCCB page, R7 = RAM bytes, R5 = template, R4 = output cursor,
// R9 = wait code, R6 = SERVC command / number to print, R14 = link of the local subroutines.
// Clobbers: R1-R9, R12-R14 (and R10/R11).
TEXT ·lowentry(SB),NOSPLIT|NOFRAME,$0
	WORD	$0x0DC0A7F4	// BASR R12,R0 (R12 = lowentry+2); BRC 15,… over the block
	WORD	$0x00170000	// … to lowentry+48 (23 halfwords); 2 bytes of padding
	// parameter block at lowentry+8: magic "NETIPLLE", then 32 bytes the linker fills in
	WORD	$0x4E455449
	WORD	$0x504C4C45
	WORD	$0
	WORD	$0
	WORD	$0
	WORD	$0
	WORD	$0
	WORD	$0
	WORD	$0
	WORD	$0
	SUB	$2, R12	// R12 = lowentry
	MOVD	R12, g
	MOVD	$-4096, R1
	AND	R1, g
	ADD	$4096, g	// g = SCCB page (the page after lowentry's first)
	BL	setpgm	// R14 = fault, the program-check path below
fault:
	MOVWZ	P_FAULTMSG, R5
	ADD	R12, R5
	MOVD	$0, R7
	MOVD	$const_waitLowEntryFault, R9
	BR	say

setpgm:
	// program-new PSW: 64-bit, DAT off, masked, supervisor, at fault. PSW masks are built
	// with a shift: MOVD of a 64-bit constant would load it from a literal-pool symbol
	MOVD	$(const_pswKernel>>31), R1
	SLD	$31, R1
	MOVD	R1, 0x1d0(R0)
	MOVD	R14, 0x1d8(R0)
	MOVD	$const_sclpReadSCPInfoForced, R6
scp:
	// zero the SCCB page, length 4096, issue Read SCP Info
	MOVD	g, R1
	MOVD	$16, R2
zero:
	XC	$256, 0(R1), 0(R1)
	ADD	$256, R1
	SUB	$1, R2
	CMPBNE	R2, $0, zero
	MOVD	$4096, R1
	MOVH	R1, 0(g)
	BL	servc
	CMPBEQ	R1, $const_sccbRespReadDone, scpok
	CMPBEQ	R1, $const_sccbRespNormal, scpok
scpnext:
	MOVD	$const_sclpReadSCPInfo, R1
	CMPBEQ	R6, R1, probe	// both commands failed
	MOVD	R1, R6
	BR	scp
scpok:
	// RAM = rnmax (u16 @8, else u64 @104) × rnsize (u8 @10, else u32 @100) MiB
	MOVHZ	8(g), R7
	MOVBZ	10(g), R8
	CMPBNE	R7, $0, rnsize
	MOVD	104(g), R7
rnsize:
	CMPBNE	R8, $0, ram
	MOVWZ	100(g), R8
ram:
	MULLD	R8, R7
	SLD	$20, R7
	CMPBEQ	R7, $0, scpnext
	MOVD	P_NEED, R1
	CMPUBLT	R7, R1, toolittle
start:
	MOVD	P_KENTRY, R1
	BR	(R1)
probe:
	// no RAM size: touch the last byte metal needs; a missing page raises a program check
	MOVD	P_NEED, R1
	SUB	$1, R1
	MOVBZ	0(R1), R1
	BR	start
toolittle:
	MOVWZ	P_MSG, R5
	ADD	R12, R5
	MOVD	$const_waitTooLittleRAM, R9
say:
	// Write Event Mask: send ASCII console events
	XC	$32, 0(g), 0(g)
	MOVD	$28, R1
	MOVH	R1, 0(g)
	MOVD	$4, R1
	MOVH	R1, 10(g)
	MOVD	$const_evMaskASCII, R1
	MOVW	R1, 16(g)
	MOVD	$const_sclpWriteEventMask, R6
	BL	servc
	// render the template at R5 into the event data at SCCB+14
	MOVD	g, R4
	ADD	$14, R4
render:
	MOVBZ	0(R5), R1
	ADD	$1, R5
	CMPBEQ	R1, $0, rendered
	CMPBEQ	R1, $1, ramMiB
	CMPBEQ	R1, $2, needMiB
	MOVB	R1, 0(R4)
	ADD	$1, R4
	BR	render
ramMiB:
	MOVD	R7, R6
	SRD	$20, R6
	BL	decimal
	BR	render
needMiB:
	MOVD	P_NEEDMIB, R6
	BL	decimal
	BR	render
rendered:
	// Write Event Data: SCCB header, event header {6+n, 0x1a, 0, 0}, n bytes
	SUB	g, R4	// R4 = 14 + n
	MOVH	R4, 0(g)
	MOVD	$0, R1
	MOVW	R1, 2(g)
	MOVH	R1, 6(g)
	SUB	$8, R4
	MOVH	R4, 8(g)
	MOVD	$(const_evTypeASCII<<24), R1
	MOVW	R1, 10(g)
	MOVD	$const_sclpWriteEventData, R6
	BL	servc
	// disabled wait, PSW address = R9
	MOVD	$(const_pswDisabled>>31), R1
	SLD	$31, R1
	MOVD	R1, 0xf00(g)
	MOVD	R9, 0xf08(g)
stop:
	WORD	$0xB2B2DF00	// LPSWE 0xf00(R13)
	BR	stop

// servc (local): SERVICE CALL (SERVC, B220) command R6 on the SCCB at g, retrying while busy
// (cc 2). Out: R1 = the SCCB response code, 0 if the SCLP did not accept the command. Clobbers
// R1-R3. Returns through R14.
servc:
	MOVD	$1000, R3
servcAgain:
	MOVD	R6, R1
	MOVD	g, R2
	WORD	$0xB2200012	// SERVC R1,R2
	IPM	R1
	SRD	$28, R1
	AND	$3, R1
	CMPBEQ	R1, $0, servcDone
	CMPBNE	R1, $2, servcFailed
	SUB	$1, R3
	CMPBNE	R3, $0, servcAgain
servcFailed:
	MOVD	$0, R1
	BR	(R14)
servcDone:
	MOVHZ	6(g), R1
	BR	(R14)

// decimal (local): writes R6 in decimal at R4 and advances R4, using SCCB+0xfe0..0xff8 as
// scratch. Clobbers R1-R3, R6, R8. Returns through R14.
decimal:
	MOVD	$10, R2
	MOVD	g, R3
	ADD	$0xff8, R3
	MOVD	R3, R8
digit:
	MOVD	R6, R1
	MODDU	R2, R1
	DIVDU	R2, R6
	ADD	$48, R1
	SUB	$1, R8
	MOVB	R1, 0(R8)
	CMPBNE	R6, $0, digit
copy:
	MOVBZ	0(R8), R1
	MOVB	R1, 0(R4)
	ADD	$1, R8
	ADD	$1, R4
	CMPUBLT	R8, R3, copy
	BR	(R14)
