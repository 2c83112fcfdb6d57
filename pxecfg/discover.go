package pxecfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// Kind is what a boot file is.
type Kind int

const (
	KindKernel   Kind = iota // anything else: a kernel image, handed to the loader as is
	KindPXELinux             // "# pxelinux" first (any case): a pxelinux.cfg sent as the boot file
	KindINS                  // "* " first, or a header-less "name address" list
	KindIPXE                 // "#!ipxe"
)

func (k Kind) String() string {
	return [...]string{"kernel image", "pxelinux config", ".INS file", "iPXE script"}[k]
}

// MinBootfile is the smallest boot file accepted (QEMU's "too small" rule).
const MinBootfile = 8

// Sniff tells what a boot file is from its first bytes (QEMU's order: .INS, then pxelinux).
func Sniff(data []byte) Kind {
	switch {
	case bytes.HasPrefix(data, []byte("* ")):
		return KindINS
	case len(data) >= 10 && strings.EqualFold(string(data[:10]), "# pxelinux"):
		return KindPXELinux
	case bytes.HasPrefix(data, []byte("#!ipxe")):
		return KindIPXE
	case looksLikeINS(data):
		return KindINS
	}
	return KindKernel
}

// ErrBootProgram marks a boot file named like a PC network boot program (pxelinux.0,
// lpxelinux.0, *.efi): DHCP servers shared with x86 hosts hand those out. It cannot be an s390x
// kernel, so it is not loaded; the lookup runs from its directory, which is what PXELINUX would do.
var ErrBootProgram = errors.New("a PC network boot program (x86 PXE or EFI), not loaded; looking up configs instead")

// isBootProgram reports whether a boot file name is a PC network boot program.
func isBootProgram(url string) bool {
	n := strings.ToLower(url[strings.LastIndexByte(url, '/')+1:])
	return strings.HasSuffix(n, ".0") || strings.HasSuffix(n, ".efi") || strings.HasSuffix(n, ".c32") || strings.HasSuffix(n, ".pxe") || strings.HasSuffix(n, ".kpxe")
}

// Step is one thing Discover tried, for the loader to print as it happens.
type Step struct {
	// What is "bootfile", "bootfile rejected" (it loaded but could not be used; Err says
	// why) or the candidate's Why ("MAC", "default", …).
	What string
	URL  string
	Size int   // bytes received (when Err is nil)
	Err  error // nil on success
}

// Result is what Discover found. The zero value found nothing.
type Result struct {
	Lookup Lookup
	// Kind is what the file that decided the boot was; Source is its URL.
	Kind   Kind
	Source string
	// Config, Selection are set for a pxelinux config; INS for an .INS file; IPXE for a script.
	Config    *Config
	Selection Selection
	INS       *INS
	IPXE      *IPXE
	// Boot is the outcome.
	Boot Boot
	// Steps are every fetch tried, in order.
	Steps []Step
}

// Options for Discover. The zero value selects automatically and reports nothing live.
type Options struct {
	Loadparm string
	// Report, if set, is called after each fetch (the loader prints "name: result").
	Report func(Step)
}

// Discover runs the whole decision: the boot file (if option 67 names one not ending in "/")
// is fetched and sniffed; a kernel boots as is; a pxelinux config, .INS file or iPXE script is
// read and resolved. If the boot file is missing, too small or broken, the config candidates
// are tried in order, and the first one that loads is parsed, an entry selected and resolved.
// Errors after a config was found are final (PXELINUX stops at the first config too).
func Discover(ctx context.Context, fe Fetcher, f Facts, o Options) (*Result, error) {
	l, err := Look(f)
	if err != nil {
		return nil, err
	}
	r := &Result{Lookup: l}
	step := func(s Step) {
		r.Steps = append(r.Steps, s)
		if o.Report != nil {
			o.Report(s)
		}
	}
	raw := fe
	fe = &stepFetcher{next: fe, step: step}
	var bootErr error
	if l.Bootfile != "" && isBootProgram(l.Bootfile) {
		bootErr = fmt.Errorf("%s: %w", displayName(l.Bootfile), ErrBootProgram)
		step(Step{What: "bootfile", URL: l.Bootfile, Err: bootErr})
	} else if l.Bootfile != "" {
		data, err := raw.Fetch(ctx, l.Bootfile, SniffLimit)
		switch {
		case errors.Is(err, ErrTooLarge):
			step(Step{What: "bootfile", URL: l.Bootfile, Size: SniffLimit})
			r.Kind, r.Source = KindKernel, l.Bootfile
			r.Boot = Boot{Kernel: Source{Name: f.Bootfile, URL: l.Bootfile}}
			return r, nil
		case err != nil:
			step(Step{What: "bootfile", URL: l.Bootfile, Err: err})
			bootErr = err
		case len(data) < MinBootfile:
			err = fmt.Errorf("%s is too small (%d bytes only)", displayName(l.Bootfile), len(data))
			step(Step{What: "bootfile", URL: l.Bootfile, Size: len(data), Err: err})
			bootErr = err
		default:
			step(Step{What: "bootfile", URL: l.Bootfile, Size: len(data)})
			r.Kind, r.Source = Sniff(data), l.Bootfile
			if bootErr = r.fromFile(ctx, fe, f, o, l.Bootfile, dirOf(l.Bootfile), data); bootErr == nil {
				return r, nil
			}
			bootErr = fmt.Errorf("boot file %s (%s): %w", displayName(l.Bootfile), r.Kind, bootErr)
			step(Step{What: "bootfile rejected", URL: l.Bootfile, Err: bootErr})
			r.Config, r.INS, r.IPXE, r.Source, r.Kind, r.Boot = nil, nil, nil, "", KindKernel, Boot{}
		}
	}
	for _, c := range l.Candidates {
		data, err := raw.Fetch(ctx, c.URL, ConfigLimit)
		if err != nil {
			step(Step{What: c.Why, URL: c.URL, Err: err})
			continue
		}
		step(Step{What: c.Why, URL: c.URL, Size: len(data)})
		r.Kind, r.Source = KindPXELinux, c.URL
		return r, r.fromConfig(ctx, fe, f, o, c.URL, l.Cwd, data)
	}
	if bootErr != nil {
		return r, fmt.Errorf("no pxelinux.cfg found (%d names tried) after %w", len(l.Candidates), bootErr)
	}
	return r, fmt.Errorf("no pxelinux.cfg found (%d names tried)", len(l.Candidates))
}

// fromFile handles a boot file by kind.
func (r *Result) fromFile(ctx context.Context, fe Fetcher, f Facts, o Options, url, cwd string, data []byte) error {
	switch r.Kind {
	case KindPXELinux:
		return r.fromConfig(ctx, fe, f, o, url, cwd, data)
	case KindINS:
		ins, err := ParseINS(url, data)
		if err != nil {
			return err
		}
		r.INS = ins
		r.Boot, err = ins.Boot(ctx, fe, url)
		return err
	case KindIPXE:
		s, err := ParseIPXE(url, data, f)
		if err != nil {
			return err
		}
		r.IPXE, r.Boot = s, s.Resolve(url)
		return nil
	}
	r.Boot = Boot{Kernel: Source{Name: f.Bootfile, URL: url}}
	return nil
}

// fromConfig loads, selects and resolves a pxelinux config.
func (r *Result) fromConfig(ctx context.Context, fe Fetcher, f Facts, o Options, url, cwd string, data []byte) error {
	c, err := Load(ctx, fe, url, cwd, data)
	r.Config = c
	if err != nil {
		return err
	}
	s, err := Select(c, o.Loadparm)
	if err != nil {
		return err
	}
	r.Selection = s
	r.Boot, err = Resolve(c, s, f)
	return err
}

// stepFetcher reports the fetches a config or .INS file causes (INCLUDE, parmfile,
// initrd.addrsize) as steps.
type stepFetcher struct {
	next Fetcher
	step func(Step)
}

// Fetch implements Fetcher.Fetch.
func (s *stepFetcher) Fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	data, err := s.next.Fetch(ctx, url, limit)
	s.step(Step{What: "referenced file", URL: url, Size: len(data), Err: err})
	return data, err
}
