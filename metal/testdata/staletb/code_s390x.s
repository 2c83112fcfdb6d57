#include "textflag.h"

// func callCode(pc uintptr) uint64
// Calls pc with BASR R14 (the code returns with BR R14 and sets only R2); R14 of the caller
// waits in R5 meanwhile. Returns R2.
TEXT ·callCode(SB), NOSPLIT|NOFRAME, $0-16
	MOVD	pc+0(FP), R1
	MOVD	R14, R5
	BL	(R1)
	MOVD	R5, R14
	MOVD	R2, ret+8(FP)
	RET

// func mvc256(dst, src uintptr)
// One MVC of 256 bytes from src (R4) to dst (R6).
TEXT ·mvc256(SB), NOSPLIT|NOFRAME, $0-16
	MOVD	dst+0(FP), R6
	MOVD	src+8(FP), R4
	MVC	$256, 0(R4), 0(R6)
	RET
