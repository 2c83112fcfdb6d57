package qemu

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConfigArgs(t *testing.T) {
	abs, err := filepath.Abs("build/x.img")
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"-M", "s390-ccw-virtio", "-nographic", "-no-reboot", "-action", "panic=exit-failure"}
	tests := []struct {
		name string
		c    Config
		want []string // after common
	}{
		{
			name: "kernel, no NIC",
			c:    Config{Image: "build/x.img"},
			want: []string{"-kernel", "build/x.img"},
		},
		{
			name: "kernel, RAM, UUID, NIC without bootindex",
			c: Config{Image: "/i.img", MemoryMiB: 512, UUID: "6a1c2d3e-0000-4000-8000-000000000001",
				NICs: []NIC{{Devno: "fe.0.0007"}}},
			want: []string{"-m", "512", "-uuid", "6a1c2d3e-0000-4000-8000-000000000001", "-kernel", "/i.img",
				"-netdev", "user,id=n0", "-device", "virtio-net-ccw,netdev=n0,devno=fe.0.0007"},
		},
		{
			name: "netboot_fw makes the image absolute and boots the first NIC",
			c:    Config{Mode: ModeNetbootFW, Image: "build/x.img", NICs: []NIC{{}}},
			want: []string{"-global", "s390-ipl.netboot_fw=" + abs,
				"-netdev", "user,id=n0", "-device", "virtio-net-ccw,netdev=n0,bootindex=1"},
		},
		{
			name: "netboot_fw, two NICs, backend options, MAC, extra args",
			c: Config{Mode: ModeNetbootFW, Image: "/fw.img", MemoryMiB: 128,
				NICs: []NIC{
					{Netdev: "user,tftp=/srv,bootfile=pxelinux.0", MAC: "52:54:00:12:34:56", Devno: "fe.0.0001"},
					{Netdev: "stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=5555"},
				},
				Extra: []string{"-d", "int"}},
			want: []string{"-m", "128", "-global", "s390-ipl.netboot_fw=/fw.img",
				"-netdev", "user,tftp=/srv,bootfile=pxelinux.0,id=n0",
				"-device", "virtio-net-ccw,netdev=n0,devno=fe.0.0001,mac=52:54:00:12:34:56,bootindex=1",
				"-netdev", "stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=5555,id=n1",
				"-device", "virtio-net-ccw,netdev=n1",
				"-d", "int"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Args()
			if err != nil {
				t.Fatalf("%+v.Args() error %v", tt.c, err)
			}
			want := append(slices.Clone(common), tt.want...)
			if !slices.Equal(got, want) {
				t.Errorf("%+v.Args() =\n  %q\nwant\n  %q", tt.c, got, want)
			}
		})
	}
}

func TestConfigArgsLoadparm(t *testing.T) {
	c := Config{Mode: ModeNetbootFW, Image: "/fw.img", Loadparm: "TORTURE1", NICs: []NIC{{}}}
	got, err := c.Args()
	if err != nil || len(got) < 2 || got[0] != "-M" || got[1] != "s390-ccw-virtio,loadparm=TORTURE1" {
		t.Errorf("%+v.Args() = %q, %v; want -M s390-ccw-virtio,loadparm=TORTURE1 first", c, got, err)
	}
}

func TestConfigArgsErrors(t *testing.T) {
	tests := []struct {
		name    string
		c       Config
		wantErr string
	}{
		{"no image", Config{}, "no image"},
		{"netboot_fw without NIC", Config{Mode: ModeNetbootFW, Image: "/x.img"}, "needs a NIC"},
		{"comma in netboot_fw path", Config{Mode: ModeNetbootFW, Image: "/a,b.img", NICs: []NIC{{}}}, "comma"},
		{"negative RAM", Config{Image: "/x.img", MemoryMiB: -1}, "negative"},
		{"unknown mode", Config{Image: "/x.img", Mode: Mode(7)}, "unknown"},
		{"loadparm too long", Config{Image: "/x.img", Loadparm: "123456789"}, "at most 8"},
		{"loadparm with a comma", Config{Image: "/x.img", Loadparm: "A,B"}, "at most 8"},
		{"duplicate netdev id", Config{Image: "/x.img", NICs: []NIC{{ID: "a"}, {ID: "a"}}}, "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Args()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v.Args() error = %v, want one containing %q", tt.c, err, tt.wantErr)
			}
		})
	}
	if _, err := (Config{}).Args(); !errors.Is(err, ErrNoImage) {
		t.Errorf("Config{}.Args() error = %v, want ErrNoImage", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeKernel, ModeNetbootFW} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if _, err := ParseMode("bios"); err == nil {
		t.Errorf("ParseMode(%q) succeeded, want an error", "bios")
	}
}

func TestCCWBusID(t *testing.T) {
	tests := []struct {
		devno, want, wantErr string
	}{
		{devno: "fe.0.0007", want: "0.0.0007"},
		{devno: "fe.1.abcd", want: "0.1.abcd"},
		{devno: "0.0.7", want: "0.0.0007"},
		{devno: "fe.0.12345", wantErr: "device number"},
		{devno: "fe.4.0001", wantErr: "subchannel set"},
		{devno: "zz.0.0001", wantErr: "channel subsystem"},
		{devno: "0007", wantErr: "want cssid.ssid.devno"},
	}
	for _, tt := range tests {
		got, err := CCWBusID(tt.devno)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CCWBusID(%q) = %q, %v; want error containing %q", tt.devno, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CCWBusID(%q) = %q, %v; want %q", tt.devno, got, err, tt.want)
		}
	}
}
