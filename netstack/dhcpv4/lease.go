package dhcpv4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	dhcp "github.com/insomniacslk/dhcp/dhcpv4"
)

// Field offsets of a BOOTP/DHCP message, RFC 2131 §2 figure 1.
const (
	offSname   = 44  // sname, 64 bytes
	offFile    = 108 // file, 128 bytes
	offCookie  = 236 // magic cookie
	lenSname   = 64
	lenFile    = 128
	headerSize = 236
)

// Option 52 values, RFC 2132 §9.3.
const (
	overloadFile  = 1
	overloadSname = 2
	overloadBoth  = 3
)

var magicCookie = []byte{99, 130, 83, 99}

// parseReply decodes a server message. A message without the magic cookie is a BOOTP reply (RFC 951): it is given
// an empty option list. Option overload (52) is resolved: the options found in file and/or sname are merged in and
// the overloaded fields are cleared.
func parseReply(b []byte) (m *dhcp.DHCPv4, bootp bool, err error) {
	if len(b) < headerSize {
		return nil, false, fmt.Errorf("message of %d bytes, shorter than the %d-byte header", len(b), headerSize)
	}
	if len(b) < offCookie+4 || !bytes.Equal(b[offCookie:offCookie+4], magicCookie) {
		fixed := make([]byte, 0, headerSize+5)
		fixed = append(fixed, b[:headerSize]...)
		fixed = append(fixed, magicCookie...)
		fixed = append(fixed, 255)
		m, err = dhcp.FromBytes(fixed)
		return m, true, err
	}
	m, err = dhcp.FromBytes(b)
	if err != nil {
		return nil, false, err
	}
	if ov := m.Options.Get(dhcp.OptionOptionOverload); len(ov) > 0 {
		if len(ov) != 1 || ov[0] < overloadFile || ov[0] > overloadBoth {
			return nil, false, fmt.Errorf("option 52 (overload) value % x invalid", ov)
		}
		// RFC 3396 §6: options field first, then file, then sname.
		if ov[0]&overloadFile != 0 {
			if err := m.Options.FromBytes(b[offFile : offFile+lenFile]); err != nil {
				return nil, false, fmt.Errorf("options overloaded into file: %w", err)
			}
			m.BootFileName = ""
		}
		if ov[0]&overloadSname != 0 {
			if err := m.Options.FromBytes(b[offSname : offSname+lenSname]); err != nil {
				return nil, false, fmt.Errorf("options overloaded into sname: %w", err)
			}
			m.ServerHostName = ""
		}
	}
	return m, false, nil
}

// Lease is what the client learned from the ACK. The zero Lease has no address.
type Lease struct {
	Addr          netip.Prefix // yiaddr with the subnet mask (option 1; /32 without it... see below)
	Router        netip.Addr   // first of option 3, or invalid
	DNS           []netip.Addr // option 6
	HostName      string       // option 12
	DomainName    string       // option 15
	Broadcast     netip.Addr   // option 28, or invalid
	ServerID      netip.Addr   // option 54
	NextServer    netip.Addr   // siaddr, or invalid when 0.0.0.0
	ServerName    string       // sname field (empty when overloaded)
	BootFile      string       // option 67, else the file field
	TFTPServer    string       // option 66 (a name or a dotted quad)
	VendorInfo    []byte       // option 43
	ConfigFile    string       // option 209 (PXELINUX config file)
	PathPrefix    string       // option 210 (PXELINUX path prefix)
	RebootTime    uint32       // option 211, seconds; 0 when absent
	LeaseTime     time.Duration
	BOOTP         bool // the reply was plain BOOTP (no options)
	TransactionID [4]byte

	// HWAddr is the client MAC the lease belongs to (for RELEASE).
	HWAddr net.HardwareAddr
}

func ip4(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// cstr cuts an option string at the first NUL (some servers NUL-terminate).
func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// newLease extracts a Lease from a parsed ACK (or BOOTP reply).
func newLease(m *dhcp.DHCPv4, bootp bool) (*Lease, error) {
	yi := ip4(m.YourIPAddr)
	if !yi.IsValid() {
		return nil, errors.New("reply assigns no address (yiaddr 0.0.0.0)")
	}
	bits := 0
	if mask := m.Options.Get(dhcp.OptionSubnetMask); len(mask) == 4 {
		ones, sz := net.IPMask(mask).Size()
		if sz == 0 {
			return nil, fmt.Errorf("subnet mask % x not contiguous", mask)
		}
		bits = ones
	} else {
		// RFC 1122 class default when the server gives no mask.
		switch b := yi.As4()[0]; {
		case b < 128:
			bits = 8
		case b < 192:
			bits = 16
		default:
			bits = 24
		}
	}
	l := &Lease{
		Addr:          netip.PrefixFrom(yi, bits),
		NextServer:    ip4(m.ServerIPAddr),
		ServerName:    m.ServerHostName,
		BootFile:      m.BootFileName,
		BOOTP:         bootp,
		TransactionID: m.TransactionID,
		HWAddr:        m.ClientHWAddr,
	}
	o := m.Options
	if r := o.Get(dhcp.OptionRouter); len(r) >= 4 {
		l.Router = ip4(r[:4])
	}
	for d := o.Get(dhcp.OptionDomainNameServer); len(d) >= 4; d = d[4:] {
		if a := ip4(d[:4]); a.IsValid() {
			l.DNS = append(l.DNS, a)
		}
	}
	l.HostName = cstr(o.Get(dhcp.OptionHostName))
	l.DomainName = cstr(o.Get(dhcp.OptionDomainName))
	if b := o.Get(dhcp.OptionBroadcastAddress); len(b) == 4 {
		l.Broadcast = ip4(b)
	}
	if s := o.Get(dhcp.OptionServerIdentifier); len(s) == 4 {
		l.ServerID = ip4(s)
	}
	if f := cstr(o.Get(dhcp.OptionBootfileName)); f != "" {
		l.BootFile = f
	}
	l.TFTPServer = strings.TrimSpace(cstr(o.Get(dhcp.OptionTFTPServerName)))
	l.VendorInfo = o.Get(dhcp.OptionVendorSpecificInformation)
	l.ConfigFile = cstr(o.Get(dhcp.OptionPXELinuxConfigFile))
	l.PathPrefix = cstr(o.Get(dhcp.OptionPXELinuxPathPrefix))
	if r := o.Get(dhcp.OptionPXELinuxRebootTime); len(r) == 4 {
		l.RebootTime = binary.BigEndian.Uint32(r)
	}
	if t := o.Get(dhcp.OptionIPAddressLeaseTime); len(t) == 4 {
		l.LeaseTime = time.Duration(binary.BigEndian.Uint32(t)) * time.Second
	}
	return l, nil
}

// LookupFunc resolves a host name (a dns.Resolver's LookupHost fits).
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// BootServer is the TFTP/boot server address and where it came from.
type BootServer struct {
	Addr   netip.Addr
	Source string // "option 66", "option 66 via DNS", "siaddr", "sname", "sname via DNS", "server identifier"
}

// ErrNoBootServer means the lease names no usable boot server.
var ErrNoBootServer = errors.New("no boot server in the DHCP reply")

// BootServer resolves the boot server the way QEMU's s390-netboot does (package doc). lookup may be nil when no
// resolver is available; names then fail over to the next source.
func (l *Lease) BootServer(ctx context.Context, lookup LookupFunc) (BootServer, error) {
	resolve := func(name, src string) (BootServer, error) {
		if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
			return BootServer{a, src}, nil
		}
		if lookup == nil {
			return BootServer{}, fmt.Errorf("%s %q is a name and there is no resolver", src, name)
		}
		addrs, err := lookup(ctx, name)
		if err != nil {
			return BootServer{}, err
		}
		for _, a := range addrs {
			if a.Is4() {
				return BootServer{a, src + " via DNS"}, nil
			}
		}
		return BootServer{}, fmt.Errorf("%s %q has no IPv4 address", src, name)
	}
	var errs []error
	if l.TFTPServer != "" {
		bs, err := resolve(l.TFTPServer, "option 66")
		if err == nil {
			return bs, nil
		}
		errs = append(errs, err)
		if l.NextServer.IsValid() {
			return BootServer{l.NextServer, "siaddr"}, nil
		}
	} else {
		if l.NextServer.IsValid() {
			return BootServer{l.NextServer, "siaddr"}, nil
		}
		if l.ServerName != "" {
			bs, err := resolve(l.ServerName, "sname")
			if err == nil {
				return bs, nil
			}
			errs = append(errs, err)
		}
	}
	if l.ServerID.IsValid() {
		return BootServer{l.ServerID, "server identifier"}, nil
	}
	if len(errs) > 0 {
		return BootServer{}, fmt.Errorf("%w: %w", ErrNoBootServer, errors.Join(errs...))
	}
	return BootServer{}, ErrNoBootServer
}
