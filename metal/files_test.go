package metal

import "testing"

func TestRenderFile(t *testing.T) {
	f := platformFacts{memTotal: 128 << 20, memFree: 100 << 20, iplValid: true, ssid: 0, devno: 7}
	copy(f.loadparm[:], "PROD1   ")
	for i := range f.uuid {
		f.uuid[i] = byte(i * 17)
	}
	tests := []struct {
		path string
		want string
	}{
		{"/proc/meminfo", "MemTotal:         131072 kB\nMemFree:          102400 kB\nMemAvailable:     102400 kB\n"},
		{"/sys/firmware/ipl/ipl_type", "ccw\n"},
		{"/sys/firmware/ipl/device", "0.0.0007\n"},
		{"/sys/firmware/ipl/loadparm", "PROD1\n"},
		{"/sys/hypervisor/uuid", "00112233-4455-6677-8899-aabbccddeeff\n"},
	}
	for _, tt := range tests {
		id := lookupFile([]byte(tt.path))
		if id == fileNone {
			t.Errorf("lookupFile(%q) = none", tt.path)
			continue
		}
		var b [256]byte
		if got := string(b[:renderFile(id, &f, b[:])]); got != tt.want {
			t.Errorf("renderFile(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if lookupFile([]byte("/proc/self/cgroup")) != fileNone {
		t.Error("lookupFile(/proc/self/cgroup) found something")
	}
	var none platformFacts
	var b [64]byte
	if got := string(b[:renderFile(fileIPLType, &none, b[:])]); got != "unknown\n" {
		t.Errorf("ipl_type without IPLB = %q", got)
	}
}

func TestEBCDIC(t *testing.T) {
	in := []byte{0xc1, 0xc9, 0xd1, 0xd9, 0xe2, 0xe9, 0xf0, 0xf9, 0x40, 0x4b, 0x5a}
	want := "AIJRSZ09 .?"
	got := make([]byte, len(in))
	for i, c := range in {
		got[i] = ebcdicToASCII(c)
	}
	if string(got) != want {
		t.Errorf("ebcdicToASCII(%x) = %q, want %q", in, got, want)
	}
}

func TestPutHelpers(t *testing.T) {
	var b [64]byte
	n := putDec(b[:], 0, 0)
	n = putStr(b[:], n, " ")
	n = putDec(b[:], n, 18446744073709551615)
	n = putStr(b[:], n, " ")
	n = putHex(b[:], n, 0xdead, 8)
	if got, want := string(b[:n]), "0 18446744073709551615 0x0000dead"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
