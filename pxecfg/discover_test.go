package pxecfg

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		data string
		want Kind
	}{
		{"pxelinux magic", "# pxelinux\ndefault a\n", KindPXELinux},
		{"pxelinux magic any case", "# PXELinux config\n", KindPXELinux},
		{"magic needs the space", "#pxelinux\n", KindKernel},
		{"INS header", "* minimal lpar ins file\nimages/kernel.img 0x0\n", KindINS},
		{"INS header is case-sensitive star-space", "*minimal\n", KindKernel},
		{"header-less INS", "images/kernel.img 0x00000000\nimages/initrd.img 0x02000000\n", KindINS},
		{"name-address lines without address 0", "a 0x1000\nb 0x2000\n", KindKernel},
		{"iPXE", "#!ipxe\nkernel k\nboot\n", KindIPXE},
		{"binary kernel", "\x00\x08\x00\x00\x80\x01\x00\x00\x00\x00\x00\x00", KindKernel},
		{"text that is not a config", "hello world!\n", KindKernel},
	}
	for _, tt := range tests {
		if got := Sniff([]byte(tt.data)); got != tt.want {
			t.Errorf("%s: Sniff(%q) = %v, want %v", tt.name, tt.data, got, tt.want)
		}
	}
}

func TestIPXE(t *testing.T) {
	f := Facts{Server: "10.0.2.2", MAC: testMAC, IP: testIP}
	s, err := ParseIPXE("http://h/boot/s.ipxe", []byte("#!ipxe\ndhcp\n# comment\nkernel --name k vmlinuz console=ttysclp0 ip=${ip}\ninitrd initrd.img\ninitrd http://other/rootfs.img\nboot\nkernel ignored\n"), f)
	if err != nil {
		t.Fatalf("ParseIPXE error %v", err)
	}
	b := s.Resolve("http://h/boot/s.ipxe")
	if b.Kernel.URL != "http://h/boot/vmlinuz" || b.Cmdline != "console=ttysclp0 ip=10.0.2.15" ||
		!slices.Equal(urls(b.Initrds), []string{"http://h/boot/initrd.img", "http://other/rootfs.img"}) {
		t.Errorf("ParseIPXE.Resolve = %+v", b)
	}
	for _, bad := range []struct{ script, err string }{
		{"#!ipxe\ngoto x\n", `s.ipxe:2: iPXE command "goto" is not supported`},
		{"#!ipxe\nkernel k ${unknown}\n", "s.ipxe:2: iPXE variable ${unknown} is not known here"},
		{"#!ipxe\ndhcp\n", "s.ipxe: no kernel command"},
		{"#!ipxe\nkernel\n", "s.ipxe:2: kernel without an image"},
	} {
		if _, err := ParseIPXE("tftp://s/s.ipxe", []byte(bad.script), f); err == nil || err.Error() != bad.err {
			t.Errorf("ParseIPXE(%q) error = %v, want %q", bad.script, err, bad.err)
		}
	}
}

func TestDiscover(t *testing.T) {
	const r = "tftp://10.0.2.2/"
	tests := []struct {
		name    string
		facts   Facts
		files   map[string]string
		errs    map[string]error
		kernel  string
		cmdline string
		asked   []string // prefix of the URLs asked for
		wantErr string
	}{
		{name: "bootfile is a big kernel", facts: Facts{Server: "10.0.2.2", Bootfile: "kernel.img"},
			files: map[string]string{r + "kernel.img": strings.Repeat("k", SniffLimit+1)}, kernel: r + "kernel.img", asked: []string{r + "kernel.img"}},
		{name: "bootfile is a small kernel", facts: Facts{Server: "10.0.2.2", Bootfile: "kernel.img"},
			files: map[string]string{r + "kernel.img": "\x00\x08\x00\x00\x80\x00\x00\x00\x00\x00"}, kernel: r + "kernel.img"},
		{name: "magic config as the bootfile", facts: Facts{Server: "10.0.2.2", Bootfile: "s390x/magic.cfg"},
			files:  map[string]string{r + "s390x/magic.cfg": "# pxelinux\ndefault a\nlabel a\nkernel k\nappend x=1\n"},
			kernel: r + "s390x/k", cmdline: "x=1"},
		{name: "missing bootfile falls back to the lookup", facts: Facts{Server: "10.0.2.2", Bootfile: "missing.img", MAC: testMAC, IP: testIP},
			files:  map[string]string{r + "pxelinux.cfg/default": "label a\nkernel k\n"},
			kernel: r + "k", asked: append(append([]string{r + "missing.img", r + "pxelinux.cfg/01-52-54-00-12-34-56"}, ipNames(r+"pxelinux.cfg/")...), r+"pxelinux.cfg/default")},
		{name: "too small bootfile falls back", facts: Facts{Server: "10.0.2.2", Bootfile: "tiny.bin"},
			files: map[string]string{r + "tiny.bin": "1234", r + "pxelinux.cfg/default": "label a\nkernel k\n"}, kernel: r + "k"},
		{name: "broken magic config falls back", facts: Facts{Server: "10.0.2.2", Bootfile: "magic.cfg"},
			files:  map[string]string{r + "magic.cfg": "# pxelinux\nlabel a\n", r + "pxelinux.cfg/default": "label b\nkernel kb\n"},
			kernel: r + "kb"},
		{name: "TFTP errors other than not-found go on", facts: Facts{Server: "10.0.2.2", MAC: testMAC},
			errs:  map[string]error{r + "pxelinux.cfg/01-52-54-00-12-34-56": errAccess},
			files: map[string]string{r + "pxelinux.cfg/default": "label a\nkernel k\n"}, kernel: r + "k"},
		{name: "INS bootfile", facts: Facts{Server: "10.0.2.2", Bootfile: "generic.ins"},
			files:  map[string]string{r + "generic.ins": "* t\nimages/kernel.img 0x0\nimages/p.prm 0x10480\n", r + "images/p.prm": "ro\n"},
			kernel: r + "images/kernel.img", cmdline: "ro"},
		{name: "iPXE bootfile", facts: Facts{Bootfile: "http://h/s.ipxe"},
			files: map[string]string{"http://h/s.ipxe": "#!ipxe\nkernel http://h/k a=b\nboot\n"}, kernel: "http://h/k", cmdline: "a=b"},
		{name: "nothing found", facts: Facts{Server: "10.0.2.2", Bootfile: "missing.img"},
			wantErr: "no pxelinux.cfg found (1 names tried) after fetch tftp://10.0.2.2/missing.img: file not found"},
		{name: "config found but its entry is broken: final", facts: Facts{Server: "10.0.2.2", MAC: testMAC},
			files:   map[string]string{r + "pxelinux.cfg/01-52-54-00-12-34-56": "label a\n", r + "pxelinux.cfg/default": "label b\nkernel k\n"},
			wantErr: "pxelinux.cfg/01-52-54-00-12-34-56:1: LABEL a: no KERNEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &memFetcher{files: tt.files, errs: tt.errs}
			var reported int
			r, err := Discover(context.Background(), f, tt.facts, Options{Report: func(Step) { reported++ }})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Discover(%+v) error = %v, want %q", tt.facts, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover(%+v) error %v", tt.facts, err)
			}
			if r.Boot.Kernel.URL != tt.kernel || r.Boot.Cmdline != tt.cmdline {
				t.Errorf("Discover(%+v) = kernel %q cmdline %q, want %q %q", tt.facts, r.Boot.Kernel.URL, r.Boot.Cmdline, tt.kernel, tt.cmdline)
			}
			if tt.asked != nil && !slices.Equal(f.asked[:min(len(f.asked), len(tt.asked))], tt.asked) {
				t.Errorf("Discover(%+v) asked %q, want %q first", tt.facts, f.asked, tt.asked)
			}
			if reported != len(r.Steps) || len(r.Steps) == 0 {
				t.Errorf("Discover reported %d steps, result has %d", reported, len(r.Steps))
			}
		})
	}
}

func TestDiscoverNoServer(t *testing.T) {
	_, err := Discover(context.Background(), &memFetcher{}, Facts{}, Options{})
	if !errors.Is(err, ErrNoServer) {
		t.Errorf("Discover(no facts) error = %v, want ErrNoServer", err)
	}
}

func TestIsBootProgram(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"tftp://s/pxelinux.0", true},
		{"tftp://s/boot/LPXELINUX.0", true},
		{"http://s/grubx64.efi", true},
		{"tftp://s/menu.c32", true},
		{"tftp://s/undionly.kpxe", true},
		{"tftp://s/ipxe.pxe", true},
		{"tftp://s/s390x/kernel.img", false},
		{"tftp://s/generic.ins", false},
		{"tftp://s/v1.0/kernel", false}, // the suffix counts in the last element only
	} {
		if got := isBootProgram(tt.url); got != tt.want {
			t.Errorf("isBootProgram(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
