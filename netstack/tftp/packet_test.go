package tftp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestParseOACK(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      []byte
		want    string
		wantErr string
	}{
		{"two options", oackPkt("BLKSIZE", "1428", "tsize", "99"), "[{blksize 1428} {tsize 99}]", ""},
		{"empty", oackPkt(), "[]", ""},
		{"missing value", oackPkt("blksize"), "", `OACK option "blksize" value: string not NUL-terminated`},
		{"unterminated name", append(oackPkt(), 'x'), "", "OACK option name: string not NUL-terminated"},
		{"repeated", oackPkt("tsize", "1", "TSIZE", "2"), "", `OACK option "tsize" repeated`},
		{"empty name", oackPkt("", "1"), "", "OACK option with empty name"},
		{"not an OACK", dataPkt(1, nil), "", "not an OACK"},
		{"eight options", oackPkt("a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1", "g", "1", "h", "1"),
			"[{a 1} {b 1} {c 1} {d 1} {e 1} {f 1} {g 1} {h 1}]", ""},
		{"nine options", oackPkt("a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1", "g", "1", "h", "1", "i", "1"),
			"", "OACK with more than 8 options"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOACK(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("parseOACK(% x) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("parseOACK(% x) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseERROR(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"plain", errPkt(1, "File not found"), "File not found (code 1)"},
		{"empty message", errPkt(2, ""), "access violation (code 2)"},
		{"no NUL", []byte{0, 5, 0, 8, 'n', 'o'}, "no (code 8)"},
		{"control chars", errPkt(0, "a\x1b[2Jb\r\n"), "a[2Jb (code 0)"},
		{"unknown code", errPkt(99, ""), "error (code 99)"},
		{"text after NUL", append(errPkt(3, "full"), "junk"...), "full (code 3)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseERROR(tt.in)
			if err != nil || e.Error() != tt.want {
				t.Errorf("parseERROR(% x) = %v, %v; want %q", tt.in, e, err, tt.want)
			}
		})
	}
	if _, err := parseERROR([]byte{0, 5, 0}); err == nil {
		t.Errorf("parseERROR(short) = nil error, want one")
	}
}

func TestNegotiate(t *testing.T) {
	asked := []option{{"blksize", "1428"}, {"tsize", "0"}, {"windowsize", "16"}}
	for _, tt := range []struct {
		name    string
		got     []option
		want    negotiated
		wantErr string
	}{
		{"all", []option{{"blksize", "1024"}, {"tsize", "5"}, {"windowsize", "8"}}, negotiated{1024, 8, 5}, ""},
		{"none", nil, negotiated{512, 1, -1}, ""},
		{"window ignored", []option{{"blksize", "1428"}}, negotiated{1428, 1, -1}, ""},
		{"unrequested", []option{{"timeout", "1"}}, negotiated{}, `unrequested option "timeout" in OACK`},
		{"blksize too big", []option{{"blksize", "1429"}}, negotiated{}, "blksize 1429 outside 8..1428"},
		{"blksize too small", []option{{"blksize", "7"}}, negotiated{}, "blksize 7 outside 8..1428"},
		{"window zero", []option{{"windowsize", "0"}}, negotiated{}, "windowsize 0 outside 1..16"},
		{"not a number", []option{{"tsize", "-1"}}, negotiated{}, `option tsize: bad number "-1"`},
		{"spaces", []option{{"blksize", " 512"}}, negotiated{}, `option blksize: bad number " 512"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := negotiate(asked, tt.got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("negotiate(%v) = %v, %v; want error %q", tt.got, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("negotiate(%v) = %+v, %v; want %+v", tt.got, got, err, tt.want)
			}
		})
	}
}

func TestAppendRRQ(t *testing.T) {
	got := appendRRQ(nil, "a/b", []option{{"blksize", "1428"}})
	want := []byte("\x00\x01a/b\x00octet\x00blksize\x001428\x00")
	if !bytes.Equal(got, want) {
		t.Errorf("appendRRQ = %q, want %q", got, want)
	}
}

// FuzzParseOACK checks that OACK decoding never panics, that accepted options re-encode to the same bytes, and that
// negotiate never accepts values outside the RFC ranges.
func FuzzParseOACK(f *testing.F) {
	f.Add(oackPkt("blksize", "1428", "tsize", "0"))
	f.Add(oackPkt("windowsize", "16"))
	f.Add(oackPkt("blksize"))
	f.Add([]byte{0, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		opts, err := parseOACK(b)
		if err != nil {
			return
		}
		var kv []string
		for _, o := range opts {
			kv = append(kv, o.name, o.value)
		}
		if re := oackPkt(kv...); !bytes.Equal(bytes.ToLower(re), bytes.ToLower(b)) {
			t.Errorf("parseOACK(% x) = %v does not round-trip (% x)", b, opts, re)
		}
		n, err := negotiate([]option{{"blksize", "65464"}, {"tsize", "0"}, {"windowsize", "65535"}}, opts)
		if err == nil && (n.blockSize < 8 || n.blockSize > 65464 || n.window < 1 || n.window > 65535 || n.tsize < -1) {
			t.Errorf("negotiate(%v) accepted %+v", opts, n)
		}
	})
}

// FuzzParseERROR checks that ERROR decoding never panics and never returns control characters.
func FuzzParseERROR(f *testing.F) {
	f.Add(errPkt(1, "File not found"))
	f.Add([]byte{0, 5, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		e, err := parseERROR(b)
		if err != nil {
			return
		}
		if strings.ContainsFunc(e.Error(), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("parseERROR(% x) = %q contains control characters", b, e.Error())
		}
	})
}

func TestBlockSizeForMTU(t *testing.T) {
	for _, tt := range []struct {
		mtu  int
		ipv6 bool
		want int
	}{
		{1500, false, 1468},
		{1500, true, 1448},
		{9000, false, 8968},
		{65536, false, 65464},
		{20, false, 8},
	} {
		if got := BlockSizeForMTU(tt.mtu, tt.ipv6); got != tt.want {
			t.Errorf("BlockSizeForMTU(%d, %v) = %d, want %d", tt.mtu, tt.ipv6, got, tt.want)
		}
	}
}
