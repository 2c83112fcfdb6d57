package pxecfg

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

var (
	testMAC  = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	testIP   = netip.MustParseAddr("10.0.2.15")
	testUUID = [16]byte{0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x11, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x12, 0x34}
)

// ipNames are the hex IP names of 10.0.2.15 under dir.
func ipNames(dir string) []string {
	var out []string
	for _, n := range []string{"0A00020F", "0A00020", "0A0002", "0A000", "0A00", "0A0", "0A", "0"} {
		out = append(out, dir+n)
	}
	return out
}

func TestLook(t *testing.T) {
	const r = "tftp://10.0.2.2/"
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	one := func(s ...string) []string { return s }
	tests := []struct {
		name     string
		f        Facts
		boot     string
		cwd      string
		want     []string
		wantWhys []string // optional: Why of the first few candidates
	}{
		{
			name: "no bootfile, MAC and IP (QEMU 7.1 order without the boot file)",
			f:    Facts{Server: "10.0.2.2", MAC: testMAC, IP: testIP},
			cwd:  r,
			want: cat(one(r+"pxelinux.cfg/01-52-54-00-12-34-56"), ipNames(r+"pxelinux.cfg/"), one(r+"pxelinux.cfg/default")),
		},
		{
			name: "bootfile / with UUID (QEMU 7.3)",
			f:    Facts{Server: "10.0.2.2", Bootfile: "/", MAC: testMAC, IP: testIP, UUID: testUUID},
			cwd:  r + "/",
			want: cat(one(r+"/pxelinux.cfg/550e8400-e29b-11d4-a716-446655441234", r+"/pxelinux.cfg/01-52-54-00-12-34-56"),
				ipNames(r+"/pxelinux.cfg/"), one(r+"/pxelinux.cfg/default")),
		},
		{
			name: "bootfile in a directory",
			f:    Facts{Server: "10.0.2.2", Bootfile: "boot/s390x/kernel.img", MAC: testMAC},
			boot: r + "boot/s390x/kernel.img",
			cwd:  r + "boot/s390x/",
			want: one(r+"boot/s390x/pxelinux.cfg/01-52-54-00-12-34-56", r+"boot/s390x/pxelinux.cfg/default"),
		},
		{
			name:     "209 without 210: RFC 5071 (root) then QEMU (pxelinux.cfg/)",
			f:        Facts{Server: "10.0.2.2", ConfigFile: "s390x.cfg"},
			cwd:      r,
			want:     one(r+"s390x.cfg", r+"pxelinux.cfg/s390x.cfg", r+"pxelinux.cfg/default"),
			wantWhys: []string{"option 209", "option 209 (QEMU placement)", "default"},
		},
		{
			name: "209 and 210 prefix: both placements, per name",
			f:    Facts{Server: "10.0.2.2", ConfigFile: "my.cfg", PathPrefix: "s390/", MAC: testMAC},
			cwd:  r + "s390/",
			want: one(r+"s390/my.cfg", r+"s390/pxelinux.cfg/01-52-54-00-12-34-56", r+"s390/01-52-54-00-12-34-56",
				r+"s390/pxelinux.cfg/default", r+"s390/default"),
		},
		{
			name: "210 naming pxelinux.cfg/ (QEMU habit): one placement, cwd is its parent",
			f:    Facts{Server: "10.0.2.2", ConfigFile: "my.cfg", PathPrefix: "pxelinux.cfg/"},
			cwd:  r,
			want: one(r+"my.cfg", r+"pxelinux.cfg/my.cfg", r+"pxelinux.cfg/default"),
		},
		{
			name: "210 without trailing slash gets one",
			f:    Facts{Server: "10.0.2.2", PathPrefix: "/srv/tftp/pxelinux.cfg"},
			cwd:  r + "/srv/tftp/",
			want: one(r + "/srv/tftp/pxelinux.cfg/default"),
		},
		{
			name: "210 as an http URL",
			f:    Facts{Server: "10.0.2.2", PathPrefix: "http://boot.example/s390x/", MAC: testMAC},
			cwd:  "http://boot.example/s390x/",
			want: one("http://boot.example/s390x/pxelinux.cfg/01-52-54-00-12-34-56", "http://boot.example/s390x/01-52-54-00-12-34-56",
				"http://boot.example/s390x/pxelinux.cfg/default", "http://boot.example/s390x/default"),
		},
		{
			name: "bootfile URL, 209 absolute URL",
			f:    Facts{Bootfile: "http://h/a/pxelinux.0", ConfigFile: "tftp://other/x.cfg"},
			boot: "http://h/a/pxelinux.0",
			cwd:  "http://h/a/",
			want: one("tftp://other/x.cfg", "http://h/a/pxelinux.cfg/default"),
		},
		{
			name: "209 host::name",
			f:    Facts{Server: "10.0.2.2", ConfigFile: "cfgsrv::s390/x.cfg"},
			cwd:  r,
			want: one("tftp://cfgsrv/s390/x.cfg", r+"pxelinux.cfg/cfgsrv::s390/x.cfg", r+"pxelinux.cfg/default"),
		},
		{
			name: "IPv6: no hex IP names, bracketed server",
			f:    Facts{Server: "fec0::2", MAC: testMAC, IP: netip.MustParseAddr("fec0::5054:ff:fe12:3456")},
			cwd:  "tftp://[fec0::2]/",
			want: one("tftp://[fec0::2]/pxelinux.cfg/01-52-54-00-12-34-56", "tftp://[fec0::2]/pxelinux.cfg/default"),
		},
		{
			name: "IPv4-mapped IPv6 client address counts as IPv4",
			f:    Facts{Server: "s", IP: netip.MustParseAddr("::ffff:10.0.2.15")},
			cwd:  "tftp://s/",
			want: cat(ipNames("tftp://s/pxelinux.cfg/"), one("tftp://s/pxelinux.cfg/default")),
		},
		{
			name: "IP 192.0.2.91 (syslinux doc example)",
			f:    Facts{Server: "s", IP: netip.MustParseAddr("192.0.2.91")},
			cwd:  "tftp://s/",
			want: one("tftp://s/pxelinux.cfg/C000025B", "tftp://s/pxelinux.cfg/C000025", "tftp://s/pxelinux.cfg/C00002",
				"tftp://s/pxelinux.cfg/C0000", "tftp://s/pxelinux.cfg/C000", "tftp://s/pxelinux.cfg/C00", "tftp://s/pxelinux.cfg/C0",
				"tftp://s/pxelinux.cfg/C", "tftp://s/pxelinux.cfg/default"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Look(tt.f)
			if err != nil {
				t.Fatalf("Look(%+v) error %v", tt.f, err)
			}
			var got []string
			for _, c := range l.Candidates {
				got = append(got, c.URL)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Look(%+v) candidates =\n%q\nwant\n%q", tt.f, got, tt.want)
			}
			if l.Cwd != tt.cwd || l.Bootfile != tt.boot {
				t.Errorf("Look(%+v) cwd, bootfile = %q, %q; want %q, %q", tt.f, l.Cwd, l.Bootfile, tt.cwd, tt.boot)
			}
			for i, w := range tt.wantWhys {
				if l.Candidates[i].Why != w {
					t.Errorf("Look(%+v) candidate %d why = %q, want %q", tt.f, i, l.Candidates[i].Why, w)
				}
			}
		})
	}
}

func TestLookNoServer(t *testing.T) {
	if _, err := Look(Facts{Bootfile: "pxelinux.0"}); err != ErrNoServer {
		t.Errorf("Look(no server) error = %v, want ErrNoServer", err)
	}
}

func TestUUID(t *testing.T) {
	s := FormatUUID(testUUID)
	if s != "550e8400-e29b-11d4-a716-446655441234" {
		t.Errorf("FormatUUID = %q", s)
	}
	u, err := ParseUUID("550E8400-E29B-11D4-A716-446655441234")
	if err != nil || u != testUUID {
		t.Errorf("ParseUUID = %x, %v", u, err)
	}
	if FormatUUID([16]byte{}) != "" {
		t.Errorf("FormatUUID(zero) not empty")
	}
	for _, bad := range []string{"550e8400", "550e8400-e29b-11d4-a716-44665544123z", "550e8400e29b-11d4-a716-4466554412345"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) accepted", bad)
		}
	}
}

func TestResolveNames(t *testing.T) {
	tests := []struct{ cwd, name, url, alt string }{
		{"tftp://s/", "vmlinuz", "tftp://s/vmlinuz", ""},
		{"tftp://s/s390/", "vmlinuz", "tftp://s/s390/vmlinuz", "tftp://s/vmlinuz"},
		{"tftp://s/s390/", "/images/k", "tftp://s//images/k", ""},
		{"tftp://s/s390/", "::images/k", "tftp://s/images/k", ""},
		{"tftp://s/s390/", "other::images/k", "tftp://other/images/k", ""},
		{"tftp://s/s390/", "http://h/k", "http://h/k", ""},
		{"http://h/a/b/", "/images/k", "http://h/images/k", ""},
		{"http://h/a/", "k", "http://h/a/k", "http://h/k"},
		{"tftp://[fec0::2]/", "k", "tftp://[fec0::2]/k", ""},
		{"tftp://s/", "dir/a::b", "tftp://s/dir/a::b", ""}, // "::" after a "/" is part of the name, not host::name
		{"tftp://s/x/", "dir/a::b", "tftp://s/x/dir/a::b", "tftp://s/dir/a::b"},
	}
	for _, tt := range tests {
		url, alt := resolve(tt.cwd, tt.name)
		if url != tt.url || alt != tt.alt {
			t.Errorf("resolve(%q, %q) = %q, %q; want %q, %q", tt.cwd, tt.name, url, alt, tt.url, tt.alt)
		}
	}
}

func TestHostURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.0.2.2", "10.0.2.2"},
		{"fec0::2", "[fec0::2]"},
		{"::ffff:10.0.2.2", "10.0.2.2"}, // an IPv4-mapped address is the IPv4 server
		{"boot.example", "boot.example"},
	} {
		if got := hostURL(tt.in); got != tt.want {
			t.Errorf("hostURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
