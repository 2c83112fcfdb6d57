package pxecfg

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Facts are what DHCP and the machine tell the loader. The zero value has no server and
// cannot be looked up; every other field may be left zero.
type Facts struct {
	// Server is the boot server (TFTP next-server, option 66 or siaddr): an address or a name.
	Server string
	// Bootfile is option 67 (or the BOOTP file field, or the DHCPv6 boot-file URL): a
	// TFTP name on Server, or a URL.
	Bootfile string
	// ConfigFile is option 209 (PXELINUX configfile), PathPrefix option 210 (pathprefix).
	ConfigFile, PathPrefix string

	// MAC is the boot NIC's Ethernet address.
	MAC net.HardwareAddr
	// IP is the client address; Mask its netmask (IPv4) and Gateway the router (option 3).
	IP, Mask, Gateway netip.Addr
	// UUID is the VM UUID (STSI 3.2.2); all zero means none, as in QEMU.
	UUID [16]byte
}

// FormatUUID writes a UUID the way PXELINUX and QEMU name config files: lower-case hex in
// 8-4-4-4-12 groups. It returns "" for the all-zero UUID.
func FormatUUID(u [16]byte) string {
	if u == [16]byte{} {
		return ""
	}
	h := fmt.Sprintf("%x", u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ParseUUID reads a UUID in 8-4-4-4-12 form (either case); "" gives the zero UUID.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if s == "" {
		return u, nil
	}
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("uuid %q: want 8-4-4-4-12 hex digits", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("uuid %q: not hex", s)
	}
	return u, nil
}

// macName is "01-" (ARP hardware type Ethernet) and the MAC in lower-case hex with dashes.
func macName(mac net.HardwareAddr) string {
	return "01-" + strings.ReplaceAll(mac.String(), ":", "-")
}

// Candidate is one name the lookup tries, in order.
type Candidate struct {
	URL string
	// Why says which rule produced it: "option 209", "option 209 (QEMU placement)", "UUID",
	// "MAC", "IP", "default"; a "(QEMU placement)" suffix marks QEMU's reading of option 210.
	Why string
}

// Lookup is the outcome of the lookup rules: where relative names resolve and which
// config names to try, in order.
type Lookup struct {
	// Bootfile is the boot file as a URL, or "" when option 67 is empty or ends in "/"
	// (then there is nothing to load directly and only the candidates are tried).
	Bootfile string
	// Cwd is PXELINUX's current directory: option 210, else the boot file's directory.
	// Names in configs resolve against it (see resolve).
	Cwd string
	// Candidates are the config files to try, the first one that loads wins.
	Candidates []Candidate
}

// ErrNoServer means DHCP named neither a boot server nor a URL.
var ErrNoServer = errors.New("no boot server (DHCP gave no next-server, option 66 or URL)")

// Look applies the PXELINUX lookup rules (with QEMU's variants; see the package doc) to f.
func Look(f Facts) (Lookup, error) {
	var l Lookup
	root := ""
	if f.Server != "" {
		root = "tftp://" + hostURL(f.Server) + "/"
	}
	bootURL := ""
	switch {
	case isURL(f.Bootfile):
		bootURL = f.Bootfile
	case root != "":
		bootURL, _ = resolve(root, f.Bootfile) // a plain name stays verbatim, as QEMU sends it
	}
	if bootURL == "" {
		if root == "" && !isURL(f.PathPrefix) {
			return l, ErrNoServer
		}
		bootURL = root
	}
	if f.Bootfile != "" && !strings.HasSuffix(f.Bootfile, "/") {
		l.Bootfile = bootURL
	}

	// cfgQEMU is where QEMU's image looks: option 210 verbatim, else the boot file's
	// directory + "pxelinux.cfg/". cfgRFC is PXELINUX's: cwd + "pxelinux.cfg/".
	var cfgRFC, cfgQEMU string
	if f.PathPrefix != "" {
		p := f.PathPrefix
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		if isURL(p) {
			cfgQEMU = p
		} else {
			if root == "" {
				return l, ErrNoServer
			}
			cfgQEMU, _ = resolve(root, p)
		}
		if last := strings.TrimSuffix(p, "/"); last == "pxelinux.cfg" || strings.HasSuffix(last, "/pxelinux.cfg") {
			// 210 already names the config directory (how QEMU users set it): both
			// readings agree, and the prefix for other names is its parent.
			l.Cwd = strings.TrimSuffix(cfgQEMU[:len(cfgQEMU)-1], "pxelinux.cfg")
			cfgRFC = cfgQEMU
		} else {
			l.Cwd = cfgQEMU
			cfgRFC = l.Cwd + "pxelinux.cfg/"
		}
	} else {
		l.Cwd = dirOf(bootURL)
		cfgRFC = l.Cwd + "pxelinux.cfg/"
		cfgQEMU = cfgRFC
	}

	add := func(url, why string) {
		for _, c := range l.Candidates {
			if c.URL == url {
				return
			}
		}
		l.Candidates = append(l.Candidates, Candidate{URL: url, Why: why})
	}
	both := func(name, why string) {
		add(cfgRFC+name, why)
		add(cfgQEMU+name, why+" (QEMU placement)")
	}
	if f.ConfigFile != "" {
		u, _ := resolve(l.Cwd, f.ConfigFile)
		add(u, "option 209")
		if !isURL(f.ConfigFile) {
			add(cfgQEMU+f.ConfigFile, "option 209 (QEMU placement)")
		}
	}
	if s := FormatUUID(f.UUID); s != "" {
		both(s, "UUID")
	}
	if len(f.MAC) > 0 {
		both(macName(f.MAC), "MAC")
	}
	if ip := f.IP.Unmap(); ip.Is4() {
		b := ip.As4()
		h := fmt.Sprintf("%02X%02X%02X%02X", b[0], b[1], b[2], b[3])
		for n := 8; n >= 1; n-- {
			both(h[:n], "IP")
		}
	}
	both("default", "default")
	return l, nil
}
