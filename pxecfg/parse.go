package pxecfg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Config is a parsed pxelinux.cfg (with its INCLUDEs read in). The zero value is an empty
// config: no entries, nothing to boot.
type Config struct {
	// Name is the URL the config was read from; Cwd is the directory names resolve against.
	Name, Cwd string
	// Entries are the LABEL blocks in file order; entry i is loadparm i+1.
	Entries []Entry
	// Default is the last DEFAULT line's argument; UI the last UI line's.
	Default, UI string
	// OnTimeout and OnError are the ONTIMEOUT and ONERROR command lines.
	OnTimeout, OnError string
	// Prompt is PROMPT's flag; Timeout and TotalTimeout are in tenths of a second (0 = none).
	Prompt                bool
	Timeout, TotalTimeout int
	// MenuTitle is MENU TITLE.
	MenuTitle string
	// Append and IPAppend are the global APPEND and IPAPPEND/SYSAPPEND (before the first LABEL).
	Append   string
	IPAppend int
	// Say holds SAY lines in order, for the loader to print.
	Say []string
	// Notes are lines that were ignored or wrong, each keyword reported once.
	Notes []Note
}

// Entry is one LABEL block. The zero value has no label and nothing to boot.
type Entry struct {
	Label     string
	MenuLabel string
	// MenuDefault and Hidden are MENU DEFAULT and MENU HIDE.
	MenuDefault, Hidden bool
	// Kernel is the KERNEL/LINUX argument as written; KernelKeyword the keyword used (lower case).
	Kernel, KernelKeyword string
	// Initrd is the INITRD list (comma-separated in the file); nil when there is no INITRD line.
	Initrd []string
	// Append is the label's APPEND; HasAppend says it was given ("APPEND -" gives an empty one).
	Append    string
	HasAppend bool
	// IPAppend is IPAPPEND/SYSAPPEND; HasIPAppend says it was given.
	IPAppend    int
	HasIPAppend bool
	// LocalBoot is set by LOCALBOOT; LocalBootType is its argument (0, -1, …).
	LocalBoot     bool
	LocalBootType int
	// Pos is where the LABEL line is ("pxelinux.cfg/default:12").
	Pos string
}

// Title is what a menu shows: MENU LABEL, else LABEL.
func (e *Entry) Title() string {
	if e.MenuLabel != "" {
		return e.MenuLabel
	}
	return e.Label
}

// isModule reports whether a kernel name is a syslinux module (a .c32 file, or the bare
// names "menu"/"vesamenu" that syslinux completes to .c32), which cannot run on s390x.
func isModule(kernel string) bool {
	k := strings.ToLower(kernel)
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		k = k[i+1:]
	}
	return strings.HasSuffix(k, ".c32") || k == "menu" || k == "vesamenu"
}

// Note is a line that was skipped or could not be used. String gives "file:line: message".
type Note struct {
	Pos string
	Msg string
}

func (n Note) String() string { return n.Pos + ": " + n.Msg }

// MaxIncludeDepth is how deeply INCLUDE may nest, as in syslinux. MaxIncludes bounds the
// INCLUDEs followed in one config, so a hostile server cannot make a few lines that include
// each other twice cost 2^16 fetches.
const (
	MaxIncludeDepth = 16
	MaxIncludes     = 256
)

// Parse reads a config from data without following INCLUDE (each INCLUDE becomes a note).
// name is used in positions and as the Name; cwd is where names resolve.
func Parse(name, cwd string, data []byte) *Config {
	p := &parser{cfg: &Config{Name: name, Cwd: cwd}}
	p.parse(context.Background(), name, data, 0)
	return p.cfg
}

// Load reads a config from data and follows INCLUDE through f, nested at most
// MaxIncludeDepth deep. Included names resolve against the config's cwd, then against the
// including file's directory. A missing INCLUDE file is a note; other fetch errors and
// too-deep nesting are errors.
func Load(ctx context.Context, f Fetcher, url, cwd string, data []byte) (*Config, error) {
	p := &parser{cfg: &Config{Name: url, Cwd: cwd}, fetch: f, bytes: int64(len(data))}
	if err := p.parse(ctx, url, data, 0); err != nil {
		return p.cfg, err
	}
	return p.cfg, nil
}

type parser struct {
	cfg    *Config
	fetch  Fetcher
	cur    *Entry          // the LABEL being read, nil before the first
	incs   int             // INCLUDEs followed so far
	bytes  int64           // bytes of the config and its INCLUDEs read so far (ConfigTotalLimit)
	noted  map[string]bool // keywords already reported
	inText bool            // inside TEXT HELP … ENDTEXT
}

// note records a message once per key.
func (p *parser) note(key, pos, format string, args ...any) {
	if p.noted == nil {
		p.noted = map[string]bool{}
	}
	if key != "" {
		if p.noted[key] {
			return
		}
		p.noted[key] = true
	}
	p.cfg.Notes = append(p.cfg.Notes, Note{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// splitWord splits s at its first run of blanks (space or tab).
func splitWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// ignored keywords: accepted, no effect on s390x; reported once each.
var ignored = map[string]string{
	"display": "a display file", "font": "a console font", "kbdmap": "a keyboard map",
	"serial": "a serial console", "console": "a console switch", "noescape": "a keyboard option",
	"nocomplete": "a keyboard option", "allowoptions": "an editing option", "implicit": "an option",
	"path": "a module search path", "nohalt": "an idle option", "f1": "a help screen", "f2": "a help screen",
	"f3": "a help screen", "f4": "a help screen", "f5": "a help screen", "f6": "a help screen",
	"f7": "a help screen", "f8": "a help screen", "f9": "a help screen", "f10": "a help screen",
	"f11": "a help screen", "f12": "a help screen", "f0": "a help screen", "sendcookies": "HTTP cookies",
	"fdt": "a device tree", "devicetree": "a device tree", "fdtdir": "a device tree directory",
}

func (p *parser) parse(ctx context.Context, name string, data []byte, depth int) error {
	file := displayName(name)
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		pos := file + ":" + strconv.Itoa(i+1)
		line := strings.Trim(strings.TrimRight(raw, "\r"), " \t\r")
		if p.inText {
			if strings.EqualFold(line, "endtext") {
				p.inText = false
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		kw, arg := splitWord(line)
		key := strings.ToLower(kw)
		if err := p.directive(ctx, key, kw, arg, pos, name, depth); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) directive(ctx context.Context, key, kw, arg, pos, name string, depth int) error {
	c := p.cfg
	needArg := func() bool {
		if arg == "" {
			p.note("", pos, "%s without an argument ignored", strings.ToUpper(kw))
			return false
		}
		return true
	}
	inLabel := func() bool {
		if p.cur == nil {
			p.note("", pos, "%s outside a LABEL ignored", strings.ToUpper(kw))
			return false
		}
		return true
	}
	switch key {
	case "default":
		if needArg() {
			c.Default = arg
		}
	case "ui":
		if needArg() {
			// "UI menu.c32 [args]": only the module matters.
			c.UI, _ = splitWord(arg)
		}
	case "label":
		if needArg() {
			c.Entries = append(c.Entries, Entry{Label: arg, Pos: pos})
			p.cur = &c.Entries[len(c.Entries)-1]
		} else {
			p.cur = nil
		}
	case "kernel", "linux", "boot", "bss", "pxe", "fdimage", "comboot", "com32", "config":
		if inLabel() && needArg() {
			k, rest := splitWord(arg)
			p.cur.Kernel, p.cur.KernelKeyword = k, key
			if rest != "" {
				// "KERNEL vmlinuz opts" is not syslinux syntax; keep the options rather than lose them.
				p.note("", pos, "%s has options after the file name; they are added to the command line", strings.ToUpper(kw))
				if p.cur.HasAppend {
					p.cur.Append = strings.TrimSpace(p.cur.Append + " " + rest)
				} else {
					p.cur.Append, p.cur.HasAppend = strings.TrimSpace(c.Append+" "+rest), true
				}
			}
			if isModule(k) {
				p.note("module:"+strings.ToLower(k), pos, "%s is a syslinux module; LABEL %s cannot boot on s390x", k, p.cur.Label)
			}
		}
	case "initrd":
		if inLabel() && needArg() {
			p.cur.Initrd = splitList(arg)
		}
	case "append":
		if arg == "" {
			p.note("", pos, "APPEND without an argument ignored (use \"APPEND -\" for none)")
			break
		}
		if arg == "-" {
			arg = ""
		}
		if p.cur == nil {
			c.Append = arg
		} else {
			p.cur.Append, p.cur.HasAppend = arg, true
		}
	case "ipappend", "sysappend":
		if !needArg() {
			break
		}
		n, err := strconv.ParseInt(arg, 0, 64)
		if err != nil || n < 0 {
			p.note("", pos, "%s %q: not a number", strings.ToUpper(kw), arg)
			break
		}
		if p.cur == nil {
			c.IPAppend = int(n)
		} else {
			p.cur.IPAppend, p.cur.HasIPAppend = int(n), true
		}
	case "localboot":
		if !inLabel() {
			break
		}
		n := 0
		if arg != "" {
			v, err := strconv.Atoi(arg)
			if err != nil {
				p.note("", pos, "LOCALBOOT %q: not a number, taken as 0", arg)
			}
			n = v
		}
		p.cur.LocalBoot, p.cur.LocalBootType = true, n
	case "timeout", "totaltimeout":
		if !needArg() {
			break
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 {
			p.note("", pos, "%s %q: not a number", strings.ToUpper(kw), arg)
			break
		}
		if key == "timeout" {
			c.Timeout = n
		} else {
			c.TotalTimeout = n
		}
	case "prompt":
		if needArg() {
			n, err := strconv.Atoi(arg)
			if err != nil {
				p.note("", pos, "PROMPT %q: not a number", arg)
				break
			}
			c.Prompt = n != 0
		}
	case "ontimeout":
		if needArg() {
			c.OnTimeout = arg
		}
	case "onerror":
		if needArg() {
			c.OnError = arg
		}
	case "say":
		c.Say = append(c.Say, arg)
	case "text":
		// TEXT HELP … ENDTEXT: help text for the menu, skipped.
		p.inText = true
	case "include":
		if needArg() {
			return p.include(ctx, arg, pos, name, depth)
		}
	case "menu":
		return p.menu(ctx, arg, pos, name, depth)
	default:
		if what, ok := ignored[key]; ok {
			p.note("kw:"+key, pos, "%s (%s) ignored", strings.ToUpper(kw), what)
			break
		}
		p.note("kw:"+key, pos, "unknown keyword %s ignored", strings.ToUpper(kw))
	}
	return nil
}

// menu handles MENU LABEL/DEFAULT/HIDE/TITLE/INCLUDE; the other MENU lines only style the menu.
func (p *parser) menu(ctx context.Context, arg, pos, name string, depth int) error {
	sub, rest := splitWord(arg)
	switch strings.ToLower(sub) {
	case "label":
		if p.cur == nil {
			p.note("", pos, "MENU LABEL outside a LABEL ignored")
		} else {
			p.cur.MenuLabel = strings.ReplaceAll(rest, "^", "") // ^ marks the hotkey
		}
	case "default":
		if p.cur == nil {
			p.note("", pos, "MENU DEFAULT outside a LABEL ignored")
		} else {
			p.cur.MenuDefault = true
		}
	case "hide":
		if p.cur != nil {
			p.cur.Hidden = true
		}
	case "title":
		p.cfg.MenuTitle = rest
	case "include":
		if rest == "" {
			p.note("", pos, "MENU INCLUDE without an argument ignored")
			return nil
		}
		f, _ := splitWord(rest)
		return p.include(ctx, f, pos, name, depth)
	}
	return nil
}

// include reads another config into this one, in place.
func (p *parser) include(ctx context.Context, arg, pos, name string, depth int) error {
	if p.fetch == nil {
		p.note("", pos, "INCLUDE %s not followed", arg)
		return nil
	}
	if depth+1 > MaxIncludeDepth {
		return fmt.Errorf("%s: INCLUDE %s: nested deeper than %d", pos, arg, MaxIncludeDepth)
	}
	if p.incs++; p.incs > MaxIncludes {
		return fmt.Errorf("%s: INCLUDE %s: more than %d INCLUDEs in one config", pos, arg, MaxIncludes)
	}
	url, alt := resolve(p.cfg.Cwd, arg)
	tries := []string{url}
	if alt != "" {
		tries = append(tries, alt)
	}
	if d, _ := resolve(dirOf(name), arg); d != url && d != alt {
		tries = append(tries, d)
	}
	limit := min(int64(ConfigLimit), ConfigTotalLimit-p.bytes)
	for _, u := range tries {
		if limit <= 0 {
			return fmt.Errorf("%s: INCLUDE %s: the config and its INCLUDEs exceed %d bytes", pos, u, ConfigTotalLimit)
		}
		data, err := p.fetch.Fetch(ctx, u, limit)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if errors.Is(err, ErrTooLarge) && limit < ConfigLimit {
			return fmt.Errorf("%s: INCLUDE %s: the config and its INCLUDEs exceed %d bytes", pos, u, ConfigTotalLimit)
		}
		if err != nil {
			return fmt.Errorf("%s: INCLUDE %s: %w", pos, u, err)
		}
		if int64(len(data)) > limit { // a Fetcher that ignored the limit
			return fmt.Errorf("%s: INCLUDE %s: %d bytes, more than the %d allowed", pos, u, len(data), limit)
		}
		p.bytes += int64(len(data))
		return p.parse(ctx, u, data, depth+1)
	}
	p.note("", pos, "INCLUDE %s: not found (tried %s)", arg, strings.Join(tries, ", "))
	return nil
}

// splitList splits a comma-separated file list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
