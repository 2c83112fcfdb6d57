package pxecfg

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// .INS files (HMC "load from removable media or server", QEMU's image, distro trees:
// RHEL/Fedora generic.ins, Ubuntu ubuntu.ins, SLES suse.ins). Each line is "name address":
// load file name at that physical address. The first line may be a "* title" header; later
// "*" lines are comments. The s390 Linux parmarea gives the addresses their meaning
// (arch/s390 boot/ipl_data and setup: parmarea at 0x10400).
const (
	parmArea        = 0x10400 // start of the kernel parmarea
	parmInitrdStart = 0x10408 // INITRD_START, u64 big-endian
	parmInitrdSize  = 0x10410 // INITRD_SIZE, u64 big-endian
	parmCmdline     = 0x10480 // COMMAND_LINE
)

// MaxINSLines bounds the "name address" lines of one .INS file. Real ones have two to six; the
// bound keeps a hostile file from causing thousands of side-file fetches or initrds.
const MaxINSLines = 64

// INS is a parsed .INS file. The zero value has no lines.
type INS struct {
	// Title is the header line without "* "; "" for a header-less file (OpenShift's generic.ins).
	Title string
	Lines []INSLine
}

// INSLine is one "name address" line.
type INSLine struct {
	Name string
	Addr uint64
	Pos  string
}

// parseAddr reads an .INS address: "0x"/"0X" hex, else decimal (SLOF's atol: no octal).
func parseAddr(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// ParseINS reads an .INS file. name is used in positions. Errors name the line.
func ParseINS(name string, data []byte) (*INS, error) {
	file := displayName(name)
	ins := &INS{}
	for i, raw := range strings.Split(string(data), "\n") {
		pos := file + ":" + strconv.Itoa(i+1)
		line := strings.Trim(raw, " \t\r")
		if line == "" {
			continue
		}
		if line[0] == '*' {
			if i == 0 {
				ins.Title = strings.TrimSpace(line[1:])
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("%s: %q has no load address", pos, line)
		}
		if len(f) > 2 {
			return nil, fmt.Errorf("%s: %q: want \"file address\"", pos, line)
		}
		a, err := parseAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s: load address %q: not a number", pos, f[1])
		}
		if len(ins.Lines) == MaxINSLines {
			return nil, fmt.Errorf("%s: more than %d \"file address\" lines", pos, MaxINSLines)
		}
		ins.Lines = append(ins.Lines, INSLine{Name: f[0], Addr: a, Pos: pos})
	}
	if len(ins.Lines) == 0 {
		return nil, fmt.Errorf("%s: no \"file address\" lines", file)
	}
	return ins, nil
}

// looksLikeINS reports whether data is a header-less .INS file: short text whose every
// non-blank, non-"*" line is "name number" and where one line loads at address 0.
func looksLikeINS(data []byte) bool {
	if len(data) > 64<<10 {
		return false
	}
	for _, c := range data {
		if c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	ins, err := ParseINS("", data)
	if err != nil {
		return false
	}
	for _, l := range ins.Lines {
		if l.Addr == 0 {
			return true
		}
	}
	return false
}

// Boot turns the .INS lines into a Boot, fetching the small side files through f. Names
// resolve against the .INS file's directory (Alt: from the server root, as QEMU reads them).
//   - the file at address 0 is the kernel;
//   - a file at 0x10480 (COMMAND_LINE) is the parmfile: its lines, trimmed, joined with spaces,
//     are the command line;
//   - files inside the parmarea [0x10400, 0x10480) (initrd.addrsize: 16 bytes at 0x10408;
//     initrd.off/initrd.siz: 8 bytes at 0x10408/0x10410 or 4 bytes at 0x1040c/0x10414) are
//     overlaid on a model of the parmarea, which then gives INITRD_START and INITRD_SIZE;
//   - every other file is an initrd, in address order; INITRD_START, when given, must be the
//     address of one of them, which goes first.
//
// The addresses only give meaning: the loader places kernel and initrds by its own memory plan.
func (ins *INS) Boot(ctx context.Context, f Fetcher, insURL string) (Boot, error) {
	dir := dirOf(insURL)
	var b Boot
	var area [parmCmdline - parmArea]byte
	var haveArea bool
	var data []INSLine
	var kernel, parm *INSLine
	for i := range ins.Lines {
		l := &ins.Lines[i]
		switch {
		case l.Addr == 0:
			if kernel != nil {
				return b, fmt.Errorf("%s: %s: a second file at address 0", l.Pos, l.Name)
			}
			kernel = l
		case l.Addr == parmCmdline:
			parm = l
		case l.Addr >= parmArea && l.Addr < parmCmdline:
			body, err := fetchSide(ctx, f, dir, l)
			if err != nil {
				return b, err
			}
			off := l.Addr - parmArea
			if uint64(len(body)) > uint64(len(area))-off {
				return b, fmt.Errorf("%s: %s: %d bytes at %#x run past the parmarea into the command line", l.Pos, l.Name, len(body), l.Addr)
			}
			copy(area[off:], body)
			haveArea = true
		case l.Addr < parmArea+0x80:
			return b, fmt.Errorf("%s: %s: address %#x is inside the kernel's own image", l.Pos, l.Name, l.Addr)
		default:
			data = append(data, *l)
		}
	}
	if kernel == nil {
		return b, fmt.Errorf("%s: no file at address 0 (the kernel)", displayName(insURL))
	}
	b.Label = ins.Title
	b.Kernel = source(dir, kernel.Name)
	if parm != nil {
		body, err := fetchSide(ctx, f, dir, parm)
		if err != nil {
			return b, err
		}
		b.Cmdline, b.HasCmdline = ParmfileCmdline(body), true
	}
	sort.SliceStable(data, func(i, j int) bool { return data[i].Addr < data[j].Addr })
	if haveArea {
		start := binary.BigEndian.Uint64(area[parmInitrdStart-parmArea:])
		b.InitrdSize = binary.BigEndian.Uint64(area[parmInitrdSize-parmArea:])
		if start != 0 {
			k := -1
			for i, l := range data {
				if l.Addr == start {
					k = i
				}
			}
			if k < 0 {
				return b, fmt.Errorf("%s: INITRD_START %#x: no file loads there", displayName(insURL), start)
			}
			data[0], data[k] = data[k], data[0]
		}
	}
	for _, l := range data {
		b.Initrds = append(b.Initrds, source(dir, l.Name))
	}
	return b, nil
}

func fetchSide(ctx context.Context, f Fetcher, dir string, l *INSLine) ([]byte, error) {
	s := source(dir, l.Name)
	body, err := f.Fetch(ctx, s.URL, SideFileLimit)
	if err != nil && s.Alt != "" {
		if b2, err2 := f.Fetch(ctx, s.Alt, SideFileLimit); err2 == nil {
			return b2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", l.Pos, s.URL, err)
	}
	return body, nil
}

// ParmfileCmdline turns a parmfile into a command line: each line trimmed of blanks and CR,
// empty lines dropped, the rest joined with single spaces (RHEL: "lines are concatenated").
func ParmfileCmdline(data []byte) string {
	var parts []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.Trim(l, " \t\r\x00"); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}
