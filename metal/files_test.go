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

func TestChooseLoadparm(t *testing.T) {
	ebcdic := func(s string) *[8]byte {
		var b [8]byte
		for i := range b {
			b[i] = 0x40
		}
		for i, c := range []byte(s) {
			switch {
			case c >= '0' && c <= '9':
				b[i] = 0xf0 + c - '0'
			case c >= 'A' && c <= 'I':
				b[i] = 0xc1 + c - 'A'
			case c >= 'J' && c <= 'R':
				b[i] = 0xd1 + c - 'J'
			case c >= 'S' && c <= 'Z':
				b[i] = 0xe2 + c - 'S'
			case c == '.':
				b[i] = 0x4b
			}
		}
		return &b
	}
	var zero [8]byte
	tests := []struct {
		name          string
		iplb, scpInfo *[8]byte
		want          string // the /sys/firmware/ipl/loadparm content
	}{
		{"neither source", nil, nil, "\n"},
		{"IPL block only (drop-in)", ebcdic("TORTURE1"), nil, "TORTURE1\n"},
		{"SCP info only (-kernel, no IPL block)", nil, ebcdic("2"), "2\n"},
		{"IPL block wins over SCP info", ebcdic("PROD1"), ebcdic("2"), "PROD1\n"},
		{"blank IPL block falls back to SCP info", ebcdic(""), ebcdic("LINUX"), "LINUX\n"},
		{"zeroed IPL block falls back to SCP info", &zero, ebcdic("A.1"), "A.1\n"},
		{"both blank", ebcdic(""), ebcdic(""), "\n"},
		{"SCP info zeroed", nil, &zero, "\n"},
		{"inner blank kept, trailing trimmed", nil, ebcdic("A B"), "A B\n"},
		{"unknown EBCDIC byte is not blank", &[8]byte{0x5a, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40}, ebcdic("2"), "?\n"},
	}
	for _, tt := range tests {
		var f platformFacts
		for i := range f.loadparm {
			f.loadparm[i] = 'X' // stale content must be overwritten
		}
		chooseLoadparm(&f.loadparm, tt.iplb, tt.scpInfo)
		var b [64]byte
		if got := string(b[:renderFile(fileIPLLoadparm, &f, b[:])]); got != tt.want {
			t.Errorf("%s: loadparm file = %q, want %q", tt.name, got, tt.want)
		}
	}
}
