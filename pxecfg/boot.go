package pxecfg

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// InitrdAlign is the padding between initrds: every initrd but the last is zero-padded to a
// multiple of it, then the next one follows (syslinux's rule for "INITRD a,b,c"); the kernel
// sees one initrd, their concatenation.
const InitrdAlign = 4096

// InitrdLayout places initrds of the given sizes one after another as syslinux does: every
// initrd but the last is zero-padded to a multiple of InitrdAlign. It returns each initrd's
// offset from the start of the combined image and the combined size (the last one unpadded).
func InitrdLayout(sizes []int64) (offsets []int64, total int64) {
	for i, n := range sizes {
		offsets = append(offsets, total)
		total += n
		if i < len(sizes)-1 {
			total = (total + InitrdAlign - 1) &^ (InitrdAlign - 1)
		}
	}
	return offsets, total
}

// Source is one file to fetch. URL is where PXELINUX's rules put it; Alt, when not empty, is
// QEMU's reading of the same name (verbatim from the server root), to try when URL is not found.
// Name is the name as written.
type Source struct {
	Name, URL, Alt string
}

func (s Source) String() string {
	if s.Alt != "" {
		return s.URL + " (else " + s.Alt + ")"
	}
	return s.URL
}

// source resolves a name against cwd.
func source(cwd, name string) Source {
	u, alt := resolve(cwd, name)
	return Source{Name: name, URL: u, Alt: alt}
}

// Boot is what to boot: a pure value, computed before anything is loaded. The zero value
// means nothing to boot.
type Boot struct {
	// Label names the entry ("" for a bare kernel boot file).
	Label string
	// LocalBoot means "return to the firmware": LOCALBOOT or ONTIMEOUT local. The loader
	// gives up cleanly so the next boot device (QEMU ≥ 9.2 bootindex chain) is tried.
	// LocalBootType is LOCALBOOT's argument.
	LocalBoot     bool
	LocalBootType int
	// Kernel is the kernel image; Initrds are concatenated in order (see InitrdAlign).
	Kernel  Source
	Initrds []Source
	// Cmdline is the final kernel command line. HasCmdline is false for a bare kernel boot
	// file, whose own built-in command line (parmarea at 0x10480) is then left alone.
	Cmdline    string
	HasCmdline bool
	// InitrdSize, when not zero, is the size an .INS initrd.addrsize/initrd.siz file declares.
	InitrdSize uint64
}

// ErrNoKernel means the chosen entry has no KERNEL/LINUX line.
var ErrNoKernel = errors.New("no KERNEL")

// SysAppend bits (syslinux doc/syslinux.txt, SYSAPPEND). Higher bits (CPU, DMI strings,
// FSUUID) describe PC firmware and are not generated.
const (
	SysAppendIP     = 1 // ip=<client>:<server>:<gateway>:<netmask>
	SysAppendBootIf = 2 // BOOTIF=01-aa-bb-cc-dd-ee-ff
	SysAppendUUID   = 4 // SYSUUID=<uuid>
)

// sysAppend returns the strings SYSAPPEND bits add, in bit order.
func sysAppend(bits int, f Facts) []string {
	var out []string
	if ip := f.IP.Unmap(); bits&SysAppendIP != 0 && ip.Is4() { // syslinux's ip= is IPv4 only
		zero := func(a netip.Addr) string {
			if !a.IsValid() {
				return "0.0.0.0"
			}
			return a.String()
		}
		srv := f.Server
		if a, err := netip.ParseAddr(srv); err != nil || !a.Is4() {
			srv = "0.0.0.0"
		}
		out = append(out, "ip="+ip.String()+":"+srv+":"+zero(f.Gateway)+":"+zero(f.Mask))
	}
	if bits&SysAppendBootIf != 0 && len(f.MAC) > 0 {
		out = append(out, "BOOTIF="+macName(f.MAC))
	}
	if bits&SysAppendUUID != 0 {
		if u := FormatUUID(f.UUID); u != "" {
			out = append(out, "SYSUUID="+u)
		}
	}
	return out
}

// joinArgs joins non-empty command-line pieces with single spaces.
func joinArgs(parts ...string) string {
	var b []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			b = append(b, p)
		}
	}
	return strings.Join(b, " ")
}

// initrdArg returns the file list of the last "initrd=" option in a command line.
func initrdArg(cmdline string) []string {
	var list []string
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, "initrd="); ok {
			list = splitList(v)
		}
	}
	return list
}

// Resolve turns a selection into a Boot: paths resolved against the config's cwd, the
// command line built as syslinux does (the entry's APPEND, else the global one; then the
// selection's extra options; then the SYSAPPEND/IPAPPEND strings), initrds from INITRD, else
// from the last initrd= in the command line. An "initrd=" written in APPEND stays in the
// command line (Linux ignores it on s390x); none is added for INITRD.
func Resolve(c *Config, s Selection, f Facts) (Boot, error) {
	e := s.Entry
	if e == nil {
		return Boot{}, fmt.Errorf("%s: no entry selected", displayName(c.Name))
	}
	b := Boot{Label: e.Label}
	if e.LocalBoot {
		b.LocalBoot, b.LocalBootType = true, e.LocalBootType
		return b, nil
	}
	if e.Kernel == "" {
		return b, fmt.Errorf("%s: LABEL %s: %w", e.Pos, e.Label, ErrNoKernel)
	}
	switch {
	case isModule(e.Kernel) || e.KernelKeyword == "com32" || e.KernelKeyword == "comboot":
		return b, fmt.Errorf("%s: LABEL %s: %s is a syslinux module, not a Linux kernel", e.Pos, e.Label, e.Kernel)
	case e.KernelKeyword == "config":
		return b, fmt.Errorf("%s: LABEL %s: CONFIG (switch to another config file) is not supported", e.Pos, e.Label)
	case e.KernelKeyword != "kernel" && e.KernelKeyword != "linux":
		return b, fmt.Errorf("%s: LABEL %s: %s images cannot boot on s390x", e.Pos, e.Label, strings.ToUpper(e.KernelKeyword))
	}
	b.Kernel = source(c.Cwd, e.Kernel)
	appendText := c.Append
	if e.HasAppend {
		appendText = e.Append
	}
	bits := c.IPAppend
	if e.HasIPAppend {
		bits = e.IPAppend
	}
	args := []string{appendText, s.Args}
	args = append(args, sysAppend(bits, f)...)
	b.Cmdline, b.HasCmdline = joinArgs(args...), true
	list := e.Initrd
	if list == nil {
		list = initrdArg(b.Cmdline)
	}
	for _, n := range list {
		b.Initrds = append(b.Initrds, source(c.Cwd, n))
	}
	return b, nil
}
