package pxecfg

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// IPXE is the minimal iPXE script subset (like u-root's): "kernel URL [args]" (also "chain"
// and "imgexec" with a kernel), "initrd URL" (repeatable, in order), "imgargs NAME args",
// "boot"; "dhcp", "ifopen", "echo", "sleep" and comments are accepted and ignored. Variables
// ${mac} ${ip} ${netmask} ${gateway} ${next-server} ${uuid} ${filename} are expanded;
// anything else (goto, iseq, menus, other variables) is an error, since guessing would boot
// the wrong thing.
type IPXE struct {
	Kernel  string
	Args    string
	Initrds []string
	Boot    bool // a "boot" command was seen
	Notes   []Note
}

// ParseIPXE reads an iPXE script ("#!ipxe" first line).
func ParseIPXE(name string, data []byte, f Facts) (*IPXE, error) {
	file := displayName(name)
	s := &IPXE{}
	vars := map[string]string{
		"next-server": f.Server, "filename": f.Bootfile, "uuid": FormatUUID(f.UUID),
	}
	if len(f.MAC) > 0 {
		vars["mac"] = f.MAC.String()
	}
	for k, a := range map[string]netip.Addr{"ip": f.IP, "netmask": f.Mask, "gateway": f.Gateway} {
		if a.IsValid() {
			vars[k] = a.String()
		}
	}
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		pos := file + ":" + strconv.Itoa(i+1)
		line := strings.Trim(raw, " \t\r")
		if i == 0 || line == "" || line[0] == '#' || line[0] == ':' {
			continue
		}
		line, err := expandVars(line, vars)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pos, err)
		}
		cmd, rest := splitWord(line)
		words := stripOptions(rest)
		switch cmd {
		case "kernel", "chain", "imgexec", "imgload", "imgselect":
			if len(words) == 0 {
				return nil, fmt.Errorf("%s: %s without an image", pos, cmd)
			}
			s.Kernel, s.Args = words[0], strings.Join(words[1:], " ")
			if cmd == "chain" || cmd == "imgexec" {
				s.Boot = true
			}
		case "initrd", "module", "imgfetch":
			if len(words) == 0 {
				return nil, fmt.Errorf("%s: %s without an image", pos, cmd)
			}
			s.Initrds = append(s.Initrds, words[0])
		case "imgargs":
			if len(words) > 0 {
				s.Args = strings.Join(words[1:], " ")
			}
		case "boot":
			s.Boot = true
		case "dhcp", "ifopen", "ifconf", "echo", "sleep", "prompt":
		default:
			return nil, fmt.Errorf("%s: iPXE command %q is not supported", pos, cmd)
		}
		if s.Boot {
			break
		}
	}
	if s.Kernel == "" {
		return nil, fmt.Errorf("%s: no kernel command", file)
	}
	if !s.Boot {
		s.Notes = append(s.Notes, Note{Pos: file, Msg: "no boot command; booting the kernel anyway"})
	}
	return s, nil
}

// stripOptions drops iPXE "--name x"/"-n x"/"--name=x" style options before the image.
func stripOptions(rest string) []string {
	w := strings.Fields(rest)
	for len(w) > 0 && strings.HasPrefix(w[0], "-") {
		opt := w[0]
		w = w[1:]
		if !strings.Contains(opt, "=") && len(w) > 0 && (opt == "--name" || opt == "-n" || opt == "--timeout" || opt == "-t") {
			w = w[1:]
		}
	}
	return w
}

// expandVars replaces ${name} with its value.
func expandVars(s string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		v, ok := vars[name]
		if !ok || v == "" {
			return "", fmt.Errorf("iPXE variable ${%s} is not known here", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// Resolve turns the script into a Boot; names resolve against the script's directory.
func (s *IPXE) Resolve(scriptURL string) Boot {
	dir := dirOf(scriptURL)
	b := Boot{Kernel: source(dir, s.Kernel), Cmdline: s.Args, HasCmdline: true}
	for _, n := range s.Initrds {
		b.Initrds = append(b.Initrds, source(dir, n))
	}
	return b
}
