package pxecfg

import (
	"fmt"
	"strconv"
	"strings"
)

// Selection is which entry boots and why. The zero value selects nothing.
type Selection struct {
	// Entry is the chosen entry: a pointer into Config.Entries, or a synthesized entry for an
	// implicit DEFAULT/ONTIMEOUT command line ("DEFAULT vmlinuz root=…").
	Entry *Entry
	// Index is Entry's index in Config.Entries, -1 for a synthesized entry.
	Index int
	// Args are options typed after a label in DEFAULT/ONTIMEOUT ("DEFAULT linux quiet"); they
	// go after the entry's APPEND.
	Args string
	// Why says how the entry was chosen, for the console ("loadparm 3", "ONTIMEOUT local", …).
	Why string
	// Menu says syslinux would show a menu or prompt first (UI module, PROMPT 1, or loadparm
	// PROMPT); Timeout is then how long it waits (tenths of a second, 0 = until a key), and
	// Entry is what boots when it expires (or on Enter when there is no timeout).
	Menu    bool
	Timeout int
	// Notes explain fallbacks ("DEFAULT x names no LABEL; …").
	Notes []string
}

// MenuItem is one visible line of the boot menu; Number is the loadparm that selects it.
type MenuItem struct {
	Number int
	Title  string
	Index  int
}

// MenuItems lists the entries a menu shows: every entry but MENU HIDE ones, numbered from 1
// in file order (hidden entries keep their number, so numbers always match loadparm).
func (c *Config) MenuItems() []MenuItem {
	var m []MenuItem
	for i := range c.Entries {
		if !c.Entries[i].Hidden {
			m = append(m, MenuItem{Number: i + 1, Title: c.Entries[i].Title(), Index: i})
		}
	}
	return m
}

// menuUI reports whether the config runs a menu module (UI, or DEFAULT naming a module).
func (c *Config) menuUI() bool {
	if c.UI != "" && isModule(c.UI) {
		return true
	}
	k, _ := splitWord(c.Default)
	return k != "" && isModule(k) && c.label(k) < 0
}

// label finds a label exactly (syslinux compares labels case-sensitively).
func (c *Config) label(name string) int {
	for i := range c.Entries {
		if c.Entries[i].Label == name {
			return i
		}
	}
	return -1
}

// command resolves a DEFAULT/ONTIMEOUT command line: a label and optional extra options, or
// (when implicit is true) a kernel command line. ok is false if it names nothing bootable.
func (c *Config) command(cmd string, implicit bool) (s Selection, ok bool) {
	w, rest := splitWord(cmd)
	if i := c.label(cmd); i >= 0 {
		return Selection{Entry: &c.Entries[i], Index: i}, true
	}
	if i := c.label(w); i >= 0 {
		return Selection{Entry: &c.Entries[i], Index: i, Args: rest}, true
	}
	if w == "" || isModule(w) || !implicit {
		return Selection{}, false
	}
	e := &Entry{Label: cmd, Kernel: w, KernelKeyword: "kernel", Pos: c.Name}
	return Selection{Entry: e, Index: -1, Args: rest}, true
}

// Select chooses the entry to boot. loadparm (the machine or device LOADPARM, blanks
// trimmed, any case) may be a 1-based entry number (0 = automatic), a label name compared
// case-insensitively, or PROMPT (show the menu). Otherwise the syslinux rules apply with no
// one at the keyboard:
//   - a menu (UI module or "DEFAULT menu.c32") with a timeout boots ONTIMEOUT, else MENU
//     DEFAULT, else a DEFAULT label, else the first entry;
//   - PROMPT 1 with a timeout boots ONTIMEOUT, else DEFAULT;
//   - otherwise DEFAULT: a label (plus options), or an implicit kernel command line;
//   - no usable DEFAULT: the first entry, as QEMU does.
//
// A number beyond the entries is an error; a name matching no label falls back with a note.
func Select(c *Config, loadparm string) (Selection, error) {
	lp := strings.TrimSpace(strings.Trim(loadparm, "\x00"))
	var notes []string
	prompt := false
	if lp != "" {
		if n, err := strconv.Atoi(lp); err == nil {
			switch {
			case n < 0:
				return Selection{}, fmt.Errorf("loadparm %q: not an entry number", lp)
			case n > len(c.Entries):
				return Selection{}, fmt.Errorf("loadparm %d: %s has only %d entries", n, displayName(c.Name), len(c.Entries))
			case n > 0:
				return Selection{Entry: &c.Entries[n-1], Index: n - 1, Why: "loadparm " + lp}, nil
			}
		} else if strings.EqualFold(lp, "PROMPT") {
			prompt = true
		} else {
			for i := range c.Entries {
				if strings.EqualFold(c.Entries[i].Label, lp) {
					return Selection{Entry: &c.Entries[i], Index: i, Why: "loadparm " + lp + " (label " + c.Entries[i].Label + ")"}, nil
				}
			}
			notes = append(notes, fmt.Sprintf("loadparm %q matches no LABEL; using the configured default", lp))
		}
	}
	s := c.automatic(&notes)
	s.Menu = s.Menu || prompt
	s.Notes = append(notes, s.Notes...)
	if s.Entry == nil {
		return s, fmt.Errorf("%s: no entry to boot (no LABEL and no DEFAULT command line)", displayName(c.Name))
	}
	return s, nil
}

// automatic is the unattended choice.
func (c *Config) automatic(notes *[]string) Selection {
	menu := c.menuUI()
	interactive := menu || c.Prompt
	pick := func(s Selection, why string) Selection {
		s.Why, s.Menu, s.Timeout = why, interactive, c.Timeout
		return s
	}
	if interactive && c.Timeout > 0 && c.OnTimeout != "" {
		if s, ok := c.command(c.OnTimeout, true); ok {
			return pick(s, "ONTIMEOUT "+c.OnTimeout)
		}
		*notes = append(*notes, fmt.Sprintf("ONTIMEOUT %q names nothing bootable", c.OnTimeout))
	}
	if menu {
		for i := range c.Entries {
			if c.Entries[i].MenuDefault {
				return pick(Selection{Entry: &c.Entries[i], Index: i}, "MENU DEFAULT")
			}
		}
	}
	if c.Default != "" {
		// An unmatched one-word DEFAULT in a config with labels is most likely a typo or a
		// module: boot the first entry as QEMU does rather than fetch a file of that name.
		implicit := len(c.Entries) == 0 || strings.ContainsAny(c.Default, " \t")
		if s, ok := c.command(c.Default, implicit); ok {
			return pick(s, "DEFAULT "+c.Default)
		}
		if !menu {
			*notes = append(*notes, fmt.Sprintf("DEFAULT %q names no LABEL; booting the first entry", c.Default))
		}
	}
	if len(c.Entries) > 0 {
		return pick(Selection{Entry: &c.Entries[0], Index: 0}, "first entry")
	}
	return Selection{Index: -1}
}
