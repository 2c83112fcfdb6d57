package pxecfg

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// qemuBehaviour is one behaviour of QEMU's image (research/qemu-netboot.md §2.5–2.8), the
// verdict the package doc gives it, and a check that netipl behaves as the doc says.
type qemuBehaviour struct {
	id, verdict string
	check       func(t *testing.T)
}

// discoverWith runs Discover over in-memory files on server 10.0.2.2.
func discoverWith(t *testing.T, f Facts, loadparm string, files map[string]string) (*Result, *memFetcher, error) {
	t.Helper()
	if f.Server == "" {
		f.Server = "10.0.2.2"
	}
	m := &memFetcher{files: map[string]string{}}
	for k, v := range files {
		m.files["tftp://10.0.2.2/"+k] = v
	}
	r, err := Discover(context.Background(), m, f, Options{Loadparm: loadparm})
	return r, m, err
}

func wantKernel(t *testing.T, r *Result, err error, url string) {
	t.Helper()
	if err != nil || r.Boot.Kernel.URL != url {
		var got string
		if r != nil {
			got = r.Boot.Kernel.URL
		}
		t.Errorf("boots %q (err %v), want kernel %q", got, err, url)
	}
}

const srv = "tftp://10.0.2.2/"

var qemuBehaviours = []qemuBehaviour{
	{"Q01", "reproduced", func(t *testing.T) {
		_, m, _ := discoverWith(t, Facts{Bootfile: "k.img"}, "", map[string]string{"k.img": "0123456789"})
		if len(m.asked) != 1 || m.asked[0] != srv+"k.img" {
			t.Errorf("asked %q, want only the boot file", m.asked)
		}
	}},
	{"Q02", "reproduced", func(t *testing.T) {
		for _, bf := range []string{"", "/", "dir/"} {
			_, m, _ := discoverWith(t, Facts{Bootfile: bf}, "", nil)
			if len(m.asked) == 0 || !strings.HasSuffix(m.asked[0], "pxelinux.cfg/default") {
				t.Errorf("bootfile %q: asked %q, want the lookup only", bf, m.asked)
			}
		}
	}},
	{"Q03", "reproduced", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{Bootfile: "tiny"}, "", map[string]string{"tiny": "1234567", "pxelinux.cfg/default": "label a\nkernel k\n"})
		wantKernel(t, r, err, srv+"k")
		if !strings.Contains(r.Steps[0].Err.Error(), "tiny is too small (7 bytes only)") {
			t.Errorf("step 0 = %v", r.Steps[0].Err)
		}
	}},
	{"Q04", "improved", func(t *testing.T) {
		big := "# pxelinux\nlabel a\nkernel k\n" + strings.Repeat("# padding\n", 1000)
		r, _, err := discoverWith(t, Facts{Bootfile: "big.cfg"}, "", map[string]string{"big.cfg": big})
		wantKernel(t, r, err, srv+"k")
	}},
	{"Q05", "reproduced", func(t *testing.T) {
		if Sniff([]byte("* # pxelinux\nk 0\n")) != KindINS || Sniff([]byte("*x\n")) != KindKernel {
			t.Error(`"* " is not checked first, or not exactly`)
		}
	}},
	{"Q06", "reproduced", func(t *testing.T) {
		if Sniff([]byte("# PXELINUX\n")) != KindPXELinux || Sniff([]byte("#  pxelinux\n")) == KindPXELinux {
			t.Error("magic not matched on its 10 bytes, any case")
		}
	}},
	{"Q07", "improved", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{Bootfile: "image"}, "", map[string]string{"image": "\x00\x08\x00\x00\x80\x00\x00\x00\x00\x00"})
		wantKernel(t, r, err, srv+"image")
		for _, name := range []string{"pxelinux.0", "bootx64.efi", "menu.c32", "undionly.pxe", "undionly.kpxe"} {
			_, m, _ := discoverWith(t, Facts{Bootfile: name}, "", map[string]string{name: "\x00\x08\x00\x00\x80\x00\x00\x00\x00\x00"})
			if len(m.asked) > 0 && m.asked[0] == srv+name {
				t.Errorf("%s was fetched as a kernel", name)
			}
		}
	}},
	{"Q08", "reproduced", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{Bootfile: "missing"}, "", map[string]string{"pxelinux.cfg/default": "label a\nkernel k\n"})
		wantKernel(t, r, err, srv+"k")
	}},
	{"Q09", "improved", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{Bootfile: "a/m.cfg"}, "", map[string]string{"a/m.cfg": "# pxelinux\nlabel x\n", "a/pxelinux.cfg/default": "label a\nkernel k\n"})
		// the broken config's failure does not move the lookup directory
		if err != nil || r.Source != srv+"a/pxelinux.cfg/default" {
			t.Errorf("source %q err %v", r.Source, err)
		}
	}},
	{"Q10", "improved", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{Bootfile: "s.ipxe"}, "", map[string]string{"s.ipxe": "#!ipxe\nkernel k x=1\nboot\n"})
		wantKernel(t, r, err, srv+"k")
	}},
	{"Q11", "improved", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{Bootfile: "generic.ins"}, "", map[string]string{"generic.ins": "images/kernel.img 0x00000000\n"})
		wantKernel(t, r, err, srv+"images/kernel.img")
	}},
	{"Q12", "reproduced", func(t *testing.T) {
		ins, err := ParseINS("x", []byte("* Test INS file for netboot\nk 0\n"))
		if err != nil || ins.Title != "Test INS file for netboot" {
			t.Errorf("title %q err %v", ins.Title, err)
		}
	}},
	{"Q13", "improved", func(t *testing.T) {
		if _, err := ParseINS("x", []byte("k 0x0")); err != nil {
			t.Error(err)
		}
	}},
	{"Q14", "improved", func(t *testing.T) {
		ins, err := ParseINS("x", []byte("* t\nk\t0\n"))
		if err != nil || ins.Lines[0].Name != "k" {
			t.Errorf("tab separator: %v", err)
		}
		if _, err := ParseINS("x", []byte("* t\nk\n")); err == nil {
			t.Error("line without address accepted")
		}
	}},
	{"Q15", "improved", func(t *testing.T) {
		for s, want := range map[string]uint64{"0x10": 16, "0X10": 16, "010": 10, "16": 16} {
			if got, err := parseAddr(s); err != nil || got != want {
				t.Errorf("parseAddr(%q) = %d, %v; want %d", s, got, err, want)
			}
		}
		if _, err := parseAddr("12ab"); err == nil {
			t.Error("parseAddr(12ab) accepted")
		}
	}},
	{"Q16", "improved", func(t *testing.T) {
		ins, _ := ParseINS("tftp://s/x.ins", []byte("k 0\ni 0x2000000\n"))
		b, err := ins.Boot(context.Background(), &memFetcher{}, "tftp://s/x.ins")
		if err != nil || b.Kernel.Name != "k" || len(b.Initrds) != 1 {
			t.Errorf("INS.Boot = %+v, %v", b, err)
		}
	}},
	{"Q17", "improved", func(t *testing.T) {
		ins, _ := ParseINS("tftp://s/x.ins", []byte("k 0\np 0x10480\ni 0x1000000\nad 0x10408\n"))
		b, err := ins.Boot(context.Background(), &memFetcher{files: map[string]string{"tftp://s/p": "a=1\nb=2\n", "tftp://s/ad": be(0x1000000, 5)}}, "tftp://s/x.ins")
		if err != nil || b.Cmdline != "a=1 b=2" || b.InitrdSize != 5 {
			t.Errorf("INS.Boot = %+v, %v", b, err)
		}
	}},
	{"Q18", "improved", func(t *testing.T) {
		ins, _ := ParseINS("tftp://s/d/x.ins", []byte("k 0\n"))
		b, _ := ins.Boot(context.Background(), &memFetcher{}, "tftp://s/d/x.ins")
		if b.Kernel.URL != "tftp://s/d/k" || b.Kernel.Alt != "tftp://s/k" {
			t.Errorf("kernel %v", b.Kernel)
		}
	}},
	{"Q19", "reproduced", func(t *testing.T) {
		l, _ := Look(Facts{Server: "s", UUID: testUUID})
		if l.Candidates[0].URL != "tftp://s/pxelinux.cfg/550e8400-e29b-11d4-a716-446655441234" {
			t.Errorf("first candidate %q", l.Candidates[0].URL)
		}
		l, _ = Look(Facts{Server: "s"})
		if len(l.Candidates) != 1 {
			t.Errorf("zero UUID probed: %v", l.Candidates)
		}
	}},
	{"Q20", "improved", func(t *testing.T) {
		l, _ := Look(Facts{Server: "s", PathPrefix: "p/"})
		want := []Candidate{{"tftp://s/p/pxelinux.cfg/default", "default"}, {"tftp://s/p/default", "default (QEMU placement)"}}
		if !slices.Equal(l.Candidates, want) {
			t.Errorf("candidates %v", l.Candidates)
		}
	}},
	{"Q21", "reproduced", func(t *testing.T) {
		for bf, want := range map[string]string{"": "tftp://s/pxelinux.cfg/default", "/": "tftp://s//pxelinux.cfg/default",
			"boot/s390x/kernel.img": "tftp://s/boot/s390x/pxelinux.cfg/default"} {
			if l, _ := Look(Facts{Server: "s", Bootfile: bf}); l.Candidates[0].URL != want {
				t.Errorf("bootfile %q: %q, want %q", bf, l.Candidates[0].URL, want)
			}
		}
	}},
	{"Q22", "improved", func(t *testing.T) {
		long := strings.Repeat("d/", 300)
		if l, err := Look(Facts{Server: "s", Bootfile: long + "k"}); err != nil || l.Candidates[0].URL != "tftp://s/"+long+"pxelinux.cfg/default" {
			t.Errorf("long bootfile: %v", err)
		}
	}},
	{"Q23", "reproduced", func(t *testing.T) {
		l, _ := Look(Facts{Server: "s", ConfigFile: "c", MAC: testMAC, IP: testIP, UUID: testUUID, PathPrefix: "pxelinux.cfg/"})
		var whys []string
		for _, c := range l.Candidates {
			whys = append(whys, c.Why)
		}
		want := []string{"option 209", "option 209 (QEMU placement)", "UUID", "MAC", "IP", "IP", "IP", "IP", "IP", "IP", "IP", "IP", "default"}
		if !slices.Equal(whys, want) {
			t.Errorf("order %q", whys)
		}
	}},
	{"Q24", "improved", func(t *testing.T) {
		l, _ := Look(Facts{Server: "s", ConfigFile: "c", PathPrefix: "p/"})
		// with a prefix, RFC 5071 and QEMU agree on where 209 is: one candidate
		if l.Candidates[0].URL != "tftp://s/p/c" || l.Candidates[1].Why != "default" {
			t.Errorf("209 candidates %v", l.Candidates[:2])
		}
		l, _ = Look(Facts{Server: "s", ConfigFile: "c"})
		if l.Candidates[0].URL != "tftp://s/c" || l.Candidates[1].URL != "tftp://s/pxelinux.cfg/c" {
			t.Errorf("209 candidates %v", l.Candidates[:2])
		}
	}},
	{"Q25", "reproduced", func(t *testing.T) {
		if macName(testMAC) != "01-52-54-00-12-34-56" {
			t.Error(macName(testMAC))
		}
	}},
	{"Q26", "reproduced", func(t *testing.T) {
		l, _ := Look(Facts{Server: "s", IP: testIP})
		if l.Candidates[0].URL != "tftp://s/pxelinux.cfg/0A00020F" || l.Candidates[7].URL != "tftp://s/pxelinux.cfg/0" {
			t.Errorf("IP names %v", l.Candidates)
		}
	}},
	{"Q27", "improved", func(t *testing.T) {
		m := &memFetcher{errs: map[string]error{srv + "pxelinux.cfg/01-52-54-00-12-34-56": errAccess}, files: map[string]string{srv + "pxelinux.cfg/default": "label a\nkernel k\n"}}
		var steps []Step
		r, err := Discover(context.Background(), m, Facts{Server: "10.0.2.2", MAC: testMAC}, Options{Report: func(s Step) { steps = append(steps, s) }})
		wantKernel(t, r, err, srv+"k")
		if len(steps) != 2 || steps[0].Err != errAccess || steps[1].Err != nil {
			t.Errorf("steps %v", steps)
		}
	}},
	{"Q28", "improved", func(t *testing.T) {
		r, _, err := discoverWith(t, Facts{}, "", map[string]string{"pxelinux.cfg/default": strings.Repeat("# long\n", 1000) + "label a\nkernel k\n"})
		wantKernel(t, r, err, srv+"k")
	}},
	{"Q29", "reproduced", func(t *testing.T) {
		b, _, _, err := boot(t, "  label a\r\n\tkernel k \t\r\n append x  \r\n", "", nil)
		if err != nil || b.Kernel.URL != "tftp://s/k" || b.Cmdline != "x" {
			t.Errorf("boot = %+v, %v", b, err)
		}
	}},
	{"Q30", "reproduced", func(t *testing.T) {
		b, _, _, err := boot(t, "# c\n\n  # c\nlabel a\nkernel k # not a comment\n", "", nil)
		if err != nil || b.Cmdline != "# not a comment" {
			t.Errorf("boot = %+v, %v", b, err)
		}
	}},
	{"Q31", "reproduced", func(t *testing.T) {
		if w, r := splitWord("kernel\t  a b"); w != "kernel" || r != "a b" {
			t.Errorf("splitWord = %q %q", w, r)
		}
	}},
	{"Q32", "reproduced", func(t *testing.T) {
		c := Parse("x", "tftp://s/", []byte("label a\nappend\nkernel k\n"))
		if len(c.Notes) != 1 || c.Entries[0].HasAppend {
			t.Errorf("notes %v", c.Notes)
		}
	}},
	{"Q33", "reproduced", func(t *testing.T) {
		b, _, _, err := boot(t, "LaBeL a\nKeRnEl k\n", "", nil)
		if err != nil || b.Kernel.URL != "tftp://s/k" {
			t.Errorf("boot = %+v, %v", b, err)
		}
	}},
	{"Q34", "improved", func(t *testing.T) {
		b, _, _, err := boot(t, "label a\nkernel A\nlabel b\nkernel B\ndefault b\n", "", nil)
		if err != nil || b.Label != "b" {
			t.Errorf("boot = %+v, %v", b, err)
		}
	}},
	{"Q35", "reproduced", func(t *testing.T) {
		b, _, _, _ := boot(t, "default B\nlabel a\nkernel A\nlabel b\nkernel B\n", "", nil)
		if b.Label != "a" {
			t.Errorf("DEFAULT B matched label b: %+v", b)
		}
	}},
	{"Q36", "improved", func(t *testing.T) {
		b, _, _, _ := boot(t, "append g\nlabel a\nkernel A\n", "", nil)
		if b.Cmdline != "g" {
			t.Errorf("cmdline %q", b.Cmdline)
		}
	}},
	{"Q37", "improved", func(t *testing.T) {
		c := Parse("x", "tftp://s/", []byte("prompt 1\ntimeout 5\nwhatever 1\nwhatever 2\nlabel a\nlinux k\n"))
		if !c.Prompt || c.Timeout != 5 || len(c.Notes) != 1 || c.Entries[0].Kernel != "k" {
			t.Errorf("config %+v", c)
		}
	}},
	{"Q38", "reproduced", func(t *testing.T) {
		b, _, _, _ := boot(t, "default nope\nlabel a\nkernel A\nlabel b\nkernel B\n", "", nil)
		if b.Label != "a" {
			t.Errorf("label %q", b.Label)
		}
	}},
	{"Q39", "improved", func(t *testing.T) {
		var cfg strings.Builder
		for i := range 100 {
			cfg.WriteString("label l" + strings.Repeat("x", i) + "\nkernel k\n")
		}
		c := Parse("x", "tftp://s/", []byte(cfg.String()))
		if len(c.Entries) != 100 {
			t.Errorf("%d entries", len(c.Entries))
		}
	}},
	{"Q40", "improved", func(t *testing.T) {
		b, _, _, _ := boot(t, "label a\nkernel k\ninitrd x,y\n", "", nil)
		if len(b.Initrds) != 2 {
			t.Errorf("initrds %v", b.Initrds)
		}
	}},
	{"Q41", "improved", func(t *testing.T) {
		_, _, _, err := boot(t, "label a\nappend x\n", "", nil)
		if err == nil || err.Error() != "pxelinux.cfg/default:1: LABEL a: no KERNEL" {
			t.Errorf("err %v", err)
		}
	}},
	{"Q42", "improved", func(t *testing.T) {
		b, _, _, err := boot(t, "label a\nkernel k\n", "", nil)
		if err != nil || b.Initrds != nil {
			t.Errorf("boot = %+v, %v", b, err)
		}
	}},
	{"Q43", "reproduced", func(t *testing.T) {
		for lp, want := range map[string]string{"1": "Nonexisting", "3": "Fedora", "0": "Debian", "": "Debian"} {
			if b, _, _, err := boot(t, qemuPXE, lp, nil); err != nil || b.Label != want {
				t.Errorf("loadparm %q: %q %v, want %q", lp, b.Label, err, want)
			}
		}
	}},
	{"Q44", "improved", func(t *testing.T) {
		if _, _, _, err := boot(t, qemuPXE, "9", nil); err == nil {
			t.Error("loadparm 9 accepted")
		}
	}},
	{"Q45", "reproduced", func(t *testing.T) {
		if _, _, s, _ := boot(t, qemuPXE, "PROMPT", nil); !s.Menu {
			t.Error("loadparm PROMPT does not ask for the menu")
		}
	}},
	{"Q46", "improved", func(t *testing.T) {
		if b, _, _, _ := boot(t, qemuPXE, "fedora", nil); b.Label != "Fedora" {
			t.Errorf("label %q", b.Label)
		}
	}},
}

// TestQEMUBehaviours checks that the package doc's list of QEMU behaviours and this table
// agree line for line, and runs each check.
func TestQEMUBehaviours(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^//\t(Q\d\d) (reproduced|improved): `)
	var fromDoc []string
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		fromDoc = append(fromDoc, m[1]+" "+m[2])
	}
	var fromTable []string
	for _, b := range qemuBehaviours {
		fromTable = append(fromTable, b.id+" "+b.verdict)
	}
	if !slices.Equal(fromDoc, fromTable) {
		t.Fatalf("doc.go lists\n%q\nthe table has\n%q", fromDoc, fromTable)
	}
	for _, b := range qemuBehaviours {
		t.Run(b.id, b.check)
	}
}
