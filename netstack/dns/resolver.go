// Package dns is a small stub resolver for A and AAAA records over UDP, used to turn the boot server name from
// DHCP option 66, a DHCPv6 boot URL or an HTTP URL host into an address.
//
// Spec: RFC 1035 (messages, §4.1; UDP transport, §4.2.1), RFC 3596 (AAAA). Message encoding is
// golang.org/x/net/dns/dnsmessage. Supported subset and deviations:
//   - Recursive queries (RD set) to the servers from DHCP option 6 / DHCPv6 option 23, tried in order, each
//     Attempts times with Timeout per try; a server that answers SERVFAIL or REFUSED is left at once for the next,
//     and NXDOMAIN (or no address) from any server is final. No caching, no EDNS0, no DNSSEC.
//   - A truncated answer (TC) is used if it carries addresses; there is no TCP fallback (an A/AAAA answer for a
//     boot server fits in 512 bytes).
//   - CNAME chains inside one answer are followed (up to 8 links).
//   - Responses must come from the queried server's address and port 53, carry the query ID and echo the question;
//     anything else is ignored (counted in Stats.Ignored), as RFC 5452 advises against spoofing.
//   - A name without a dot is tried with each Search domain (DHCP option 15 / 119) first, then as is.
package dns

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Defaults for Resolver fields left zero.
const (
	DefaultTimeout  = time.Second
	DefaultAttempts = 2
	maxCNAMEs       = 8
	maxMessage      = 1500
)

var (
	// ErrNotFound means a server answered that the name has no such record (NXDOMAIN, or an answer without an
	// address for it). That answer is final: the other servers are not asked.
	ErrNotFound = errors.New("no such host")
	// ErrNoServers means the resolver has no server to ask.
	ErrNoServers = errors.New("no DNS servers")
)

// Stats counts resolver events (style B18).
type Stats struct {
	Queries  uint64 // datagrams sent
	Timeouts uint64 // tries without an answer
	Ignored  uint64 // datagrams that were not the answer (wrong source, ID or question; malformed)
}

// Resolver resolves host names. Listen must be set.
type Resolver struct {
	// Servers are the DNS servers, in order of preference (port 53).
	Servers []netip.Addr
	// Search are domains appended to names without a dot (DHCP option 15 / 119).
	Search []string
	// Listen opens a fresh UDP socket per query (gonet in the guest, net.ListenPacket on the host).
	Listen func() (net.PacketConn, error)
	// Timeout is the wait per try; 0 means DefaultTimeout.
	Timeout time.Duration
	// Attempts is the number of tries per server; 0 means DefaultAttempts.
	Attempts int
	// Port overrides 53 (for tests against a server on an unprivileged port).
	Port uint16

	Stats Stats
}

// LookupHost returns the IPv4 and then the IPv6 addresses of host. An IP literal is returned as is.
// Errors read like `dns lookup "tftp.lab": no such host`.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	var all []netip.Addr
	var firstErr error
	for _, t := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		addrs, err := r.Lookup(ctx, host, t)
		if err != nil {
			if firstErr == nil || (errors.Is(firstErr, ErrNotFound) && !errors.Is(err, ErrNotFound)) {
				firstErr = err
			}
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		all = append(all, addrs...)
	}
	if len(all) == 0 {
		return nil, firstErr
	}
	return all, nil
}

// Lookup resolves one record type (dnsmessage.TypeA or TypeAAAA).
func (r *Resolver) Lookup(ctx context.Context, host string, qtype dnsmessage.Type) ([]netip.Addr, error) {
	addrs, err := r.lookup(ctx, host, qtype)
	if err != nil {
		return nil, fmt.Errorf("dns lookup %q (%s): %w", host, strings.TrimPrefix(qtype.String(), "Type"), err)
	}
	return addrs, nil
}

func (r *Resolver) lookup(ctx context.Context, host string, qtype dnsmessage.Type) ([]netip.Addr, error) {
	if len(r.Servers) == 0 {
		return nil, ErrNoServers
	}
	if r.Listen == nil {
		return nil, errors.New("no socket opener (Resolver.Listen is nil)")
	}
	var names []string
	trimmed := strings.TrimSuffix(host, ".")
	if trimmed == "" || len(trimmed) > 253 {
		return nil, errors.New("bad host name")
	}
	if !strings.Contains(trimmed, ".") && !strings.HasSuffix(host, ".") {
		for _, d := range r.Search {
			if d = strings.Trim(d, "."); d != "" {
				names = append(names, trimmed+"."+d+".")
			}
		}
	}
	names = append(names, trimmed+".")
	var lastErr error
	for _, n := range names {
		name, err := dnsmessage.NewName(n)
		if err != nil {
			return nil, fmt.Errorf("bad host name: %w", err)
		}
		addrs, err := r.query(ctx, name, qtype)
		if err == nil {
			return addrs, nil
		}
		lastErr = err
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return nil, lastErr
}

// query asks each server in turn until one gives a definite answer.
func (r *Resolver) query(ctx context.Context, name dnsmessage.Name, qtype dnsmessage.Type) ([]netip.Addr, error) {
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	port := r.Port
	if port == 0 {
		port = 53
	}
	var lastErr error
	for _, srv := range r.Servers {
		server := netip.AddrPortFrom(srv.Unmap(), port)
		for try := 0; try < attempts; try++ {
			addrs, err := r.exchange(ctx, server, name, qtype, timeout)
			if err == nil {
				return addrs, nil
			}
			lastErr = fmt.Errorf("server %s: %w", server.Addr(), err)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, ErrNotFound) {
				return nil, lastErr // a definite answer: do not ask the others
			}
			var re *rcodeError
			if errors.As(err, &re) {
				break // this server refuses or fails: try the next one
			}
		}
	}
	return nil, lastErr
}

// rcodeError is a response code other than success or NXDOMAIN (e.g. SERVFAIL, REFUSED).
type rcodeError struct{ rcode dnsmessage.RCode }

func (e *rcodeError) Error() string {
	return "server answered " + strings.TrimPrefix(e.rcode.String(), "RCode")
}

var errTimeout = errors.New("no answer (timeout)")

func (r *Resolver) exchange(ctx context.Context, server netip.AddrPort, name dnsmessage.Name, qtype dnsmessage.Type, timeout time.Duration) ([]netip.Addr, error) {
	conn, err := r.Listen()
	if err != nil {
		return nil, fmt.Errorf("open socket: %w", err)
	}
	defer conn.Close()
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q := dnsmessage.Question{Name: name, Type: qtype, Class: dnsmessage.ClassINET}
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true}, Questions: []dnsmessage.Question{q}}
	pkt, err := msg.Pack()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	r.Stats.Queries++
	if _, err := conn.WriteTo(pkt, net.UDPAddrFromAddrPort(server)); err != nil {
		return nil, fmt.Errorf("send query: %w", err)
	}
	buf := make([]byte, maxMessage)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.Stats.Timeouts++
				return nil, errTimeout
			}
			return nil, fmt.Errorf("receive: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()) != server {
			r.Stats.Ignored++
			continue
		}
		addrs, err := parseAnswer(buf[:n], id, q)
		if errors.Is(err, errNotOurs) {
			r.Stats.Ignored++
			continue
		}
		return addrs, err
	}
}

var errNotOurs = errors.New("not the answer to our query")

// parseAnswer extracts the addresses for q from a response, following CNAMEs.
func parseAnswer(b []byte, id uint16, q dnsmessage.Question) ([]netip.Addr, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || !h.Response || h.ID != id {
		return nil, errNotOurs
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 || qs[0].Type != q.Type || qs[0].Class != q.Class ||
		!strings.EqualFold(qs[0].Name.String(), q.Name.String()) {
		return nil, errNotOurs
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, ErrNotFound
	default:
		return nil, &rcodeError{h.RCode}
	}
	answers, err := p.AllAnswers()
	if err != nil && len(answers) == 0 {
		return nil, fmt.Errorf("malformed answer section: %w", err)
	}
	// Follow the CNAME chain from the question name.
	want := strings.ToLower(q.Name.String())
	for i := 0; i < maxCNAMEs; i++ {
		next := ""
		for _, a := range answers {
			if a.Header.Type == dnsmessage.TypeCNAME && strings.EqualFold(a.Header.Name.String(), want) {
				next = strings.ToLower(a.Body.(*dnsmessage.CNAMEResource).CNAME.String())
			}
		}
		if next == "" {
			break
		}
		want = next
	}
	var addrs []netip.Addr
	for _, a := range answers {
		if !strings.EqualFold(a.Header.Name.String(), want) || a.Header.Class != dnsmessage.ClassINET {
			continue
		}
		switch body := a.Body.(type) {
		case *dnsmessage.AResource:
			if q.Type == dnsmessage.TypeA {
				addrs = append(addrs, netip.AddrFrom4(body.A))
			}
		case *dnsmessage.AAAAResource:
			if q.Type == dnsmessage.TypeAAAA {
				addrs = append(addrs, netip.AddrFrom16(body.AAAA))
			}
		}
	}
	if len(addrs) == 0 {
		return nil, ErrNotFound
	}
	return addrs, nil
}
