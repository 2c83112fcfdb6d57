package dhcpv6

import (
	"fmt"
	"testing"
)

func TestParseBootURL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "scheme host addr port path" or "error: ..."
	}{
		{"tftp://[fec0::2]/s390x/kernel.img", "tftp fec0::2 fec0::2 69 s390x/kernel.img"},
		{"TFTP://[fec0::2]:1069/k", "tftp fec0::2 fec0::2 1069 k"},
		{"tftp://boot.example.com/pxelinux.cfg/default", "tftp boot.example.com invalid IP 69 pxelinux.cfg/default"},
		{"tftp://10.0.2.2//abs/path", "tftp 10.0.2.2 10.0.2.2 69 /abs/path"},
		{"http://[2001:db8::1]:8080/boot/initrd?arch=s390x", "http 2001:db8::1 2001:db8::1 8080 /boot/initrd?arch=s390x"},
		{"https://mirror.lab/images/vmlinuz", "https mirror.lab invalid IP 443 /images/vmlinuz"},
		{"ftp://x/y", `error: boot URL "ftp://x/y": unsupported scheme "ftp"`},
		{"tftp:///file", `error: boot URL "tftp:///file": missing host`},
		{"tftp://[fec0::2]", `error: boot URL "tftp://[fec0::2]": missing file name`},
		{"tftp://[fec0::2]/", `error: boot URL "tftp://[fec0::2]/": missing file name`},
		{"tftp://[fec0::zz]/k", `error: boot URL "tftp://[fec0::zz]/k": invalid host: ParseAddr("fec0::zz"): each colon-separated field must have at least one digit (at "zz")`},
		{"tftp://[fec0::2/k", `error: boot URL "tftp://[fec0::2/k": missing ']' in host`},
		{"tftp://h:99999/k", `error: boot URL "tftp://h:99999/k": bad port "99999"`},
		{"tftp://u:p@h/k", `error: boot URL "tftp://u:p@h/k": user information not supported`},
		{"http://h", `error: boot URL "http://h": missing file name`},
		{"tftp://h/a b", `error: boot URL "tftp://h/a b": contains blanks or control characters`},
		{"kernel.img", `error: boot URL "kernel.img": unsupported scheme ""`},
	} {
		b, err := ParseBootURL(tt.in)
		got := fmt.Sprintf("%s %s %v %d %s", b.Scheme, b.Host, b.Addr, b.Port, b.Path)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want {
			t.Errorf("ParseBootURL(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzParseBootURL(f *testing.F) {
	f.Add("tftp://[fec0::2]/s390x/kernel.img")
	f.Add("http://10.0.2.2:8080/k?x=1")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1024 {
			return
		}
		b, err := ParseBootURL(s)
		if err != nil {
			return
		}
		if b.Host == "" || b.Port == 0 || b.Path == "" || defaultPorts[b.Scheme] == 0 {
			t.Errorf("ParseBootURL(%q) = %+v accepted with an empty field", s, b)
		}
	})
}
