package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"netipl/pxecfg"
)

const explainUsage = `usage: netipl explain -root DIR|URL [flags]

Shows what netipl would boot: the names it probes with their results, the config chosen, every
entry, and the exact kernel, initrd list and command line (or LOCALBOOT).

-root is the boot server's tree: a local directory (served as if a TFTP and HTTP server at
-server, and at each of -hosts, had it as its root), or an http(s):// URL (the same mapping, over
HTTP), or a tftp://host[:port]/ URL (a real TFTP server, read with netipl's TFTP client). Other
http(s):// and tftp:// URLs named by configs are fetched over the network.

flags:
`

// explain implements "netipl explain".
func explain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, explainUsage); fs.PrintDefaults() }
	var (
		root     = fs.String("root", "", "boot server tree: `DIR` or URL (required)")
		server   = fs.String("server", "", "boot server address (DHCP next-server / option 66); default: the -root URL's host, else 10.0.2.2")
		hosts    = fs.String("hosts", "", "more host names served from a -root directory, comma-separated")
		bootfile = fs.String("bootfile", "", "DHCP option 67 (boot file name or URL)")
		opt209   = fs.String("opt209", "", "DHCP option 209 (PXELINUX configfile)")
		opt210   = fs.String("opt210", "", "DHCP option 210 (PXELINUX pathprefix)")
		mac      = fs.String("mac", "52:54:00:12:34:56", "boot NIC MAC address")
		ip       = fs.String("ip", "10.0.2.15", "client IP address (IPv4 or IPv6)")
		mask     = fs.String("mask", "", "IPv4 netmask (for IPAPPEND 1)")
		gateway  = fs.String("gateway", "", "router (for IPAPPEND 1)")
		uuid     = fs.String("uuid", "", "VM UUID (qemu -uuid), 8-4-4-4-12 hex")
		loadparm = fs.String("loadparm", "", "LOADPARM: entry number, label, or PROMPT")
		timeout  = fs.Duration("timeout", 10*time.Second, "per-file network timeout")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *root == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var f pxecfg.Facts
	var err error
	f.Bootfile, f.ConfigFile, f.PathPrefix = *bootfile, *opt209, *opt210
	bad := func(what string, err error) int {
		fmt.Fprintf(stderr, "netipl explain: %s: %v\n", what, err)
		return 2
	}
	if *mac != "" {
		if f.MAC, err = net.ParseMAC(*mac); err != nil {
			return bad("-mac", err)
		}
	}
	for _, a := range []struct {
		flag string
		val  string
		dst  *netip.Addr
	}{{"-ip", *ip, &f.IP}, {"-mask", *mask, &f.Mask}, {"-gateway", *gateway, &f.Gateway}} {
		if a.val != "" {
			if *a.dst, err = netip.ParseAddr(a.val); err != nil {
				return bad(a.flag, err)
			}
		}
	}
	if f.UUID, err = pxecfg.ParseUUID(*uuid); err != nil {
		return bad("-uuid", err)
	}

	remote := newNetFetcher(*timeout)
	var fe pxecfg.Fetcher
	if scheme, host, _, err := pxecfg.SplitURL(*root); err == nil {
		f.Server = firstNonEmpty(*server, strings.Trim(host, "[]"))
		if scheme == "tftp" {
			fe = remote
		} else {
			fe = &urlRoot{root: strings.TrimSuffix(*root, "/") + "/", server: f.Server, next: remote}
		}
	} else {
		st, err := os.Stat(*root)
		if err != nil || !st.IsDir() {
			return bad("-root", fmt.Errorf("%q is neither a directory nor a tftp/http/https URL", *root))
		}
		f.Server = firstNonEmpty(*server, "10.0.2.2")
		served := []string{hostPart(f.Server)}
		for _, h := range strings.Split(*hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				served = append(served, h)
			}
		}
		fe = &pxecfg.FSFetcher{FS: os.DirFS(*root), Hosts: served, Next: remote}
	}

	fmt.Fprintf(stdout, "facts: server=%s bootfile=%q opt209=%q opt210=%q mac=%s ip=%s uuid=%q loadparm=%q\n",
		f.Server, f.Bootfile, f.ConfigFile, f.PathPrefix, f.MAC, f.IP, pxecfg.FormatUUID(f.UUID), *loadparm)
	ctx := context.Background()
	r, err := pxecfg.Discover(ctx, fe, f, pxecfg.Options{Loadparm: *loadparm})
	if r == nil {
		fmt.Fprintf(stdout, "error: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, r.Text(err))
	if err != nil {
		return 1
	}
	return 0
}

// hostPart formats a server for matching URL hosts (IPv6 in brackets).
func hostPart(s string) string {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return "[" + s + "]"
	}
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// urlRoot serves URLs on the boot server from an HTTP tree: tftp://server/name and
// http(s)://server/name become root + name; everything else goes to next.
type urlRoot struct {
	root, server string
	next         pxecfg.Fetcher
}

var _ pxecfg.Fetcher = (*urlRoot)(nil)

// Fetch implements pxecfg.Fetcher.Fetch.
func (u *urlRoot) Fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	_, host, name, err := pxecfg.SplitURL(url)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(host, hostPart(u.server)) && !strings.HasPrefix(url, u.root) {
		data, err := u.next.Fetch(ctx, u.root+strings.TrimLeft(name, "/"), limit)
		if err != nil && !errors.Is(err, pxecfg.ErrNotFound) {
			return nil, fmt.Errorf("%s (as %s): %w", url, u.root+strings.TrimLeft(name, "/"), err)
		}
		return data, err
	}
	return u.next.Fetch(ctx, url, limit)
}
