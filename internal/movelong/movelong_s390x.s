#include "textflag.h"

// func moveLong(dst, src *byte, n uintptr)
//
// Copies n bytes from src to dst with MOVE LONG EXTENDED (MVCLE R2,R4,0: RS-a, opcode A8; pad
// byte 0 is unused because both lengths are n). MVCLE may stop early with condition code 3
// (QEMU stops at each page boundary; the CPU when interrupted) after updating the registers, so
// it is repeated until it ends with another code.
// Registers: R2/R3 the destination address and length (an even/odd pair), R4/R5 the source
// address and length.
TEXT ·moveLong(SB), NOSPLIT|NOFRAME, $0-24
	MOVD	dst+0(FP), R2
	MOVD	n+16(FP), R3
	MOVD	src+8(FP), R4
	MOVD	R3, R5
again:
	WORD	$0xA8240000 // MVCLE R2,R4,0
	BVS	again       // condition code 3: not done yet
	RET
