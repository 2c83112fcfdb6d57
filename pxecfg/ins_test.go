package pxecfg

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestParseINS(t *testing.T) {
	tests := []struct {
		name, data string
		title      string
		lines      []INSLine
		wantErr    string
	}{
		{name: "RHEL generic.ins", data: "* minimal lpar ins file\nimages/kernel.img 0x00000000\nimages/initrd.img 0x02000000\nimages/genericdvd.prm 0x00010480\nimages/initrd.addrsize 0x00010408\n",
			title: "minimal lpar ins file", lines: []INSLine{{"images/kernel.img", 0, "x.ins:2"}, {"images/initrd.img", 0x2000000, "x.ins:3"},
				{"images/genericdvd.prm", 0x10480, "x.ins:4"}, {"images/initrd.addrsize", 0x10408, "x.ins:5"}}},
		{name: "header-less, CRLF, tabs, decimal", data: "kernel.img\t0\r\n\r\ninitrd.img  33554432\r\n",
			lines: []INSLine{{"kernel.img", 0, "x.ins:1"}, {"initrd.img", 33554432, "x.ins:3"}}},
		{name: "0X is hex, comments later", data: "* t\n* a comment\nk 0X0\ni 0X1000000\n", title: "t",
			lines: []INSLine{{"k", 0, "x.ins:3"}, {"i", 0x1000000, "x.ins:4"}}},
		{name: "no newline at all", data: "kernel.img 0x0", lines: []INSLine{{"kernel.img", 0, "x.ins:1"}}},
		{name: "missing address", data: "* t\nkernel.img\n", wantErr: `x.ins:2: "kernel.img" has no load address`},
		{name: "bad address", data: "* t\nkernel.img 0xZZ\n", wantErr: `x.ins:2: load address "0xZZ": not a number`},
		{name: "extra fields", data: "* t\nkernel.img 0x0 extra\n", wantErr: `x.ins:2: "kernel.img 0x0 extra": want "file address"`},
		{name: "header only", data: "* just a title\n", wantErr: `x.ins: no "file address" lines`},
		{name: "too many lines", data: "* t\n" + strings.Repeat("initrd.img 0x2000000\n", MaxINSLines) + "one.more 0x3000000\n",
			wantErr: `x.ins:66: more than 64 "file address" lines`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, err := ParseINS("tftp://s/x.ins", []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseINS(%q) error = %v, want %q", tt.data, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseINS(%q) error %v", tt.data, err)
			}
			if ins.Title != tt.title || !slices.Equal(ins.Lines, tt.lines) {
				t.Errorf("ParseINS(%q) = %q %v, want %q %v", tt.data, ins.Title, ins.Lines, tt.title, tt.lines)
			}
		})
	}
}

func be(v ...uint64) string {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x>>56), byte(x>>48), byte(x>>40), byte(x>>32), byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return string(b)
}

func TestINSBoot(t *testing.T) {
	tests := []struct {
		name     string
		ins      string
		files    map[string]string
		kernel   string
		initrds  []string
		cmdline  string
		hasCmd   bool
		size     uint64
		wantErr  string
		kernAlt  string
		insDir   string
		insName  string
		fetchErr map[string]error
	}{
		{name: "RHEL addrsize", ins: "* minimal lpar ins file\nimages/kernel.img 0x00000000\nimages/initrd.img 0x02000000\nimages/genericdvd.prm 0x00010480\nimages/initrd.addrsize 0x00010408\n",
			files:  map[string]string{"images/genericdvd.prm": "ro ramdisk_size=40000 cio_ignore=all,!condev\n", "images/initrd.addrsize": be(0x2000000, 47900000)},
			kernel: "images/kernel.img", initrds: []string{"images/initrd.img"}, cmdline: "ro ramdisk_size=40000 cio_ignore=all,!condev", hasCmd: true, size: 47900000},
		{name: "Ubuntu 4-byte initrd.off/siz", ins: "* Ubuntu for z Series (default kernel)\nkernel.ubuntu 0x00000000\ninitrd.off 0x0001040c\ninitrd.siz 0x00010414\nparmfile.ubuntu 0x00010480\ninitrd.ubuntu 0x01000000\n",
			files:  map[string]string{"initrd.off": "\x01\x00\x00\x00", "initrd.siz": "\x00\x10\x00\x00", "parmfile.ubuntu": " --- \n"},
			kernel: "kernel.ubuntu", initrds: []string{"initrd.ubuntu"}, cmdline: "---", hasCmd: true, size: 0x100000},
		{name: "QEMU 7.5 measured layout", ins: "* Test INS file for netboot\nkernel.img 0x0\nparm.txt 0x10480\ninitrd 0x1000000\ninitrd.off 0x10408\ninitrd.siz 0x10410\n",
			files:  map[string]string{"parm.txt": "console=ttysclp0 marker=INS\n", "initrd.off": be(0x1000000), "initrd.siz": be(1234)},
			kernel: "kernel.img", initrds: []string{"initrd"}, cmdline: "console=ttysclp0 marker=INS", hasCmd: true, size: 1234},
		{name: "no parmfile: kernel's own command line", ins: "k 0\ni 0x2000000\n", kernel: "k", initrds: []string{"i"}},
		{name: "INITRD_START picks the initrd first", ins: "k 0\nb 0x1000000\na 0x3000000\nad 0x10408\n",
			files:  map[string]string{"ad": be(0x3000000, 9)},
			kernel: "k", initrds: []string{"a", "b"}, size: 9},
		{name: "INITRD_START with no file there", ins: "k 0\nb 0x1000000\nad 0x10408\n", files: map[string]string{"ad": be(0x5000000, 9)},
			wantErr: "INITRD_START 0x5000000: no file loads there"},
		{name: "no kernel", ins: "* t\ni 0x2000000\n", wantErr: "no file at address 0 (the kernel)"},
		{name: "two kernels", ins: "k 0\nk2 0x0\n", wantErr: "a second file at address 0"},
		{name: "address inside the kernel image", ins: "k 0\nx 0x1000\n", wantErr: "address 0x1000 is inside the kernel's own image"},
		{name: "parmarea file too long", ins: "k 0\nad 0x10470\n", files: map[string]string{"ad": be(1, 2, 3)}, wantErr: "run past the parmarea"},
		{name: "missing parmfile", ins: "k 0\np 0x10480\n", wantErr: "generic.ins:2: tftp://s/dvd/p: fetch tftp://s/dvd/p: file not found"},
		{name: "relative to the .ins directory, root as alt", ins: "images/k 0\n", insName: "dvd/generic.ins", kernel: "images/k", kernAlt: "tftp://s/images/k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := "tftp://s/dvd/"
			name := "generic.ins"
			if tt.insName != "" {
				name = tt.insName[strings.LastIndexByte(tt.insName, '/')+1:]
			}
			files := map[string]string{}
			for k, v := range tt.files {
				files[dir+k] = v
			}
			ins, err := ParseINS(dir+name, []byte(tt.ins))
			if err != nil {
				t.Fatalf("ParseINS error %v", err)
			}
			b, err := ins.Boot(context.Background(), &memFetcher{files: files}, dir+name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("INS.Boot(%q) error = %v, want %q", tt.ins, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("INS.Boot(%q) error %v", tt.ins, err)
			}
			var want []string
			for _, n := range tt.initrds {
				want = append(want, dir+n)
			}
			if b.Kernel.URL != dir+tt.kernel || !slices.Equal(urls(b.Initrds), want) || b.Cmdline != tt.cmdline ||
				b.HasCmdline != tt.hasCmd || b.InitrdSize != tt.size {
				t.Errorf("INS.Boot(%q) = kernel %q initrds %q cmdline %q (%v) size %d;\nwant %q %q %q (%v) %d", tt.ins,
					b.Kernel.URL, urls(b.Initrds), b.Cmdline, b.HasCmdline, b.InitrdSize, dir+tt.kernel, want, tt.cmdline, tt.hasCmd, tt.size)
			}
			if tt.kernAlt != "" && b.Kernel.Alt != tt.kernAlt {
				t.Errorf("INS.Boot kernel alt = %q, want %q", b.Kernel.Alt, tt.kernAlt)
			}
		})
	}
}

func TestParmfileCmdline(t *testing.T) {
	got := ParmfileCmdline([]byte("ro ramdisk_size=40000\r\n  cio_ignore=all,!condev  \n\ninst.repo=http://x/\n"))
	if want := "ro ramdisk_size=40000 cio_ignore=all,!condev inst.repo=http://x/"; got != want {
		t.Errorf("ParmfileCmdline = %q, want %q", got, want)
	}
}
