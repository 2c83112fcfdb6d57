package dhcpv6

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// BootURL is a parsed boot-file URL (DHCPv6 option 59, RFC 5970 §3.1; also usable for a DHCPv4 file name that is
// a URL). The zero BootURL is not valid.
type BootURL struct {
	Scheme string     // "tftp", "http" or "https"
	Host   string     // a name, or an address without brackets
	Addr   netip.Addr // Host as an address, or invalid when Host is a name
	Port   uint16     // explicit or the scheme's default (69, 80, 443)
	Path   string     // TFTP: the file name relative to the server root (one leading "/" removed); HTTP: the path
	URL    string     // the input
}

var defaultPorts = map[string]uint16{"tftp": 69, "http": 80, "https": 443}

// ParseBootURL checks and splits a boot-file URL. Unlike QEMU's s390-netboot, which only accepts
// tftp://[v6addr]/file and tftp://host.domain.tld/file, any host name, IPv4 or IPv6 literal, port and the http and
// https schemes are accepted. Errors quote the input: `boot URL "ftp://x/y": unsupported scheme "ftp"`.
func ParseBootURL(s string) (BootURL, error) {
	bad := func(why string, args ...any) (BootURL, error) {
		return BootURL{}, fmt.Errorf("boot URL %q: %s", s, fmt.Sprintf(why, args...))
	}
	if strings.ContainsAny(s, " \t\r\n\x00") {
		return bad("contains blanks or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("%v", err.(*url.Error).Err)
	}
	scheme := strings.ToLower(u.Scheme)
	port, ok := defaultPorts[scheme]
	if !ok {
		return bad("unsupported scheme %q", u.Scheme)
	}
	if u.User != nil {
		return bad("user information not supported")
	}
	host := u.Hostname()
	if host == "" {
		return bad("missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return bad("bad port %q", p)
		}
		port = uint16(n)
	}
	b := BootURL{Scheme: scheme, Host: host, Port: port, URL: s}
	if a, err := netip.ParseAddr(host); err == nil {
		if strings.HasPrefix(u.Host, "[") != a.Is6() {
			return bad("IPv6 address must be in brackets")
		}
		b.Addr = a
	} else if strings.HasPrefix(u.Host, "[") {
		return bad("bad IPv6 address %q", host)
	}
	switch scheme {
	case "tftp":
		if u.RawQuery != "" || u.Fragment != "" {
			return bad("query or fragment in a tftp URL")
		}
		b.Path = strings.TrimPrefix(u.Path, "/")
		if b.Path == "" {
			return bad("missing file name")
		}
	default:
		b.Path = u.RequestURI()
		if b.Path == "/" && !strings.HasSuffix(s, "/") {
			return bad("missing file name")
		}
	}
	return b, nil
}
