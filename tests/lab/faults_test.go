package lab

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// udpFrame builds an Ethernet/IPv4/UDP frame between the given ports.
func udpFrame(src, dst uint16, payload string) []byte {
	f := make([]byte, 14+20+8)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14] = 0x45
	f[14+9] = 17
	binary.BigEndian.PutUint16(f[34:], src)
	binary.BigEndian.PutUint16(f[36:], dst)
	return append(f, payload...)
}

func TestInjector(t *testing.T) {
	tftp := udpFrame(2001, 69, "rrq")
	dhcp := udpFrame(68, 67, "discover")
	tests := []struct {
		name  string
		f     Faults
		frame []byte
		dir   Direction
		want  int // deliveries
		check func(t *testing.T, d []Delivery, s FaultStats)
	}{
		{name: "no faults passes", f: Faults{}, frame: tftp, dir: ToGuest, want: 1},
		{name: "loss 100 drops", f: Faults{Loss: 100}, frame: tftp, dir: ToGuest, want: 0,
			check: func(t *testing.T, _ []Delivery, s FaultStats) {
				if s.Dropped != 1 {
					t.Errorf("Dropped = %d, want 1", s.Dropped)
				}
			}},
		{name: "dup 100 doubles", f: Faults{Dup: 100}, frame: tftp, dir: FromGuest, want: 2},
		{name: "scope tftp spares dhcp", f: Faults{Loss: 100, Scope: ScopeTFTP}, frame: dhcp, dir: ToGuest, want: 1},
		{name: "scope dhcp hits dhcp", f: Faults{Loss: 100, Scope: ScopeDHCP}, frame: dhcp, dir: ToGuest, want: 0},
		{name: "dir to-guest spares from-guest", f: Faults{Loss: 100, Dir: ToGuest}, frame: tftp, dir: FromGuest, want: 1},
		{name: "corrupt flips one bit past the Ethernet header", f: Faults{Corrupt: 100}, frame: tftp, dir: ToGuest, want: 1,
			check: func(t *testing.T, d []Delivery, _ FaultStats) {
				diff := 0
				for i := range tftp {
					if x := d[0].Frame[i] ^ tftp[i]; x != 0 {
						diff++
						if i < 14 || x&(x-1) != 0 {
							t.Errorf("byte %d changed by %#x, want one bit beyond byte 13", i, x)
						}
					}
				}
				if diff != 1 {
					t.Errorf("%d bytes differ, want 1", diff)
				}
			}},
		{name: "delay and jitter", f: Faults{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}, frame: tftp, dir: ToGuest, want: 1,
			check: func(t *testing.T, d []Delivery, _ FaultStats) {
				if d[0].After < 10*time.Millisecond || d[0].After >= 15*time.Millisecond {
					t.Errorf("After = %v, want [10ms, 15ms)", d[0].After)
				}
			}},
		{name: "reorder holds the frame", f: Faults{Reorder: 100}, frame: tftp, dir: ToGuest, want: 1,
			check: func(t *testing.T, d []Delivery, _ FaultStats) {
				if d[0].After != reorderHold {
					t.Errorf("After = %v, want %v", d[0].After, reorderHold)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := NewInjector(tt.f)
			d := in.Apply(tt.frame, tt.dir)
			if len(d) != tt.want {
				t.Fatalf("Apply(%+v) = %d deliveries, want %d", tt.f, len(d), tt.want)
			}
			for _, x := range d {
				if &x.Frame[0] == &tt.frame[0] {
					t.Errorf("delivery aliases the input frame")
				}
			}
			if tt.check != nil {
				tt.check(t, d, in.Stats())
			}
		})
	}
}

func TestInjectorSilenceAfter(t *testing.T) {
	in := NewInjector(Faults{SilenceAfter: 3, Scope: ScopeTFTP})
	data := udpFrame(69, 2001, "data")
	got := 0
	for i := 0; i < 10; i++ {
		got += len(in.Apply(data, ToGuest))
		in.Apply(udpFrame(2001, 69, "ack"), FromGuest) // never silenced
	}
	if got != 3 || in.Stats().Silenced != 7 {
		t.Errorf("SilenceAfter 3: delivered %d of 10, silenced %d; want 3 and 7", got, in.Stats().Silenced)
	}
}

func TestInjectorDeterministic(t *testing.T) {
	run := func() []int {
		in := NewInjector(Faults{Loss: 30, Dup: 30, Seed: 9})
		var out []int
		for i := 0; i < 200; i++ {
			out = append(out, len(in.Apply(udpFrame(1, 2, "x"), ToGuest)))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different decision at frame %d", i)
		}
	}
}

func TestStreamFrames(t *testing.T) {
	var buf bytes.Buffer
	frames := [][]byte{[]byte("first frame"), bytes.Repeat([]byte{7}, 1514)}
	for _, f := range frames {
		buf.Write(appendStreamFrame(nil, f))
	}
	for i, want := range frames {
		got, err := readStreamFrame(&buf, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: readStreamFrame = %d bytes, %v", i, len(got), err)
		}
	}
	bad := binary.BigEndian.AppendUint32(nil, maxFrame+1)
	if _, err := readStreamFrame(bytes.NewReader(bad), nil); err == nil ||
		err.Error() != "read stream frame: length 65537 out of range (1..65536)" {
		t.Errorf("oversized length: err = %v", err)
	}
	short := append(binary.BigEndian.AppendUint32(nil, 10), "abc"...)
	if _, err := readStreamFrame(bytes.NewReader(short), nil); err == nil {
		t.Errorf("truncated frame: no error")
	}
}

func TestPcapWriter(t *testing.T) {
	var buf bytes.Buffer
	p, err := NewPcapWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	p.WriteFrame(time.Unix(100, 5000), []byte("abcd"))
	b := buf.Bytes()
	if len(b) != 24+16+4 {
		t.Fatalf("pcap size = %d, want 44", len(b))
	}
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Errorf("pcap header = % x", b[:24])
	}
	if binary.LittleEndian.Uint32(b[24:]) != 100 || binary.LittleEndian.Uint32(b[28:]) != 5 || binary.LittleEndian.Uint32(b[32:]) != 4 {
		t.Errorf("record header = % x", b[24:40])
	}
	var nilp *PcapWriter
	nilp.WriteFrame(time.Now(), []byte("x")) // must not panic
}
