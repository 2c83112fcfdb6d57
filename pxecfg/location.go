package pxecfg

import (
	"fmt"
	"net/netip"
	"strings"
)

// Locations. Every file pxecfg names is a URL string "scheme://host/name". For tftp:// the
// TFTP file name is everything after the slash that ends the host (RFC 3617), so
// "tftp://10.0.2.2//pxelinux.cfg/default" asks for "/pxelinux.cfg/default" exactly as QEMU's
// image does when the boot file is "/". For http(s):// the request path is "/" + name.
// pxecfg joins strings and never cleans "." or ".." or doubled slashes: the server decides
// what names mean, as with PXELINUX.

// schemes pxecfg accepts wherever a path may stand.
var schemes = []string{"tftp://", "http://", "https://"}

// isURL reports whether s starts with a scheme pxecfg fetches.
func isURL(s string) bool {
	ls := strings.ToLower(s)
	for _, p := range schemes {
		if strings.HasPrefix(ls, p) {
			return true
		}
	}
	return false
}

// SplitURL splits a URL into its lower-case scheme, its host (with any port, IPv6 literals in
// brackets) and the name after the slash that ends the host. It is the one place fetchers learn
// what a URL means: the TFTP file name is name; the HTTP path is "/" + name.
func SplitURL(u string) (scheme, host, name string, err error) {
	i := strings.Index(u, "://")
	if i <= 0 || !isURL(u) {
		return "", "", "", fmt.Errorf("url %q: scheme is not tftp, http or https", u)
	}
	scheme = strings.ToLower(u[:i])
	rest := u[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		host, name = rest, ""
	} else {
		host, name = rest[:j], rest[j+1:]
	}
	if host == "" {
		return "", "", "", fmt.Errorf("url %q: no host", u)
	}
	return scheme, host, name, nil
}

// rootOf returns "scheme://host/" for a URL.
func rootOf(u string) string {
	s, h, _, err := SplitURL(u)
	if err != nil {
		return u
	}
	return s + "://" + h + "/"
}

// dirOf returns the URL up to and including the last slash of its name, or the root.
func dirOf(u string) string {
	s, h, name, err := SplitURL(u)
	if err != nil {
		return u
	}
	i := strings.LastIndexByte(name, '/')
	return s + "://" + h + "/" + name[:i+1]
}

// hostURL formats an address or name as the host part of a URL: IPv6 in brackets, an
// IPv4-mapped IPv6 address as the plain IPv4 address ("tftp://::ffff:a.b.c.d/" is no URL).
func hostURL(h string) string {
	a, err := netip.ParseAddr(h)
	switch {
	case err != nil:
		return h
	case a.Is4In6():
		return a.Unmap().String()
	case a.Is6():
		return "[" + a.String() + "]"
	}
	return h
}

// resolve turns a name written in a config, .INS file, DHCP option or iPXE script into a URL,
// relative to cwd (a directory URL ending in "/"), by PXELINUX's rules with one deliberate change:
//   - a URL (tftp://, http://, https://) stands as written;
//   - "::name" is name on the same server, with no prefix;
//   - "host::name" is name on the TFTP server host;
//   - "/name" is relative to the server root (PXELINUX 5 would prepend cwd; u-root, Cobbler and
//     Foreman configs mean the root, and with the usual root cwd both agree);
//   - anything else is relative to cwd.
//
// alt is QEMU's reading of the same name (verbatim from the server root) when that differs;
// the loader tries it when url is not found, so configs written for QEMU's image keep working.
func resolve(cwd, name string) (url, alt string) {
	if isURL(name) {
		return name, ""
	}
	root := rootOf(cwd)
	if strings.HasPrefix(name, "::") {
		return joinRoot(root, name[2:]), ""
	}
	if i := strings.Index(name, "::"); i > 0 && !strings.ContainsAny(name[:i], "/") {
		return "tftp://" + hostURL(name[:i]) + "/" + name[i+2:], ""
	}
	if strings.HasPrefix(name, "/") {
		url = joinRoot(root, name)
	} else {
		url = cwd + name
	}
	if q := joinRoot(root, name); q != url {
		alt = q
	}
	return url, alt
}

// joinRoot appends a name to a server root: TFTP keeps the name verbatim (a leading slash is
// part of the TFTP file name), HTTP drops leading slashes.
func joinRoot(root, name string) string {
	if strings.HasPrefix(root, "tftp://") {
		return root + name
	}
	return root + strings.TrimLeft(name, "/")
}

// displayName is a short name for messages: the name part of a URL on the boot server, else the URL.
func displayName(u string) string {
	if _, _, name, err := SplitURL(u); err == nil && strings.HasPrefix(u, "tftp://") {
		return name
	}
	return u
}
