// Channel-subsystem instruction wrappers (style B7/B8). Each returns the condition code and decides
// nothing. Encodings: z/Architecture Principles of Operation SA22-7832-13, chapter 14 ("I/O
// Instructions"); the privileged ones have no Go mnemonic and are emitted with WORD.
// R0 is Go's zero register and R10/R11 are assembler temporaries: none is used here.

#include "textflag.h"

// func stsch(sid uint32, schib *SCHIB) CC
// STORE SUBCHANNEL (S format, B234): stores the SCHIB of the subchannel named by GR1.
// In: R1 = subsystem-id word, R2 = SCHIB address. Out: cc. Clobbers R1-R3.
TEXT ·stsch(SB), NOSPLIT, $0-17
	MOVWZ	sid+0(FP), R1
	MOVD	schib+8(FP), R2
	WORD	$0xB2342000	// STSCH 0(R2)
	IPM	R3	// cc -> bits 34-35, bits 32-33 zero
	MOVWZ	R3, R3
	SRD	$28, R3	// cc
	MOVB	R3, ret+16(FP)
	RET

// func msch(sid uint32, schib *SCHIB) CC
// MODIFY SUBCHANNEL (S format, B232): loads the PMCW fields of the SCHIB into the subchannel.
// In: R1 = subsystem-id word, R2 = SCHIB address. Out: cc. Clobbers R1-R3.
TEXT ·msch(SB), NOSPLIT, $0-17
	MOVWZ	sid+0(FP), R1
	MOVD	schib+8(FP), R2
	WORD	$0xB2322000	// MSCH 0(R2)
	IPM	R3
	MOVWZ	R3, R3
	SRD	$28, R3
	MOVB	R3, ret+16(FP)
	RET

// func ssch(sid uint32, orb *ORB) CC
// START SUBCHANNEL (S format, B233): starts the channel program the ORB describes.
// In: R1 = subsystem-id word, R2 = ORB address. Out: cc. Clobbers R1-R3.
TEXT ·ssch(SB), NOSPLIT, $0-17
	MOVWZ	sid+0(FP), R1
	MOVD	orb+8(FP), R2
	WORD	$0xB2332000	// SSCH 0(R2)
	IPM	R3
	MOVWZ	R3, R3
	SRD	$28, R3
	MOVB	R3, ret+16(FP)
	RET

// func tsch(sid uint32, irb *IRB) CC
// TEST SUBCHANNEL (S format, B235): stores the IRB and clears status pending and any pending
// I/O interruption of the subchannel.
// In: R1 = subsystem-id word, R2 = IRB address. Out: cc. Clobbers R1-R3.
TEXT ·tsch(SB), NOSPLIT, $0-17
	MOVWZ	sid+0(FP), R1
	MOVD	irb+8(FP), R2
	WORD	$0xB2352000	// TSCH 0(R2)
	IPM	R3
	MOVWZ	R3, R3
	SRD	$28, R3
	MOVB	R3, ret+16(FP)
	RET

// func chsc(area uint64) CC
// CHANNEL SUBSYSTEM CALL (RRE format, B25F): runs the request in the 4 KiB-aligned area.
// In: R2 = area address (the R1 field of the instruction). Out: cc. Clobbers R2, R3.
TEXT ·chsc(SB), NOSPLIT, $0-9
	MOVD	area+0(FP), R2
	WORD	$0xB25F0020	// CHSC R2
	IPM	R3
	MOVWZ	R3, R3
	SRD	$28, R3
	MOVB	R3, ret+8(FP)
	RET

// func diag500(sid uint32, queue uint64, cookie int64) int64
// DIAGNOSE 0x500 (RS format, 83), function 3 = KVM_S390_VIRTIO_CCW_NOTIFY: notifies the virtio-ccw
// device on subchannel sid about new buffers in queue. QEMU and KVM take the function from GR1 and
// the arguments from GR2-GR4, and return the new cookie (or a negative error) in GR2.
// In: R1 = 3, R2 = subsystem-id word, R3 = queue index, R4 = cookie. Out: R2. Clobbers R1-R4.
TEXT ·diag500(SB), NOSPLIT, $0-32
	MOVD	$3, R1
	MOVWZ	sid+0(FP), R2
	MOVD	queue+8(FP), R3
	MOVD	cookie+16(FP), R4
	WORD	$0x83240500	// DIAG R2,R4,0x500
	MOVD	R2, ret+24(FP)
	RET

// func stckf() uint64
// STORE CLOCK FAST (S format, B27C): the TOD clock, bit 51 = 1 microsecond. Unprivileged.
// In: none. Out: the clock value stored straight into the result slot. Clobbers R1.
TEXT ·stckf(SB), NOSPLIT, $0-8
	MOVD	$ret+0(FP), R1
	WORD	$0xB27C1000	// STCKF 0(R1)
	RET

// func fullBarrier()
// BRANCH ON CONDITION (RR format, 07) with mask 14 and R2 = 0: the fast serialization of PoP
// 5-130, ordering every earlier storage access before every later one. Clobbers nothing.
TEXT ·fullBarrier(SB), NOSPLIT, $0-0
	BYTE	$0x07
	BYTE	$0xE0	// BCR 14,0
	RET
