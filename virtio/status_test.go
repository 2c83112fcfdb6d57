package virtio

import "testing"

func TestStatusText(t *testing.T) {
	for s := OK; s < statusCount; s++ {
		if s.String() == "" {
			t.Errorf("Status %d has no text", s)
		}
	}
	if got := statusCount.String(); got != "unknown virtio status" {
		t.Errorf("out-of-range Status = %q", got)
	}
	for _, tt := range []struct {
		s    Status
		want uintptr
	}{{OK, 0}, {ErrAgain, 11}, {ErrRuntFrame, 22}, {ErrOversizeFrame, 90}, {ErrNotReady, 19}, {ErrTimeout, 5}} {
		if got := tt.s.Errno(); got != tt.want {
			t.Errorf("%v.Errno() = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct {
		id   BusID
		want string
	}{{BusID{0, 7}, "0.0.0007"}, {BusID{3, 0xfe01}, "0.3.fe01"}, {BusID{1, 0}, "0.1.0000"}} {
		if got := busString(tt.id); got != tt.want {
			t.Errorf("BusID%+v.Put = %q, want %q", tt.id, got, tt.want)
		}
	}
	var mac [17]byte
	if got := string(mac[:PutMAC(mac[:], [6]byte{0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f})]); got != "52:54:00:ab:cd:0f" {
		t.Errorf("PutMAC = %q", got)
	}
	for _, tt := range []struct {
		v    uint32
		want string
	}{{0, "00"}, {0xe, "0e"}, {0x83, "83"}, {0x108000, "108000"}, {0xffffffff, "ffffffff"}} {
		var b [8]byte
		if got := string(b[:putHex(b[:], 0, tt.v)]); got != tt.want {
			t.Errorf("putHex(%#x) = %q, want %q", tt.v, got, tt.want)
		}
	}
	var short [10]byte
	if n := putString(short[:], 0, "No virtio-net device found"); n != 10 {
		t.Errorf("putString into 10 bytes = %d", n)
	}
}

func busString(b BusID) string {
	var buf [8]byte
	return string(buf[:b.Put(buf[:])])
}
