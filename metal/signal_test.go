package metal

import "testing"

func TestSignalFrameLayout(t *testing.T) {
	// Offsets fixed by Linux's struct rt_sigframe and Go's ucontext for s390x
	// (research: ucontext 392 bytes, mcontext at 40, gregs at 56, fpregs at 256, sigmask at 384).
	tests := []struct {
		name      string
		got, want int
	}{
		{"svc insn", sfSVCInsn, 160},
		{"siginfo", sfInfo, 168},
		{"ucontext", sfUcontext, 296},
		{"psw mask", ucPSWMask, 40},
		{"gregs", ucGregs, 56},
		{"aregs", ucAregs, ucGregs + 16*8},
		{"fpc", ucFPC, ucAregs + 16*4},
		{"fpregs", ucFPRegs, 256},
		{"sigmask", ucSigmask, ucFPRegs + 16*8},
		{"ucontext size", ucSize, 392},
		{"frame size", sfSize, 688},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s offset = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestSignalFramePlacement(t *testing.T) {
	tests := []struct {
		name               string
		sp, altSP, altSize uint64
		onstack            bool
		want               uint64
	}{
		{"thread stack", 0x10000, 0x80000, 0x8000, false, (0x10000 - sfSize) &^ 7},
		{"alt stack", 0x10000, 0x80000, 0x8000, true, (0x88000 - sfSize) &^ 7},
		{"already on alt stack", 0x84000, 0x80000, 0x8000, true, (0x84000 - sfSize) &^ 7},
		{"no alt stack", 0x10005, 0, 0, true, (0x10005 - sfSize) &^ 7},
	}
	for _, tt := range tests {
		if got := signalFrame(tt.sp, tt.altSP, tt.altSize, tt.onstack); got != tt.want {
			t.Errorf("%s: signalFrame(%#x, %#x, %#x, %v) = %#x, want %#x", tt.name, tt.sp, tt.altSP, tt.altSize, tt.onstack, got, tt.want)
		}
	}
}
