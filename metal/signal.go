package metal

// The s390x rt_sigframe metal builds, as Linux arch/s390/kernel/signal.c lays it out and the Go
// runtime reads it (runtime/defs_linux_s390x.go, signal_linux_s390x.go). Offsets from the frame.
const (
	sfCalleeSave = 160                 // register save area; backchain at +0
	sfSVCInsn    = 160                 // u16 "svc 173" (rt_sigreturn); R14 points here
	sfInfo       = 168                 // siginfo (128 bytes)
	sfUcontext   = sfInfo + 128        // 296: ucontext
	sfSize       = sfUcontext + ucSize // 688

	siSigno = 0
	siErrno = 4
	siCode  = 8
	siAddr  = 16

	ucFlags   = 0
	ucLink    = 8
	ucStackSP = 16
	ucStackFl = 24
	ucStackSz = 32
	ucPSWMask = 40
	ucPSWAddr = 48
	ucGregs   = 56
	ucAregs   = 184
	ucFPC     = 248
	ucFPRegs  = 256
	ucSigmask = 384
	ucSize    = 392

	svcRtSigreturn = 0x0aad // svc 173
)

// Signal numbers and flags (include/uapi/asm-generic/signal*.h as used on s390x).
const (
	sigILL   = 4
	sigABRT  = 6
	sigFPE   = 8
	sigKILL  = 9
	sigSEGV  = 11
	sigCHLD  = 17
	sigCONT  = 18
	sigSTOP  = 19
	sigURG   = 23
	sigWINCH = 28
	nSig     = 64

	sigDFL = 0
	sigIGN = 1

	saSiginfo   = 0x4
	saOnstack   = 0x08000000
	saRestart   = 0x10000000
	saNodefer   = 0x40000000
	saResethand = 0x80000000
	saRestorer  = 0x04000000

	ssOnstack = 1
	ssDisable = 2
	minSigStk = 2048

	segvMapErr = 1
	segvAccErr = 2
	illIllOpc  = 1
	fpeIntDiv  = 1
	fpeIntOvf  = 2
)

// sigBit returns the mask bit of signal sig (1..64).
func sigBit(sig uint64) uint64 { return 1 << (sig - 1) }

// defaultIgnored reports whether the default action of sig is to ignore it.
func defaultIgnored(sig uint64) bool {
	return sig == sigCHLD || sig == sigURG || sig == sigWINCH || sig == sigCONT
}

// signalFrame returns where the frame goes for a thread whose stack pointer is sp, given its
// alternate stack (size 0 = none) and whether the handler asked for it.
func signalFrame(sp, altSP, altSize uint64, onstack bool) uint64 {
	if onstack && altSize != 0 && !(sp > altSP && sp <= altSP+altSize) {
		sp = altSP + altSize
	}
	return (sp - sfSize) &^ 7
}
