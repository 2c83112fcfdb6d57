package pxecfg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// boot parses cfg (served at tftp://s/pxelinux.cfg/default, cwd tftp://s/), selects with
// loadparm and resolves with the test facts.
func boot(t *testing.T, cfg, loadparm string, extra map[string]string) (Boot, *Config, Selection, error) {
	t.Helper()
	files := map[string]string{}
	for k, v := range extra {
		files["tftp://s/"+k] = v
	}
	f := &memFetcher{files: files}
	c, err := Load(context.Background(), f, "tftp://s/pxelinux.cfg/default", "tftp://s/", []byte(cfg))
	if err != nil {
		return Boot{}, c, Selection{}, err
	}
	s, err := Select(c, loadparm)
	if err != nil {
		return Boot{}, c, s, err
	}
	facts := Facts{Server: "10.0.2.2", MAC: testMAC, IP: testIP, Mask: netip.MustParseAddr("255.255.255.0"),
		Gateway: netip.MustParseAddr("10.0.2.2"), UUID: testUUID}
	b, err := Resolve(c, s, facts)
	return b, c, s, err
}

func urls(ss []Source) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.URL)
	}
	return out
}

func TestDirectives(t *testing.T) {
	tests := []struct {
		name     string
		cfg      string
		loadparm string
		include  map[string]string
		label    string
		kernel   string
		initrds  []string
		cmdline  string
		local    bool
		wantErr  string
		notes    []string // substrings expected among the notes
	}{
		{name: "QEMU test_pxelinux default", cfg: qemuPXE, label: "Debian", kernel: "tftp://s/kernel.debian",
			initrds: []string{"tftp://s/initrd.debian"}, cmdline: "testoption=teststring"},
		{name: "keywords any case, CRLF, tabs", cfg: "dEfAuLt x\r\nLabel x\r\n\tLiNuX\tvmlinuz\r\n  InItRd  a.img \r\n\tAPPEND  root=/dev/x  \r\n",
			label: "x", kernel: "tftp://s/vmlinuz", initrds: []string{"tftp://s/a.img"}, cmdline: "root=/dev/x"},
		{name: "labels case-sensitive", cfg: "default linux\nlabel Linux\nkernel A\nlabel linux\nkernel B\n", label: "linux", kernel: "tftp://s/B"},
		{name: "DEFAULT after its LABEL counts (QEMU ignores it)", cfg: "label first\nkernel A\nlabel second\nkernel B\ndefault second\n",
			label: "second", kernel: "tftp://s/B"},
		{name: "last DEFAULT wins", cfg: "default a\ndefault b\nlabel a\nkernel A\nlabel b\nkernel B\n", label: "b", kernel: "tftp://s/B"},
		{name: "DEFAULT label with extra options", cfg: "append g=1\ndefault x quiet\nlabel x\nkernel K\n", label: "x", kernel: "tftp://s/K",
			cmdline: "g=1 quiet"},
		{name: "DEFAULT implicit kernel command line", cfg: "append g=1\ndefault vmlinuz root=/dev/vda\n", label: "vmlinuz root=/dev/vda",
			kernel: "tftp://s/vmlinuz", cmdline: "g=1 root=/dev/vda"},
		{name: "unmatched one-word DEFAULT boots the first entry", cfg: "default nothere\nlabel a\nkernel A\n", label: "a", kernel: "tftp://s/A"},
		{name: "no DEFAULT: first entry", cfg: "label a\nkernel A\nlabel b\nkernel B\n", label: "a", kernel: "tftp://s/A"},
		{name: "global APPEND inherited", cfg: "append console=ttysclp0\nlabel a\nkernel A\n", label: "a", kernel: "tftp://s/A", cmdline: "console=ttysclp0"},
		{name: "label APPEND replaces global", cfg: "append console=ttysclp0\nlabel a\nkernel A\nappend x=1\n", label: "a", kernel: "tftp://s/A", cmdline: "x=1"},
		{name: "APPEND - clears", cfg: "append console=ttysclp0\nlabel a\nkernel A\nappend -\n", label: "a", kernel: "tftp://s/A", cmdline: ""},
		{name: "INITRD comma list", cfg: "label a\nkernel A\ninitrd one.img,two.img, three.img\n", label: "a", kernel: "tftp://s/A",
			initrds: []string{"tftp://s/one.img", "tftp://s/two.img", "tftp://s/three.img"}},
		{name: "initrd= inside APPEND (Cobbler)", cfg: "label a\nkernel /images/A\nappend initrd=/images/i1.img,/images/i2.img ks=x\n",
			label: "a", kernel: "tftp://s//images/A", initrds: []string{"tftp://s//images/i1.img", "tftp://s//images/i2.img"},
			cmdline: "initrd=/images/i1.img,/images/i2.img ks=x"},
		{name: "INITRD wins over initrd=", cfg: "label a\nkernel A\ninitrd real.img\nappend initrd=other.img\n", label: "a", kernel: "tftp://s/A",
			initrds: []string{"tftp://s/real.img"}, cmdline: "initrd=other.img"},
		{name: "IPAPPEND 1|2|4 per label", cfg: "label a\nkernel A\nappend q\nipappend 7\n", label: "a", kernel: "tftp://s/A",
			cmdline: "q ip=10.0.2.15:10.0.2.2:10.0.2.2:255.255.255.0 BOOTIF=01-52-54-00-12-34-56 SYSUUID=550e8400-e29b-11d4-a716-446655441234"},
		{name: "global SYSAPPEND 2", cfg: "sysappend 2\nlabel a\nkernel A\n", label: "a", kernel: "tftp://s/A", cmdline: "BOOTIF=01-52-54-00-12-34-56"},
		{name: "label IPAPPEND 0 overrides global", cfg: "ipappend 2\nlabel a\nkernel A\nipappend 0\n", label: "a", kernel: "tftp://s/A"},
		{name: "LOCALBOOT", cfg: "default local\nlabel local\nlocalboot -1\n", label: "local", local: true},
		{name: "missing KERNEL is an error for that entry", cfg: "default linux\nlabel linux\n  append console=ttysclp0\n",
			wantErr: "pxelinux.cfg/default:2: LABEL linux: no KERNEL"},
		{name: ".c32 module entry", cfg: "label m\nkernel menu.c32\n", wantErr: "menu.c32 is a syslinux module",
			notes: []string{"menu.c32 is a syslinux module"}},
		{name: "KERNEL .0 via PXE keyword", cfg: "label p\npxe pxelinux.0\n", wantErr: "PXE images cannot boot on s390x"},
		{name: "unknown keyword reported once, skipped", cfg: "frobnicate 1\nfrobnicate 2\nlabel a\nkernel A\nSAY hello\nDISPLAY boot.msg\n",
			label: "a", kernel: "tftp://s/A", notes: []string{"default:1: unknown keyword FROBNICATE ignored", "DISPLAY (a display file) ignored"}},
		{name: "keyword without argument", cfg: "label a\nkernel\nkernel A\n", label: "a", kernel: "tftp://s/A",
			notes: []string{"default:2: KERNEL without an argument ignored"}},
		{name: "INITRD outside a LABEL", cfg: "initrd x\nlabel a\nkernel A\n", label: "a", kernel: "tftp://s/A",
			notes: []string{"default:1: INITRD outside a LABEL ignored"}},
		{name: "TEXT HELP block skipped", cfg: "label a\nkernel A\ntext help\nkernel B\nendtext\n", label: "a", kernel: "tftp://s/A"},
		{name: "INCLUDE relative, nested", cfg: "include common.cfg\ndefault b\n",
			include: map[string]string{"common.cfg": "append g=1\ninclude pxelinux.cfg/more.cfg\n", "pxelinux.cfg/more.cfg": "label b\nkernel B\n"},
			label:   "b", kernel: "tftp://s/B", cmdline: "g=1"},
		{name: "MENU INCLUDE", cfg: "menu include extra.cfg\n", include: map[string]string{"extra.cfg": "label x\nkernel X\n"},
			label: "x", kernel: "tftp://s/X"},
		{name: "missing INCLUDE is a note", cfg: "include nothere.cfg\nlabel a\nkernel A\n", label: "a", kernel: "tftp://s/A",
			notes: []string{"INCLUDE nothere.cfg: not found"}},
		{name: "INCLUDE loop stops at depth 16", cfg: "include self.cfg\n", include: map[string]string{"self.cfg": "include self.cfg\n"},
			wantErr: "nested deeper than 16"},
		{name: "loadparm number 1-based", cfg: qemuPXE, loadparm: "3", label: "Fedora", kernel: "tftp://s/kernel.fedora"},
		{name: "loadparm 0 is automatic", cfg: qemuPXE, loadparm: "0", label: "Debian", kernel: "tftp://s/kernel.debian",
			initrds: []string{"tftp://s/initrd.debian"}, cmdline: "testoption=teststring"},
		{name: "loadparm label, any case", cfg: qemuPXE, loadparm: "FEDORA  ", label: "Fedora", kernel: "tftp://s/kernel.fedora"},
		{name: "loadparm beyond the entries", cfg: qemuPXE, loadparm: "4", wantErr: "loadparm 4: pxelinux.cfg/default has only 3 entries"},
		{name: "loadparm unknown name falls back", cfg: qemuPXE, loadparm: "XYZ", label: "Debian", kernel: "tftp://s/kernel.debian",
			initrds: []string{"tftp://s/initrd.debian"}, cmdline: "testoption=teststring"},
		{name: "empty config", cfg: "# nothing\n", wantErr: "no entry to boot"},
		{name: "KERNEL with options keeps them", cfg: "label a\nkernel A quiet\n", label: "a", kernel: "tftp://s/A", cmdline: "quiet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c, _, err := boot(t, tt.cfg, tt.loadparm, tt.include)
			var notes []string
			if c != nil {
				for _, n := range c.Notes {
					notes = append(notes, n.String())
				}
			}
			for _, want := range tt.notes {
				if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, want) }) {
					t.Errorf("notes = %q, want one containing %q", notes, want)
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("boot(%q, %q) error = %v, want %q", tt.cfg, tt.loadparm, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("boot(%q, %q) error %v", tt.cfg, tt.loadparm, err)
			}
			if b.Label != tt.label || b.Kernel.URL != tt.kernel || b.Cmdline != tt.cmdline || b.LocalBoot != tt.local ||
				!slices.Equal(urls(b.Initrds), tt.initrds) {
				t.Errorf("boot(%q, %q) = label %q kernel %q initrds %q cmdline %q local %v;\nwant label %q kernel %q initrds %q cmdline %q local %v",
					tt.cfg, tt.loadparm, b.Label, b.Kernel.URL, urls(b.Initrds), b.Cmdline, b.LocalBoot,
					tt.label, tt.kernel, tt.initrds, tt.cmdline, tt.local)
			}
		})
	}
}

// qemuPXE is the config of QEMU 10.1's tests/functional/s390x/test_pxelinux.py.
const qemuPXE = `default Debian
label Nonexisting
kernel kernel.notavailable
initrd initrd.notavailable
label Debian
kernel kernel.debian
initrd initrd.debian
append testoption=teststring
label Fedora
kernel kernel.fedora
`

func TestNoteOnce(t *testing.T) {
	c := Parse("x", "tftp://s/", []byte("foo\nfoo\nFOO\nbar\nlabel a\nkernel menu.c32\nlabel b\nkernel menu.c32\n"))
	if len(c.Notes) != 3 {
		t.Errorf("Parse notes = %q, want 3 (foo, bar, menu.c32 once each)", c.Notes)
	}
}

func TestIncludeFetchError(t *testing.T) {
	f := &memFetcher{errs: map[string]error{"tftp://s/x.cfg": errAccess}}
	_, err := Load(context.Background(), f, "tftp://s/pxelinux.cfg/default", "tftp://s/", []byte("include x.cfg\n"))
	if err == nil || !errors.Is(err, errAccess) || !strings.Contains(err.Error(), "pxelinux.cfg/default:1: INCLUDE tftp://s/x.cfg") {
		t.Errorf("Load with failing INCLUDE error = %v", err)
	}
}

func TestSelect(t *testing.T) {
	cobbler := `DEFAULT menu
PROMPT 0
MENU TITLE Cobbler
TIMEOUT 200
TOTALTIMEOUT 6000
ONTIMEOUT local
LABEL local
        MENU LABEL (local)
        MENU DEFAULT
        LOCALBOOT -1
LABEL fedora
        kernel /images/fedora/vmlinuz
        MENU LABEL fedora
        append initrd=/images/fedora/initrd.img ksdevice=bootif
        ipappend 2
`
	tests := []struct {
		name, cfg, loadparm string
		label, why          string
		menu                bool
		timeout             int
	}{
		{"Cobbler: ONTIMEOUT local", cobbler, "", "local", "ONTIMEOUT local", true, 200},
		{"Cobbler: loadparm 2", cobbler, "2", "fedora", "loadparm 2", false, 0},
		{"Cobbler: loadparm name", cobbler, "FEDORA", "fedora", "loadparm FEDORA (label fedora)", false, 0},
		{"menu, no ONTIMEOUT: MENU DEFAULT", "ui menu.c32\ntimeout 50\nlabel a\nkernel A\nlabel b\nmenu default\nkernel B\n", "", "b", "MENU DEFAULT", true, 50},
		{"menu, TIMEOUT 0: ONTIMEOUT never fires", "ui menu.c32\nontimeout a\nlabel a\nkernel A\nlabel b\nmenu default\nkernel B\n", "", "b", "MENU DEFAULT", true, 0},
		{"menu with DEFAULT label", "ui vesamenu.c32\ndefault b\nlabel a\nkernel A\nlabel b\nkernel B\n", "", "b", "DEFAULT b", true, 0},
		{"menu, nothing marked: first", "default vesamenu.c32\nlabel a\nkernel A\nlabel b\nkernel B\n", "", "a", "first entry", true, 0},
		{"PROMPT 1 + TIMEOUT: ONTIMEOUT", "prompt 1\ntimeout 30\nontimeout b\ndefault a\nlabel a\nkernel A\nlabel b\nkernel B\n", "", "b", "ONTIMEOUT b", true, 30},
		{"PROMPT 0: DEFAULT, ONTIMEOUT unused", "prompt 0\ntimeout 30\nontimeout b\ndefault a\nlabel a\nkernel A\nlabel b\nkernel B\n", "", "a", "DEFAULT a", false, 30},
		{"MENU DEFAULT without a menu is ignored", "default a\nlabel a\nkernel A\nlabel b\nmenu default\nkernel B\n", "", "a", "DEFAULT a", false, 0},
		{"loadparm PROMPT asks for the menu", "default a\nlabel a\nkernel A\n", "prompt", "a", "DEFAULT a", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Parse("tftp://s/pxelinux.cfg/default", "tftp://s/", []byte(tt.cfg))
			s, err := Select(c, tt.loadparm)
			if err != nil {
				t.Fatalf("Select(%q) error %v", tt.loadparm, err)
			}
			if s.Entry.Label != tt.label || s.Why != tt.why || s.Menu != tt.menu || s.Timeout != tt.timeout {
				t.Errorf("Select(%q) = %q by %q menu %v timeout %d; want %q by %q menu %v timeout %d",
					tt.loadparm, s.Entry.Label, s.Why, s.Menu, s.Timeout, tt.label, tt.why, tt.menu, tt.timeout)
			}
		})
	}
}

func TestMenuItems(t *testing.T) {
	c := Parse("x", "tftp://s/", []byte("label a\nmenu label ^Alpha\nkernel A\nlabel b\nmenu hide\nkernel B\nlabel c\nkernel C\n"))
	got := c.MenuItems()
	want := []MenuItem{{1, "Alpha", 0}, {3, "c", 2}}
	if !slices.Equal(got, want) {
		t.Errorf("MenuItems() = %v, want %v", got, want)
	}
}

func TestSysAppendWithoutFacts(t *testing.T) {
	if got := sysAppend(7, Facts{}); len(got) != 0 {
		t.Errorf("sysAppend(7, no facts) = %q, want nothing", got)
	}
	got := sysAppend(1, Facts{IP: testIP, Server: "boot.example"})
	if !slices.Equal(got, []string{"ip=10.0.2.15:0.0.0.0:0.0.0.0:0.0.0.0"}) {
		t.Errorf("sysAppend(1, name server) = %q", got)
	}
}

func TestInitrdLayout(t *testing.T) {
	tests := []struct {
		sizes   []int64
		offsets []int64
		total   int64
	}{
		{nil, nil, 0},
		{[]int64{100}, []int64{0}, 100},
		{[]int64{100, 5000, 7}, []int64{0, 4096, 12288}, 12295},
		{[]int64{4096, 1}, []int64{0, 4096}, 4097},
		{[]int64{0, 10}, []int64{0, 0}, 10},
	}
	for _, tt := range tests {
		off, total := InitrdLayout(tt.sizes)
		if !slices.Equal(off, tt.offsets) || total != tt.total {
			t.Errorf("InitrdLayout(%v) = %v, %d; want %v, %d", tt.sizes, off, total, tt.offsets, tt.total)
		}
	}
}

func TestSysAppendIPv6Client(t *testing.T) {
	got := sysAppend(3, Facts{IP: netip.MustParseAddr("fec0::15"), MAC: testMAC})
	if !slices.Equal(got, []string{"BOOTIF=01-52-54-00-12-34-56"}) {
		t.Errorf("sysAppend(3, IPv6 client) = %q, want BOOTIF only", got)
	}
}

func TestIncludeFanOut(t *testing.T) {
	// x0 includes x1 twice, … x14 includes x15 twice: 2^15 fetches without the cap.
	files := map[string]string{"tftp://s/x15": "label a\nkernel k\n"}
	for i := range 15 {
		n := fmt.Sprintf("x%d", i+1)
		files[fmt.Sprintf("tftp://s/x%d", i)] = "include " + n + "\ninclude " + n + "\n"
	}
	f := &memFetcher{files: files}
	_, err := Load(context.Background(), f, "tftp://s/pxelinux.cfg/default", "tftp://s/", []byte("include x0\n"))
	if err == nil || !strings.Contains(err.Error(), "more than 256 INCLUDEs") || len(f.asked) > MaxIncludes {
		t.Errorf("Load(fan-out) error = %v after %d fetches", err, len(f.asked))
	}
}

// TestIncludeDepth: MaxIncludeDepth nested INCLUDEs load; one more is an error.
func TestIncludeDepth(t *testing.T) {
	chain := func(n int) *memFetcher {
		files := map[string]string{fmt.Sprintf("tftp://s/x%d", n): "label a\nkernel k\n"}
		for i := 1; i < n; i++ {
			files[fmt.Sprintf("tftp://s/x%d", i)] = fmt.Sprintf("include x%d\n", i+1)
		}
		return &memFetcher{files: files}
	}
	c, err := Load(context.Background(), chain(MaxIncludeDepth), "tftp://s/pxelinux.cfg/default", "tftp://s/", []byte("include x1\n"))
	if err != nil || len(c.Entries) != 1 {
		t.Errorf("Load(%d nested INCLUDEs) = %v with %d entries, want the entry at the bottom", MaxIncludeDepth, err, len(c.Entries))
	}
	_, err = Load(context.Background(), chain(MaxIncludeDepth+1), "tftp://s/pxelinux.cfg/default", "tftp://s/", []byte("include x1\n"))
	if err == nil || !strings.HasSuffix(err.Error(), "x16:1: INCLUDE x17: nested deeper than 16") {
		t.Errorf("Load(%d nested INCLUDEs) = %v, want nested deeper than 16 at x16:1", MaxIncludeDepth+1, err)
	}
}

// TestIncludeTotalSize: INCLUDEs stop when the config and its INCLUDEs pass ConfigTotalLimit, before the
// next file is fetched in full.
func TestIncludeTotalSize(t *testing.T) {
	big := strings.Repeat("# padding\n", (ConfigLimit-100)/10) // just under ConfigLimit
	files := map[string]string{}
	top := ""
	for i := range 6 {
		files[fmt.Sprintf("tftp://s/part%d.cfg", i)] = big
		top += fmt.Sprintf("include part%d.cfg\n", i)
	}
	f := &memFetcher{files: files}
	_, err := Load(context.Background(), f, "tftp://s/pxelinux.cfg/default", "tftp://s/", []byte(top))
	want := "default:5: INCLUDE tftp://s/part4.cfg: the config and its INCLUDEs exceed 4194304 bytes"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Load(6 INCLUDEs of ~1 MiB) = %v, want %q", err, want)
	}
}
