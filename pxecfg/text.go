package pxecfg

import (
	"errors"
	"fmt"
	"strings"
)

// Text describes a Result as stable, human-readable lines: the names probed and their outcome,
// the config chosen, every entry, the selection and the exact boot. `netipl explain` prints it
// and the golden tests compare it. err is Discover's error, if any.
func (r *Result) Text(err error) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("current directory: %s", r.Lookup.Cwd)
	if r.Lookup.Bootfile != "" {
		w("boot file: %s", r.Lookup.Bootfile)
	}
	w("names probed:")
	for _, s := range r.Steps {
		res := fmt.Sprintf("%d bytes", s.Size)
		switch {
		case errors.Is(s.Err, ErrNotFound):
			res = "not found"
		case s.Err != nil:
			res = s.Err.Error()
		}
		w("  %-28s %s: %s", s.What, s.URL, res)
	}
	if r.Source != "" {
		w("chosen: %s (%s)", r.Source, r.Kind)
	}
	if c := r.Config; c != nil {
		w("config:")
		if c.MenuTitle != "" {
			w("  menu title: %s", c.MenuTitle)
		}
		w("  default=%q ui=%q ontimeout=%q prompt=%v timeout=%d totaltimeout=%d", c.Default, c.UI, c.OnTimeout, c.Prompt, c.Timeout, c.TotalTimeout)
		if c.Append != "" || c.IPAppend != 0 {
			w("  global append=%q ipappend=%d", c.Append, c.IPAppend)
		}
		for _, s := range c.Say {
			w("  say: %s", s)
		}
		for i := range c.Entries {
			e := &c.Entries[i]
			var flags []string
			if e.MenuDefault {
				flags = append(flags, "menu-default")
			}
			if e.Hidden {
				flags = append(flags, "hidden")
			}
			if e.LocalBoot {
				flags = append(flags, fmt.Sprintf("localboot=%d", e.LocalBootType))
			}
			fl := ""
			if len(flags) > 0 {
				fl = " [" + strings.Join(flags, ",") + "]"
			}
			w("  [%d] %s%s (%s)", i+1, e.Label, fl, e.Pos)
			if e.MenuLabel != "" {
				w("      menu label: %s", e.MenuLabel)
			}
			if e.Kernel != "" {
				w("      %s %s", e.KernelKeyword, e.Kernel)
			}
			if e.Initrd != nil {
				w("      initrd %s", strings.Join(e.Initrd, ","))
			}
			if e.HasAppend {
				w("      append %q", e.Append)
			}
			if e.HasIPAppend {
				w("      ipappend %d", e.IPAppend)
			}
		}
		for _, n := range c.Notes {
			w("  note: %s", n)
		}
		if r.Selection.Entry != nil {
			s := r.Selection
			w("selected: %q by %s (menu=%v timeout=%d)", s.Entry.Label, s.Why, s.Menu, s.Timeout)
			if s.Args != "" {
				w("  extra options: %q", s.Args)
			}
			for _, n := range s.Notes {
				w("  note: %s", n)
			}
		}
	}
	if ins := r.INS; ins != nil {
		w(".INS %q:", ins.Title)
		for _, l := range ins.Lines {
			w("  %-32s %#010x", l.Name, l.Addr)
		}
	}
	if s := r.IPXE; s != nil {
		for _, n := range s.Notes {
			w("  note: %s", n)
		}
	}
	if err != nil {
		w("error: %v", err)
		return b.String()
	}
	bt := r.Boot
	switch {
	case bt.LocalBoot:
		w("boot: LOCALBOOT %d (return to firmware: next boot device)", bt.LocalBootType)
	case bt.Kernel.URL != "":
		w("boot:")
		if bt.Label != "" {
			w("  label:   %s", bt.Label)
		}
		w("  kernel:  %s", bt.Kernel)
		for i, s := range bt.Initrds {
			w("  initrd%d: %s", i+1, s)
		}
		if bt.InitrdSize != 0 {
			w("  initrd size declared: %d", bt.InitrdSize)
		}
		if bt.HasCmdline {
			w("  cmdline: %q (%d bytes)", bt.Cmdline, len(bt.Cmdline))
		} else {
			w("  cmdline: (the kernel's own)")
		}
	}
	return b.String()
}
