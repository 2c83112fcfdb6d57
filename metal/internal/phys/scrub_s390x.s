#include "textflag.h"

// func Scrub(a, n uintptr)
//
// Clears n bytes at physical address a (8-byte aligned, n a multiple of 64) with ordinary
// 8-byte stores (MVGHI), eight per loop turn; n == 0 stores nothing.
// Registers: R1 the address, R2 the count of 64-byte blocks left (BRCTG counts it down).
//
// Why not clear(): Go's memclr clears whole pages with XC, and under QEMU 7.2 TCG the XC
// helper only checks the first byte of each 256-byte operand for translated code
// (probe_access_flags → notdirty_write of size 1). Translations elsewhere on the page survive,
// so the page stays on TCG's slow self-modifying-code store path for good (and a later jump to
// one of those addresses could run the stale translation). An ordinary store invalidates every
// translation it overlaps; once none is left on the page QEMU drops it from that path. See
// docs/memory.md ("Frames are scrubbed with plain stores").
TEXT ·Scrub(SB), NOSPLIT|NOFRAME, $0-16
	MOVD	a+0(FP), R1
	MOVD	n+8(FP), R2
	SRD	$6, R2
	CMPBEQ	R2, $0, done
loop:
	MOVD	$0, 0(R1)
	MOVD	$0, 8(R1)
	MOVD	$0, 16(R1)
	MOVD	$0, 24(R1)
	MOVD	$0, 32(R1)
	MOVD	$0, 40(R1)
	MOVD	$0, 48(R1)
	MOVD	$0, 56(R1)
	ADD	$64, R1
	BRCTG	R2, loop
done:
	RET
