package lab

import (
	"strings"
	"testing"
	"time"
)

func TestLoadScenariosShipped(t *testing.T) {
	all, err := LoadScenarios("scenarios")
	if err != nil {
		t.Fatalf("LoadScenarios(scenarios): %v", err)
	}
	if len(all) < 15 {
		t.Errorf("LoadScenarios(scenarios) = %d scenarios, want >= 15", len(all))
	}
	for _, sc := range all {
		if sc.Desc == "" {
			t.Errorf("%s: no desc line", sc.Path)
		}
		if _, err := sc.BuildConfig(t.TempDir()); err != nil && !strings.Contains(err.Error(), "fetch.sh") {
			t.Errorf("%s: BuildConfig: %v", sc.Path, err)
		}
	}
}

func TestParseScenario(t *testing.T) {
	src := `# comment
desc   all directives
timeout 45s
xfail  qemu because
mac    52:54:00:AA:BB:CC
uuid   550e8400-e29b-11d4-a716-446655441234
qemu   -smp 1
dhcp   bootfile /
dhcp   server-name tftp.example
dhcp   domain example
dhcp   option209 a.cfg
dhcp   option210 p/
dhcp   option211 30
dhcp   delay 250ms
dhcp   nak 2
dhcp   second other.cfg
dhcp   lease 52:54:00:aa:bb:cc 10.0.2.99
dhcp   siaddr 10.0.2.7
dns    TFTP.example. 10.0.2.2
file   k kernel
file   c text "  two spaces"
file   c text second line
file   z zeros 100
file   s u64 size:z
file   v u64 0x10
file   z.sha256 sha256 z
tftp   pin
tftp   truncate z 10
tftp   error-after k 4096
fault  loss 1.5%
fault  dup 2
fault  reorder 3
fault  corrupt 4
fault  delay 1ms
fault  jitter 2ms
fault  silence-after 9
fault  scope tftp
fault  dir to-guest
fault  seed 42
want   "  padded  "
wantnot bad
expect netipl want netipl only
log    x
expect qemu   nolog qemu only
nolog  y
xfail  netipl also
`
	sc, err := ParseScenario("dir/all.scn", strings.NewReader(src))
	if err != nil {
		t.Fatalf("ParseScenario: %v", err)
	}
	if sc.Name != "all" || sc.Timeout != 45*time.Second || sc.XFail["qemu"] != "because" || sc.MAC != "52:54:00:aa:bb:cc" {
		t.Errorf("header fields = %q %v %v %q", sc.Name, sc.Timeout, sc.XFail, sc.MAC)
	}
	if got := strings.Join(sc.QEMU, " "); got != "-uuid 550e8400-e29b-11d4-a716-446655441234 -smp 1" {
		t.Errorf("QEMU args = %q", got)
	}
	d := sc.DHCP
	if d.Bootfile != "/" || d.ServerName != "tftp.example" || d.Domain != "example" || d.ConfigFile != "a.cfg" ||
		d.PathPrefix != "p/" || d.RebootTime != 30 || d.Delay != 250*time.Millisecond || d.NAKs != 2 ||
		d.Second == nil || d.Second.Bootfile != "other.cfg" || d.Leases["52:54:00:aa:bb:cc"].String() != "10.0.2.99" || d.SIAddr.String() != "10.0.2.7" {
		t.Errorf("DHCP = %+v", d)
	}
	if sc.DNS["tftp.example"].String() != "10.0.2.2" {
		t.Errorf("DNS = %v", sc.DNS)
	}
	f := sc.Faults
	if f.Loss != 1.5 || f.Dup != 2 || f.Reorder != 3 || f.Corrupt != 4 || f.Delay != time.Millisecond ||
		f.Jitter != 2*time.Millisecond || f.SilenceAfter != 9 || f.Scope != ScopeTFTP || f.Dir != ToGuest || f.Seed != 42 {
		t.Errorf("Faults = %+v", f)
	}
	if !sc.PinTFTP || len(sc.Files) != 6 {
		t.Errorf("PinTFTP = %v, %d files", sc.PinTFTP, len(sc.Files))
	}
	if e := sc.Expect("netipl"); strings.Join(e.Want, "|") != "  padded  |netipl only" || strings.Join(e.WantNot, "|") != "bad" ||
		strings.Join(e.Log, "|") != "x" || strings.Join(e.NoLog, "|") != "y" {
		t.Errorf("Expect(netipl) = %q", e)
	}
	if e := sc.Expect("qemu"); strings.Join(e.Want, "|") != "  padded  " || strings.Join(e.NoLog, "|") != "qemu only|y" {
		t.Errorf("Expect(qemu) = %q", e)
	}
	if sc.XFail["netipl"] != "also" {
		t.Errorf("XFail = %v", sc.XFail)
	}
	cfg, err := sc.BuildConfig(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "file k") {
		t.Fatalf("BuildConfig without fixtures: err = %v, want a missing-kernel error", err)
	}
	sc.Files = sc.Files[1:] // drop the kernel
	if cfg, err = sc.BuildConfig(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.Files["c"].Data); got != "  two spaces\nsecond line\n" {
		t.Errorf("text file = %q", got)
	}
	z := cfg.Files["z"]
	if len(z.Data) != 100 || z.Truncate != 10 || string(cfg.Files["s"].Data) != "\x00\x00\x00\x00\x00\x00\x00\x0a" ||
		string(cfg.Files["v"].Data) != "\x00\x00\x00\x00\x00\x00\x00\x10" {
		t.Errorf("zeros/u64 files: z=%d bytes truncate %d, s=%q v=%q", len(z.Data), z.Truncate, cfg.Files["s"].Data, cfg.Files["v"].Data)
	}
	// the digest of all 100 zero bytes, not of the 10 served (sha256sum of 100 zero bytes)
	if got, want := string(cfg.Files["z.sha256"].Data), "cd00e292c5970d3c5e2f0ffa5171e555bc46bfc4faddfb4a418b6840b86e79a3  z\n"; got != want {
		t.Errorf("sha256 file = %q, want %q", got, want)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	const head = "timeout 10s\nwant x\n"
	tests := []struct {
		name, src, want string
	}{
		{"unknown directive", head + "bootfile x\n", "s.scn:3: unknown directive \"bootfile\""},
		{"no timeout", "want x\n", "s.scn:1: no timeout given (every scenario needs its hang bound)"},
		{"no want", "timeout 1s\n", "s.scn:1: no want line for qemu (nothing to judge)"},
		{"want for one firmware only", "timeout 1s\nexpect qemu want x\n", "s.scn:2: no want line for netipl (nothing to judge)"},
		{"expect unknown firmware", head + "expect seabios want x\n", "s.scn:3: expect: unknown firmware \"seabios\" (want qemu or netipl)"},
		{"expect unknown kind", head + "expect netipl timeout 5s\n", "s.scn:3: expect netipl \"timeout\": want want, wantnot, log or nolog"},
		{"expect empty text", head + "expect netipl want\n", "s.scn:3: want needs text"},
		{"xfail unknown firmware", head + "xfail qmeu typo\n", "s.scn:3: xfail: unknown firmware \"qmeu\" (want qemu or netipl)"},
		{"xfail twice", head + "xfail qemu a\nxfail qemu b\n", "s.scn:4: xfail qemu given twice"},
		{"bad duration", "timeout soon\n", "s.scn:1: bad duration \"soon\""},
		{"timeout too long", "timeout 1h\n", "s.scn:1: timeout \"1h\" out of range (0, 15m]"},
		{"timeout twice", head + "timeout 5s\n", "s.scn:3: timeout given twice (first on line 1)"},
		{"bad percent", head + "fault loss 120\n", "s.scn:3: bad percentage \"120\" (want 0..100)"},
		{"unknown fault", head + "fault explode 1\n", "s.scn:3: unknown fault \"explode\""},
		{"bad scope", head + "fault scope http\n", "s.scn:3: fault scope \"http\": want all, tftp or dhcp"},
		{"bad mac", head + "mac 52:54\n", "s.scn:3: mac \"52:54\" is not a 6-byte MAC"},
		{"bad uuid", head + "uuid 1234\n", "s.scn:3: uuid \"1234\" is not in 8-4-4-4-12 form"},
		{"dhcp value missing", head + "dhcp bootfile\n", "s.scn:3: dhcp bootfile needs a value"},
		{"dhcp unknown", head + "dhcp option99 x\n", "s.scn:3: unknown dhcp setting \"option99\""},
		{"dhcp siaddr", head + "dhcp siaddr host\n", "s.scn:3: dhcp siaddr needs an IPv4 address, got \"host\""},
		{"dhcp nak count", head + "dhcp nak -1\n", "s.scn:3: bad count \"-1\" (want an integer >= 0)"},
		{"file twice", head + "file a zeros 1\nfile a zeros 2\n", "s.scn:4: file \"a\" already defined on line 3"},
		{"file kind", head + "file a blob\n", "s.scn:3: unknown file kind \"blob\" (want kernel, initrd, zeros, random, text, crlf, u64, sha256)"},
		{"file u64 value", head + "file a u64 lots\n", "s.scn:3: file a u64: bad value \"lots\""},
		{"u64 size of nothing", head + "file a u64 size:b\n", "s.scn:3: file a: size:b names no file"},
		{"sha256 of nothing", head + "file a.sha256 sha256 b\n", "s.scn:3: file a.sha256: b names no file"},
		{"sha256 without file", head + "file a.sha256 sha256\n", "s.scn:3: file a.sha256 sha256 needs a file name"},
		{"tftp before file", head + "tftp truncate a 1\n", "s.scn:3: tftp truncate: file \"a\" is not defined (yet)"},
		{"xfail without reason", head + "xfail qemu\n", "s.scn:3: xfail needs a firmware name and a reason"},
		{"dns bad ip", head + "dns a.b 1::2\n", "s.scn:3: dns needs NAME IPV4, got \"a.b 1::2\""},
		{"dhcp6 without url", head + "dhcp6 bootfile-url\n", "s.scn:3: dhcp6 wants bootfile-url URL"},
		{"want empty", head + "want\n", "s.scn:3: want needs text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("s.scn", strings.NewReader(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseScenario(%q) error = %v, want %q", tt.src, err, tt.want)
			}
		})
	}
}

func TestRenderConsole(t *testing.T) {
	raw := "  Requesting information via DHCP:     \b\b\b010\b\b\b\bdone\r\n  x\r\r\n\bz"
	want := "  Requesting information via DHCP: done\n  x\nz" // a BS never deletes a newline
	if got := RenderConsole([]byte(raw)); got != want {
		t.Errorf("RenderConsole(%q) = %q, want %q", raw, got, want)
	}
}

func TestJudge(t *testing.T) {
	sc := &Scenario{Timeout: time.Second, XFail: map[string]string{"qemu": "known"}, Checks: []Check{
		{"", "want", "a"}, {"netipl", "want", "n"}, {"", "want", "b"}, {"qemu", "wantnot", "rate"},
		{"", "wantnot", "bad"}, {"", "log", "l1"}, {"", "log", "l2"}, {"netipl", "nolog", "l3"}}}
	tests := []struct {
		name, firmware, console, log string
		timedOut                     bool
		want                         Outcome
		reason                       string
	}{
		{"pass", "qemu", "xa yb", "l1 l2", false, Pass, ""},
		{"order matters", "qemu", "b a", "l1 l2", false, Fail, `console lacks "b"`},
		{"hang", "qemu", "a", "", true, Hang, `killed at 1s waiting for "b"`},
		{"wantnot", "qemu", "a b bad", "l1 l2", false, Fail, `console has "bad"`},
		{"log order", "qemu", "a b", "l2 l1", false, Fail, `lab log lacks "l2"`},
		{"firmware want in order", "netipl", "a b n", "l1 l2", false, Fail, `console lacks "b"`},
		{"firmware want met", "netipl", "a n b", "l1 l2", false, Pass, ""},
		{"other firmware's want ignored", "qemu", "a b", "l1 l2", false, Pass, ""},
		{"firmware wantnot", "qemu", "a b rate", "l1 l2", false, Fail, `console has "rate"`},
		{"other firmware's wantnot ignored", "netipl", "a n b rate", "l1 l2", false, Pass, ""},
		{"firmware nolog", "netipl", "a n b", "l1 l2 l3", false, Fail, `lab log has "l3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, why := sc.Judge(tt.firmware, tt.console, tt.log, tt.timedOut)
			if o != tt.want || why != tt.reason {
				t.Errorf("Judge(%s, %q, %q, %v) = %s %q, want %s %q", tt.firmware, tt.console, tt.log, tt.timedOut, o, why, tt.want, tt.reason)
			}
		})
	}
	if o, _ := sc.applyXFail("qemu", Hang, "x"); o != XFail {
		t.Errorf("applyXFail(qemu, HANG) = %s, want XFAIL", o)
	}
	if o, _ := sc.applyXFail("qemu", Pass, ""); o != XPass {
		t.Errorf("applyXFail(qemu, PASS) = %s, want XPASS", o)
	}
	if o, _ := sc.applyXFail("netipl", Fail, "x"); o != Fail {
		t.Errorf("applyXFail(netipl, FAIL) = %s, want FAIL", o)
	}
}
