package metal

// Lowcore (prefix area) of CPU 0, PoP chapter 3 "Assigned storage locations". metal keeps the
// prefix at 0, so these are absolute addresses. Only the fields metal uses are named; the struct
// exists so a host test can check every offset against the PoP.
type lowcore struct {
	_             [0x80]byte
	extParam      uint32 // 0x080 external-interruption parameter
	cpuAddr       uint16 // 0x084 CPU address
	extCode       uint16 // 0x086 external-interruption code
	svcILC        uint16 // 0x088 SVC ILC
	svcCode       uint16 // 0x08a SVC interruption code
	pgmILC        uint16 // 0x08c program ILC
	pgmCode       uint16 // 0x08e program-interruption code
	dxc           uint32 // 0x090 data-exception code
	_             [0x0c]byte
	excAccessID   uint8   // 0x0a0 exception access id
	_             [7]byte // 0x0a1
	teid          uint64  // 0x0a8 translation-exception identification
	_             [8]byte // 0x0b0
	subchannelID  uint32  // 0x0b8 I/O subsystem-id word
	ioParam       uint32  // 0x0bc I/O-interruption parameter
	ioWord        uint32  // 0x0c0 I/O-interruption identification word
	_             [0x5c]byte
	restartOldPSW [2]uint64 // 0x120
	extOldPSW     [2]uint64 // 0x130
	svcOldPSW     [2]uint64 // 0x140
	pgmOldPSW     [2]uint64 // 0x150
	mcckOldPSW    [2]uint64 // 0x160
	ioOldPSW      [2]uint64 // 0x170
	_             [0x20]byte
	restartNewPSW [2]uint64  // 0x1a0
	extNewPSW     [2]uint64  // 0x1b0
	svcNewPSW     [2]uint64  // 0x1c0
	pgmNewPSW     [2]uint64  // 0x1d0
	mcckNewPSW    [2]uint64  // 0x1e0
	ioNewPSW      [2]uint64  // 0x1f0
	trapGPRs      [16]uint64 // 0x200 software: STMG target of every trap stub
	_             [0x80]byte // 0x280
	resumePSW     [2]uint64  // 0x300 software: PSW loaded by resume
}

// Absolute addresses of lowcore fields (prefix 0), PoP "Assigned storage locations".
const (
	lcExtParam      = 0x080
	lcExtCode       = 0x086
	lcSVCILC        = 0x088
	lcSVCCode       = 0x08a
	lcPgmILC        = 0x08c
	lcPgmCode       = 0x08e
	lcDXC           = 0x090
	lcTEID          = 0x0a8
	lcSubchannelID  = 0x0b8
	lcRestartOldPSW = 0x120
	lcExtOldPSW     = 0x130
	lcSVCOldPSW     = 0x140
	lcPgmOldPSW     = 0x150
	lcMcckOldPSW    = 0x160
	lcIOOldPSW      = 0x170
	lcRestartNewPSW = 0x1a0
	lcExtNewPSW     = 0x1b0
	lcSVCNewPSW     = 0x1c0
	lcPgmNewPSW     = 0x1d0
	lcMcckNewPSW    = 0x1e0
	lcIONewPSW      = 0x1f0
	lcTrapGPRs      = 0x200
	lcResumePSW     = 0x300
	lowcoreSize     = 0x2000 // two pages, never given to the loader
)

// PSW masks, PoP 4.1.1 "Program-status word" (bit numbers in the 64-bit mask).
const (
	pswDAT      = 0x0400000000000000                                         // bit 5
	pswIO       = 0x0200000000000000                                         // bit 6
	pswExt      = 0x0100000000000000                                         // bit 7
	pswMcck     = 0x0004000000000000                                         // bit 13
	pswWait     = 0x0002000000000000                                         // bit 14
	pswProblem  = 0x0001000000000000                                         // bit 15
	pswCC       = 0x0000300000000000                                         // bits 18-19
	pswPgmMask  = 0x00000f0000000000                                         // bits 20-23
	pswEA       = 0x0000000100000000                                         // bit 31
	pswBA       = 0x0000000080000000                                         // bit 32
	pswKernel   = pswEA | pswBA                                              // 64-bit, DAT off, masked, supervisor
	pswUser     = pswDAT | pswIO | pswExt | pswMcck | pswProblem | pswKernel // Linux PSW_USER_BITS
	pswIdle     = pswExt | pswIO | pswMcck | pswWait | pswKernel             // enabled wait
	pswDisabled = pswWait | pswKernel                                        // disabled wait: the machine stops
	pswUserBits = pswCC | pswPgmMask                                         // what rt_sigreturn may change
)

// Control register 0 bits, PoP 4.2 / Linux asm/ctlreg.h.
const (
	cr0Reset = 0xe0    // QEMU's reset value, kept
	cr0AFP   = 0x40000 // bit 45 additional floating-point registers
	cr0VX    = 0x20000 // bit 46 vector facility
	cr0CKC   = 0x800   // bit 52 clock-comparator subclass mask
	cr0Value = cr0Reset | cr0AFP | cr0VX | cr0CKC
)

// Program-interruption codes, PoP 6.5.
const (
	pgmOperation     = 0x01
	pgmPrivileged    = 0x02
	pgmExecute       = 0x03
	pgmProtection    = 0x04
	pgmAddressing    = 0x05
	pgmSpecification = 0x06
	pgmData          = 0x07
	pgmFixedOverflow = 0x08
	pgmFixedDivide   = 0x09
	pgmSegment       = 0x10
	pgmPage          = 0x11
	pgmASCEType      = 0x38
	pgmRegionFirst   = 0x39
	pgmRegionSecond  = 0x3a
	pgmRegionThird   = 0x3b
)

// External-interruption codes, PoP 6.6.
const (
	extClockComparator = 0x1004
	extServiceSignal   = 0x2401
)
