package metal

import (
	"testing"
	"unsafe"
)

func TestLowcoreOffsets(t *testing.T) {
	var lc lowcore
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"extParam", unsafe.Offsetof(lc.extParam), lcExtParam},
		{"extCode", unsafe.Offsetof(lc.extCode), lcExtCode},
		{"svcILC", unsafe.Offsetof(lc.svcILC), lcSVCILC},
		{"svcCode", unsafe.Offsetof(lc.svcCode), lcSVCCode},
		{"pgmILC", unsafe.Offsetof(lc.pgmILC), lcPgmILC},
		{"pgmCode", unsafe.Offsetof(lc.pgmCode), lcPgmCode},
		{"dxc", unsafe.Offsetof(lc.dxc), lcDXC},
		{"excAccessID", unsafe.Offsetof(lc.excAccessID), 0xa0},
		{"teid", unsafe.Offsetof(lc.teid), lcTEID},
		{"subchannelID", unsafe.Offsetof(lc.subchannelID), lcSubchannelID},
		{"ioParam", unsafe.Offsetof(lc.ioParam), 0xbc},
		{"ioWord", unsafe.Offsetof(lc.ioWord), 0xc0},
		{"restartOldPSW", unsafe.Offsetof(lc.restartOldPSW), lcRestartOldPSW},
		{"extOldPSW", unsafe.Offsetof(lc.extOldPSW), lcExtOldPSW},
		{"svcOldPSW", unsafe.Offsetof(lc.svcOldPSW), lcSVCOldPSW},
		{"pgmOldPSW", unsafe.Offsetof(lc.pgmOldPSW), lcPgmOldPSW},
		{"mcckOldPSW", unsafe.Offsetof(lc.mcckOldPSW), lcMcckOldPSW},
		{"ioOldPSW", unsafe.Offsetof(lc.ioOldPSW), lcIOOldPSW},
		{"restartNewPSW", unsafe.Offsetof(lc.restartNewPSW), lcRestartNewPSW},
		{"extNewPSW", unsafe.Offsetof(lc.extNewPSW), lcExtNewPSW},
		{"svcNewPSW", unsafe.Offsetof(lc.svcNewPSW), lcSVCNewPSW},
		{"pgmNewPSW", unsafe.Offsetof(lc.pgmNewPSW), lcPgmNewPSW},
		{"mcckNewPSW", unsafe.Offsetof(lc.mcckNewPSW), lcMcckNewPSW},
		{"ioNewPSW", unsafe.Offsetof(lc.ioNewPSW), lcIONewPSW},
		{"trapGPRs", unsafe.Offsetof(lc.trapGPRs), lcTrapGPRs},
		{"resumePSW", unsafe.Offsetof(lc.resumePSW), lcResumePSW},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("Offsetof(lowcore.%s) = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestPSWMasks(t *testing.T) {
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"user", pswUser, 0x0705000180000000},
		{"kernel", pswKernel, 0x0000000180000000},
		{"idle", pswIdle, 0x0306000180000000},
		{"disabled", pswDisabled, 0x0002000180000000},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("psw %s = %#016x, want %#016x", tt.name, tt.got, tt.want)
		}
	}
}
