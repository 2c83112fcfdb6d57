package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario is one parsed scenario file. See scenarios/README.md for the format.
type Scenario struct {
	Name    string // file name without .scn
	Path    string
	Desc    string
	Timeout time.Duration     // the hang bound
	XFail   map[string]string // firmware name ("qemu", "netipl") → why it is expected to fail
	MAC     string            // guest MAC; "" = 52:54:00:12:34:56
	QEMU    []string          // extra QEMU arguments

	DHCP    DHCPConfig
	DNS     map[string]netip.Addr
	Files   []*FileSpec
	PinTFTP bool
	IPv6    *IPv6Config // set by dhcp6: the lab also runs RA, DHCPv6 and TFTP on fec0::2
	Faults  Faults

	// Checks are the want/wantnot/log/nolog lines in file order, each for every firmware or,
	// from an expect line, for one; Expect picks a firmware's view.
	Checks []Check
}

// Firmwares are the names xfail and expect lines may use: QEMU's s390-netboot.img and netipl's image.
var Firmwares = []string{"qemu", "netipl"}

func knownFirmware(name string) bool {
	for _, f := range Firmwares {
		if f == name {
			return true
		}
	}
	return false
}

// Check is one judging line of a scenario.
type Check struct {
	Firmware string // "" = every firmware
	Kind     string // want, wantnot, log, nolog
	Text     string
}

// Expectation is what the judge checks for one firmware: console wants in order, console texts
// that must not appear, lab-log lines in order, lab-log texts that must not appear.
type Expectation struct {
	Want, WantNot []string
	Log, NoLog    []string
}

// Expect returns the scenario's checks that apply to firmware, in file order.
func (sc *Scenario) Expect(firmware string) Expectation {
	var e Expectation
	for _, c := range sc.Checks {
		if c.Firmware != "" && c.Firmware != firmware {
			continue
		}
		switch c.Kind {
		case "want":
			e.Want = append(e.Want, c.Text)
		case "wantnot":
			e.WantNot = append(e.WantNot, c.Text)
		case "log":
			e.Log = append(e.Log, c.Text)
		case "nolog":
			e.NoLog = append(e.NoLog, c.Text)
		}
	}
	return e
}

// DefaultMAC is QEMU's default virtio-net MAC, used when a scenario names none.
const DefaultMAC = "52:54:00:12:34:56"

// FileSpec says how to make one served file.
type FileSpec struct {
	Name       string
	Kind       string   // kernel, initrd, zeros, random, text, u64, sha256
	N          int64    // size for zeros/random, value for u64
	SizeOf     string   // u64: the size of this other file instead of N; sha256: the file digested
	Text       []string // text lines
	CRLF       bool     // text: join lines with \r\n
	ErrorAfter int
	Truncate   int
	line       int
}

// ParseError is a scenario syntax error with its position.
type ParseError struct {
	Path string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// LoadScenarios parses every *.scn file in dir, sorted by name.
func LoadScenarios(dir string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.scn"))
	if err != nil {
		return nil, fmt.Errorf("load scenarios from %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("load scenarios from %s: no *.scn files", dir)
	}
	sort.Strings(paths)
	var out []*Scenario
	for _, p := range paths {
		sc, err := ParseScenarioFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// ParseScenarioFile reads and parses one scenario file.
func ParseScenarioFile(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open scenario: %w", err)
	}
	defer f.Close()
	return ParseScenario(path, f)
}

// ParseScenario parses a scenario; path names it in errors and gives its name.
func ParseScenario(path string, r io.Reader) (*Scenario, error) {
	sc := &Scenario{
		Name:  strings.TrimSuffix(filepath.Base(path), ".scn"),
		Path:  path,
		XFail: map[string]string{},
		DNS:   map[string]netip.Addr{},
		DHCP:  DHCPConfig{RebootTime: -1},
	}
	p := &scenarioParser{sc: sc, path: path, files: map[string]*FileSpec{}}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), 64*1024)
	for s.Scan() {
		p.line++
		if err := p.parseLine(strings.TrimRight(s.Text(), "\r")); err != nil {
			return nil, err
		}
	}
	if err := s.Err(); err != nil {
		return nil, &ParseError{path, p.line + 1, err.Error()}
	}
	return sc, p.finish()
}

type scenarioParser struct {
	sc    *Scenario
	path  string
	line  int
	files map[string]*FileSpec
	seen  map[string]int // single-use directives → line
}

func (p *scenarioParser) errf(format string, args ...any) error {
	return &ParseError{p.path, p.line, fmt.Sprintf(format, args...)}
}

// once rejects a second occurrence of a directive that may appear only once.
func (p *scenarioParser) once(key string) error {
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	if l, ok := p.seen[key]; ok {
		return p.errf("%s given twice (first on line %d)", key, l)
	}
	p.seen[key] = p.line
	return nil
}

// splitWord returns the first blank-separated word of s and the rest, trimmed.
func splitWord(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

func (p *scenarioParser) parseLine(line string) error {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return nil
	}
	kw, rest := splitWord(line)
	sc := p.sc
	switch kw {
	case "desc":
		sc.Desc = rest
	case "timeout":
		if err := p.once(kw); err != nil {
			return err
		}
		d, err := p.duration(rest)
		if err != nil {
			return err
		}
		if d <= 0 || d > 15*time.Minute {
			return p.errf("timeout %q out of range (0, 15m]", rest)
		}
		sc.Timeout = d
	case "xfail":
		fw, why := splitWord(rest)
		if fw == "" || why == "" {
			return p.errf("xfail needs a firmware name and a reason")
		}
		if !knownFirmware(fw) {
			return p.errf("xfail: unknown firmware %q (want %s)", fw, strings.Join(Firmwares, " or "))
		}
		if _, dup := sc.XFail[fw]; dup {
			return p.errf("xfail %s given twice", fw)
		}
		sc.XFail[fw] = why
	case "expect":
		fw, rest := splitWord(rest)
		if !knownFirmware(fw) {
			return p.errf("expect: unknown firmware %q (want %s)", fw, strings.Join(Firmwares, " or "))
		}
		kind, text := splitWord(rest)
		switch kind {
		case "want", "wantnot", "log", "nolog":
			return p.check(fw, kind, text)
		}
		return p.errf("expect %s %q: want want, wantnot, log or nolog", fw, kind)
	case "mac":
		if err := p.once(kw); err != nil {
			return err
		}
		hw, err := net.ParseMAC(rest)
		if err != nil || len(hw) != 6 {
			return p.errf("mac %q is not a 6-byte MAC", rest)
		}
		sc.MAC = hw.String()
	case "uuid":
		if len(rest) != 36 || strings.Count(rest, "-") != 4 {
			return p.errf("uuid %q is not in 8-4-4-4-12 form", rest)
		}
		sc.QEMU = append(sc.QEMU, "-uuid", rest)
	case "qemu":
		if rest == "" {
			return p.errf("qemu needs arguments")
		}
		sc.QEMU = append(sc.QEMU, strings.Fields(rest)...)
	case "dhcp":
		return p.parseDHCP(rest)
	case "dns":
		name, ip := splitWord(rest)
		a, err := netip.ParseAddr(ip)
		if name == "" || err != nil || !a.Is4() {
			return p.errf("dns needs NAME IPV4, got %q", rest)
		}
		sc.DNS[strings.ToLower(strings.TrimSuffix(name, "."))] = a
	case "file":
		return p.parseFile(rest)
	case "tftp":
		return p.parseTFTP(rest)
	case "dhcp6":
		key, val := splitWord(rest)
		if key != "bootfile-url" || val == "" {
			return p.errf("dhcp6 wants bootfile-url URL")
		}
		sc.IPv6 = &IPv6Config{BootURL: val}
	case "fault":
		return p.parseFault(rest)
	case "want", "wantnot", "log", "nolog":
		return p.check("", kw, rest)
	default:
		return p.errf("unknown directive %q", kw)
	}
	return nil
}

// check adds a judging line for firmware ("" = every firmware).
func (p *scenarioParser) check(firmware, kind, text string) error {
	if text == "" {
		return p.errf("%s needs text", kind)
	}
	p.sc.Checks = append(p.sc.Checks, Check{Firmware: firmware, Kind: kind, Text: unquote(text)})
	return nil
}

// unquote strips one pair of surrounding double quotes, so text can keep leading/trailing blanks.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func (p *scenarioParser) duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.errf("bad duration %q", s)
	}
	if d < 0 {
		return 0, p.errf("negative duration %q", s)
	}
	return d, nil
}

func (p *scenarioParser) count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, p.errf("bad count %q (want an integer >= 0)", s)
	}
	return n, nil
}

func (p *scenarioParser) percent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, p.errf("bad percentage %q (want 0..100)", s)
	}
	return v, nil
}

func (p *scenarioParser) parseDHCP(rest string) error {
	d := &p.sc.DHCP
	key, val := splitWord(rest)
	need := func() error {
		if val == "" {
			return p.errf("dhcp %s needs a value", key)
		}
		return nil
	}
	switch key {
	case "off":
		if val != "" {
			return p.errf("dhcp off takes no value")
		}
		d.Off = true
		return nil
	case "bootfile", "server-name", "domain", "option209", "option210", "second":
		if err := need(); err != nil {
			return err
		}
		v := unquote(val)
		switch key {
		case "bootfile":
			d.Bootfile = v
		case "server-name":
			d.ServerName = v
		case "domain":
			d.Domain = v
		case "option209":
			d.ConfigFile = v
		case "option210":
			d.PathPrefix = v
		case "second":
			d.Second = &SecondDHCP{Bootfile: v}
		}
	case "option211":
		n, err := p.count(val)
		if err != nil {
			return err
		}
		d.RebootTime = n
	case "delay":
		v, err := p.duration(val)
		if err != nil {
			return err
		}
		d.Delay = v
	case "nak":
		n, err := p.count(val)
		if err != nil {
			return err
		}
		d.NAKs = n
	case "siaddr":
		a, err := netip.ParseAddr(val)
		if err != nil || !a.Is4() {
			return p.errf("dhcp siaddr needs an IPv4 address, got %q", val)
		}
		d.SIAddr = a
	case "lease":
		mac, ip := splitWord(val)
		hw, err1 := net.ParseMAC(mac)
		a, err2 := netip.ParseAddr(ip)
		if err1 != nil || err2 != nil || !a.Is4() {
			return p.errf("dhcp lease needs MAC IPV4, got %q", val)
		}
		if d.Leases == nil {
			d.Leases = map[string]netip.Addr{}
		}
		d.Leases[hw.String()] = a
	default:
		return p.errf("unknown dhcp setting %q", key)
	}
	return nil
}

func (p *scenarioParser) parseFile(rest string) error {
	name, rest := splitWord(rest)
	kind, arg := splitWord(rest)
	if name == "" || kind == "" {
		return p.errf("file needs NAME KIND [ARG]")
	}
	name = strings.TrimLeft(name, "/")
	f, exists := p.files[name]
	if exists && !((kind == "text" || kind == "crlf") && f.Kind == "text") {
		return p.errf("file %q already defined on line %d", name, f.line)
	}
	if !exists {
		f = &FileSpec{Name: name, Kind: kind, ErrorAfter: -1, Truncate: -1, line: p.line}
	}
	switch kind {
	case "kernel", "initrd":
		if arg != "" {
			return p.errf("file %s %s takes no argument", name, kind)
		}
	case "zeros", "random":
		n, err := p.count(arg)
		if err != nil {
			return err
		}
		f.N = int64(n)
	case "text", "crlf":
		// The rest of the line, verbatim (quotes keep edge blanks); one directive per line of the file.
		f.Kind = "text"
		f.CRLF = f.CRLF || kind == "crlf"
		f.Text = append(f.Text, unquote(textArg(rest)))
	case "sha256":
		// A sidecar in sha256sum format: the digest of another file's full data (before any
		// tftp truncate), so a firmware that checks it sees the mismatch.
		if arg == "" {
			return p.errf("file %s sha256 needs a file name", name)
		}
		f.SizeOf = strings.TrimLeft(arg, "/")
	case "u64":
		if strings.HasPrefix(arg, "size:") {
			f.SizeOf = strings.TrimLeft(strings.TrimPrefix(arg, "size:"), "/")
			if f.SizeOf == "" {
				return p.errf("file %s u64 size: needs a file name", name)
			}
		} else {
			v, err := strconv.ParseUint(arg, 0, 64)
			if err != nil {
				return p.errf("file %s u64: bad value %q", name, arg)
			}
			f.N = int64(v)
		}
	default:
		return p.errf("unknown file kind %q (want kernel, initrd, zeros, random, text, crlf, u64, sha256)", kind)
	}
	if !exists {
		p.files[name] = f
		p.sc.Files = append(p.sc.Files, f)
	}
	return nil
}

// textArg returns what follows the kind word ("text"/"crlf") and one separating blank, verbatim.
func textArg(rest string) string {
	rest = strings.TrimLeft(rest, " \t")
	i := strings.IndexAny(rest, " \t")
	if i < 0 {
		return ""
	}
	return rest[i+1:]
}

func (p *scenarioParser) parseTFTP(rest string) error {
	key, val := splitWord(rest)
	switch key {
	case "pin":
		if val != "" {
			return p.errf("tftp pin takes no value")
		}
		p.sc.PinTFTP = true
		return nil
	case "error-after", "truncate":
		name, n := splitWord(val)
		v, err := p.count(n)
		if err != nil {
			return err
		}
		f, ok := p.files[strings.TrimLeft(name, "/")]
		if !ok {
			return p.errf("tftp %s: file %q is not defined (yet)", key, name)
		}
		if key == "truncate" {
			f.Truncate = v
		} else {
			f.ErrorAfter = v
		}
		return nil
	}
	return p.errf("unknown tftp setting %q", key)
}

func (p *scenarioParser) parseFault(rest string) error {
	f := &p.sc.Faults
	key, val := splitWord(rest)
	var err error
	switch key {
	case "loss":
		f.Loss, err = p.percent(val)
	case "dup":
		f.Dup, err = p.percent(val)
	case "reorder":
		f.Reorder, err = p.percent(val)
	case "corrupt":
		f.Corrupt, err = p.percent(val)
	case "delay":
		f.Delay, err = p.duration(val)
	case "jitter":
		f.Jitter, err = p.duration(val)
	case "silence-after":
		f.SilenceAfter, err = p.count(val)
	case "seed":
		var n int
		n, err = p.count(val)
		f.Seed = int64(n)
	case "scope":
		switch val {
		case "all":
			f.Scope = ScopeAll
		case "tftp":
			f.Scope = ScopeTFTP
		case "dhcp":
			f.Scope = ScopeDHCP
		default:
			return p.errf("fault scope %q: want all, tftp or dhcp", val)
		}
	case "dir":
		switch val {
		case "both":
			f.Dir = Both
		case "to-guest":
			f.Dir = ToGuest
		case "from-guest":
			f.Dir = FromGuest
		default:
			return p.errf("fault dir %q: want both, to-guest or from-guest", val)
		}
	default:
		return p.errf("unknown fault %q", key)
	}
	return err
}

func (p *scenarioParser) finish() error {
	sc := p.sc
	if sc.Timeout == 0 {
		return &ParseError{p.path, p.line, "no timeout given (every scenario needs its hang bound)"}
	}
	for _, fw := range Firmwares {
		if len(sc.Expect(fw).Want) == 0 {
			return &ParseError{p.path, p.line, fmt.Sprintf("no want line for %s (nothing to judge)", fw)}
		}
	}
	for _, f := range sc.Files {
		if f.SizeOf != "" {
			if _, ok := p.files[f.SizeOf]; !ok {
				return &ParseError{p.path, f.line, fmt.Sprintf("file %s: %s names no file", f.Name, map[string]string{"u64": "size:" + f.SizeOf, "sha256": f.SizeOf}[f.Kind])}
			}
		}
	}
	return nil
}
