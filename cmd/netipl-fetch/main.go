// Command netipl-fetch runs netipl's protocol clients (netstack/tftp, netstack/httpfetch, netstack/dns,
// netstack/dhcpv4, netstack/dhcpv6) over the host's own sockets, to test them against real servers and to measure
// them (bench/protocols.sh).
//
//	netipl-fetch [flags] tftp://server[:port]/file
//	netipl-fetch [flags] http[s]://server[:port]/path
//	netipl-fetch -dhcp IFACE [-boot]      DHCPv4 on IFACE (root), print the lease, optionally fetch the boot file
//	netipl-fetch -dhcp6 IFACE [-stateful] DHCPv6 on IFACE (root), print the lease
//
// The last line of a fetch is machine-readable:
//
//	fetched 209715200 bytes in 1.234s: 162.07 MB/s (tftp blksize 1428 window 1 retransmits 0)
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"netipl/netstack/dhcpv4"
	"netipl/netstack/dhcpv6"
	"netipl/netstack/dns"
	"netipl/netstack/httpfetch"
	"netipl/netstack/tftp"
)

type options struct {
	out          string
	blockSize    int
	window       int
	noTsize      bool
	maxSize      int64
	cacert       string
	builtinRoots bool
	dnsServer    string
	quiet        bool
	dhcpIface    string
	dhcp6Iface   string
	stateful     bool
	boot         bool
	timeout      time.Duration
	cpuprofile   string
}

func main() {
	var o options
	flag.StringVar(&o.out, "o", "", "write the file here (default: discard, for measurements)")
	flag.IntVar(&o.blockSize, "blksize", 0, "TFTP blksize to ask for (0: 1428, 512: no option)")
	flag.IntVar(&o.window, "window", 0, "TFTP windowsize to ask for (0 or 1: lock-step)")
	flag.BoolVar(&o.noTsize, "no-tsize", false, "do not ask for tsize")
	flag.Int64Var(&o.maxSize, "max", 0, "refuse files larger than this many bytes (0: no limit)")
	flag.StringVar(&o.cacert, "cacert", "", "PEM file of CAs for HTTPS (default: the system pool)")
	flag.BoolVar(&o.builtinRoots, "builtin-roots", false, "use the CA bundle compiled into netipl for HTTPS")
	flag.StringVar(&o.dnsServer, "dns", "", "DNS server for names (default: nameservers in /etc/resolv.conf)")
	flag.BoolVar(&o.quiet, "q", false, "no progress lines")
	flag.StringVar(&o.dhcpIface, "dhcp", "", "run the DHCPv4 client on this interface (root)")
	flag.StringVar(&o.dhcp6Iface, "dhcp6", "", "run the DHCPv6 client on this interface (root)")
	flag.BoolVar(&o.stateful, "stateful", false, "DHCPv6: ask for an address (IA_NA)")
	flag.BoolVar(&o.boot, "boot", false, "DHCPv4: fetch the boot file by TFTP after the lease")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the fetch here")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: netipl-fetch [flags] URL | -dhcp IFACE [-boot] | -dhcp6 IFACE [-stateful]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, o.timeout)
	defer cancelT()

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "netipl-fetch: %v\n", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	switch {
	case o.dhcpIface != "":
		err = runDHCPv4(ctx, &o)
	case o.dhcp6Iface != "":
		err = runDHCPv6(ctx, &o)
	case flag.NArg() == 1:
		err = fetch(ctx, &o, flag.Arg(0))
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "netipl-fetch: %v\n", err)
		os.Exit(1)
	}
}

// discard is an io.WriterAt that drops data (measurements without disk I/O).
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func output(o *options) (io.WriterAt, func() error, error) {
	if o.out == "" {
		return discard{}, func() error { return nil }, nil
	}
	f, err := os.Create(o.out)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func resolver(o *options) (*dns.Resolver, error) {
	r := &dns.Resolver{Listen: func() (net.PacketConn, error) { return net.ListenPacket("udp", ":0") }}
	if o.dnsServer != "" {
		a, err := netip.ParseAddr(o.dnsServer)
		if err != nil {
			return nil, fmt.Errorf("-dns %q: %w", o.dnsServer, err)
		}
		r.Servers = []netip.Addr{a}
		return r, nil
	}
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return r, nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				r.Servers = append(r.Servers, a)
			}
		}
		if len(f) >= 2 && f[0] == "search" {
			r.Search = append(r.Search, f[1:]...)
		}
	}
	return r, nil
}

func progressLine(o *options, received, size int64, done bool) {
	if o.quiet {
		return
	}
	if size > 0 {
		fmt.Fprintf(os.Stderr, "\r  %d / %d KBytes", received/1024, size/1024)
	} else {
		fmt.Fprintf(os.Stderr, "\r  %d KBytes", received/1024)
	}
	if done {
		fmt.Fprintln(os.Stderr)
	}
}

func fetch(ctx context.Context, o *options, raw string) error {
	u, err := dhcpv6.ParseBootURL(raw)
	if err != nil {
		return err
	}
	w, closeOut, err := output(o)
	if err != nil {
		return err
	}
	defer closeOut()
	var start time.Time // set right before the transfer, after name lookups and CA loading
	var n int64
	var detail string
	switch u.Scheme {
	case "tftp":
		addr := u.Addr
		if !addr.IsValid() {
			r, err := resolver(o)
			if err != nil {
				return err
			}
			addrs, err := r.LookupHost(ctx, u.Host)
			if err != nil {
				return err
			}
			addr = addrs[0]
		}
		c := &tftp.Client{
			Listen: listenTFTP,
			Options: tftp.Options{BlockSize: o.blockSize, WindowSize: o.window, NoTransferSize: o.noTsize, MaxSize: o.maxSize,
				Progress: func(p tftp.Progress) { progressLine(o, p.Received, p.Size, p.Done) }},
		}
		start = time.Now()
		res, err := c.Get(ctx, netip.AddrPortFrom(addr, u.Port), u.Path, w)
		if err != nil {
			return err
		}
		n = res.Size
		detail = fmt.Sprintf("tftp blksize %d window %d tsize %d retransmits %d timeouts %d duplicates %d out-of-order %d",
			res.BlockSize, res.WindowSize, res.TransferSize, res.Stats.Retransmits, res.Stats.Timeouts,
			res.Stats.Duplicates, res.Stats.OutOfOrder)
	default:
		r, err := resolver(o)
		if err != nil {
			return err
		}
		dialer := &net.Dialer{}
		c := &httpfetch.Client{
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if _, err := netip.ParseAddr(host); err != nil {
					addrs, err := r.LookupHost(ctx, host)
					if err != nil {
						return nil, err
					}
					addr = net.JoinHostPort(addrs[0].String(), port)
				}
				return dialer.DialContext(ctx, network, addr)
			},
			MaxSize:  o.maxSize,
			Progress: func(p httpfetch.Progress) { progressLine(o, p.Received, p.Size, p.Done) },
		}
		switch {
		case o.cacert != "":
			pem, err := os.ReadFile(o.cacert)
			if err != nil {
				return err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("-cacert %s: no certificate found", o.cacert)
			}
			c.RootCAs = pool
		case !o.builtinRoots:
			pool, err := x509.SystemCertPool()
			if err == nil {
				c.RootCAs = pool
			}
		}
		start = time.Now()
		res, err := c.Get(ctx, raw, w)
		if err != nil {
			return err
		}
		n = res.Size
		detail = fmt.Sprintf("http content-length %d redirects %d resumes %d restarts %d",
			res.ContentLength, res.Redirects, res.Resumes, res.Restarts)
	}
	d := time.Since(start)
	fmt.Printf("fetched %d bytes in %s: %.2f MB/s (%s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds()/1e6, detail)
	return nil
}

// listenTFTP opens a transfer socket with a large receive buffer (SO_RCVBUFFORCE as root, beyond rmem_max), so
// big windows of big blocks are not dropped by the host kernel.
func listenTFTP() (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
			}
		})
	}}
	return lc.ListenPacket(context.Background(), "udp", ":0")
}

// listenOn opens a UDP socket bound to addr on iface with SO_BROADCAST (DHCP before there is an address).
func listenOn(ctx context.Context, network, addr, iface string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			serr = unix.BindToDevice(int(fd), iface)
		})
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(ctx, network, addr)
}

func runDHCPv4(ctx context.Context, o *options) error {
	ifc, err := net.InterfaceByName(o.dhcpIface)
	if err != nil {
		return err
	}
	conn, err := listenOn(ctx, "udp4", "0.0.0.0:68", ifc.Name)
	if err != nil {
		return fmt.Errorf("socket on %s: %w", ifc.Name, err)
	}
	defer conn.Close()
	c := &dhcpv4.Client{Conn: conn, HWAddr: ifc.HardwareAddr, Progress: func(e dhcpv4.Event) {
		if !o.quiet {
			fmt.Fprintf(os.Stderr, "  dhcpv4: %s round %d server %v addr %v %s\n", e.Type, e.Round, e.Server, e.Addr, e.Text)
		}
	}}
	l, err := c.Acquire(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("address %v router %v dns %v server-id %v siaddr %v sname %q file %q opt66 %q opt209 %q opt210 %q lease %v\n",
		l.Addr, l.Router, l.DNS, l.ServerID, l.NextServer, l.ServerName, l.BootFile, l.TFTPServer, l.ConfigFile,
		l.PathPrefix, l.LeaseTime)
	r := &dns.Resolver{Servers: l.DNS, Listen: func() (net.PacketConn, error) { return net.ListenPacket("udp4", ":0") }}
	if l.DomainName != "" {
		r.Search = []string{l.DomainName}
	}
	bs, bsErr := l.BootServer(ctx, r.LookupHost)
	if bsErr == nil {
		fmt.Printf("boot server %v (%s)\n", bs.Addr, bs.Source)
	} else {
		fmt.Printf("boot server: %v\n", bsErr)
	}
	if o.boot && bsErr == nil && l.BootFile != "" {
		// The host interface needs the leased address for the transfer; netipl-fetch does not configure it.
		if err := fetch(ctx, o, fmt.Sprintf("tftp://%s/%s", bs.Addr, l.BootFile)); err != nil {
			fmt.Fprintf(os.Stderr, "netipl-fetch: %v\n", err)
		}
	}
	return c.Release(l)
}

func runDHCPv6(ctx context.Context, o *options) error {
	ifc, err := net.InterfaceByName(o.dhcp6Iface)
	if err != nil {
		return err
	}
	conn, err := listenOn(ctx, "udp6", "[::]:546", ifc.Name)
	if err != nil {
		return fmt.Errorf("socket on %s: %w", ifc.Name, err)
	}
	defer conn.Close()
	c := &dhcpv6.Client{Conn: conn, HWAddr: ifc.HardwareAddr, Stateful: o.stateful, Zone: ifc.Name,
		Progress: func(e dhcpv6.Event) {
			if !o.quiet {
				fmt.Fprintf(os.Stderr, "  dhcpv6: %s round %d %s\n", e.Type, e.Round, e.Text)
			}
		}}
	l, err := c.Acquire(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("address %v dns %v search %v boot-url %q boot-params %q\n", l.Addr, l.DNS, l.DomainSearch, l.BootURL, l.BootParams)
	return nil
}
