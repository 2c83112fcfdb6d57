package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The lab's network: the same numbers as QEMU's slirp, so file names derived from the client
// address (pxelinux.cfg/0A00020F) match the research transcripts.
var (
	LabAddr    = netip.MustParseAddr("10.0.2.2")  // router, DHCP, TFTP, HTTP, DNS
	SecondAddr = netip.MustParseAddr("10.0.2.3")  // the optional second DHCP server
	FirstLease = netip.MustParseAddr("10.0.2.15") // first address handed out
	LabMAC     = net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}
	labPrefix  = 24
)

const nicID = 1

// File is one file the lab serves over TFTP and HTTP.
type File struct {
	Data       []byte
	ErrorAfter int // >= 0: the TFTP server sends an ERROR after this many bytes of the file
	Truncate   int // >= 0: TFTP and HTTP serve only this many bytes (tsize/Content-Length say so too)
}

// served returns the bytes a transfer delivers before any mid-file error.
func (f *File) served() []byte {
	if f.Truncate >= 0 && f.Truncate < len(f.Data) {
		return f.Data[:f.Truncate]
	}
	return f.Data
}

// Config is everything a lab serves. The zero value serves DHCP with no bootfile and no files.
type Config struct {
	DHCP    DHCPConfig
	Files   map[string]*File      // by TFTP/HTTP path without leading '/'
	DNS     map[string]netip.Addr // A records (names without trailing dot, lower case)
	Faults  Faults
	PinTFTP bool        // TFTP by pin/tftp v3 (single-port mode) instead of the lab's own windowed server
	IPv6    *IPv6Config // non-nil: RA + DHCPv6 + TFTP on fec0::2 as well

	Pcap io.Writer // pcap of every frame at the QEMU side of the link; nil = none
	Log  io.Writer // a copy of every event line; nil = none
}

// Event is one line of the lab's log.
type Event struct {
	T    time.Duration // since the lab started
	Text string
}

// Lab is one run's peer: a gVisor stack with DHCP, TFTP, HTTP and DNS servers behind a fault
// injector, attached to one QEMU link.
type Lab struct {
	cfg   Config
	start time.Time
	stack *stack.Stack
	link  *directLink
	inj   *Injector
	pcap  *PcapWriter

	mu      sync.Mutex
	events  []Event
	closers []func()

	wmu    sync.Mutex // serialises writes to the guest
	wbuf   []byte
	conn   io.ReadWriteCloser
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds the stack and starts the servers. Call Attach to connect a guest and Close to stop.
func New(cfg Config) (*Lab, error) {
	l := &Lab{cfg: cfg, start: time.Now(), inj: NewInjector(cfg.Faults), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if cfg.Pcap != nil {
		p, err := NewPcapWriter(cfg.Pcap)
		if err != nil {
			return nil, err
		}
		l.pcap = p
	}
	if err := l.buildStack(); err != nil {
		return nil, err
	}
	if err := l.startServers(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) buildStack() error {
	l.stack = stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{DADConfigs: stack.DADConfigurations{DupAddrDetectTransmits: 0}})},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol},
	})
	l.link = &directLink{Endpoint: channel.New(512, 1500+header.EthernetMinimumSize, tcpip.LinkAddress(LabMAC)), l: l}
	if err := l.stack.CreateNIC(nicID, ethernet.New(l.link)); err != nil {
		return fmt.Errorf("lab: create NIC: %s", err)
	}
	for _, a := range []netip.Addr{LabAddr, SecondAddr} {
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddrFrom4(a.As4()).WithPrefix()}
		pa.AddressWithPrefix.PrefixLen = labPrefix
		if err := l.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("lab: add address %s: %s", a, err)
		}
	}
	subnet := tcpip.AddrFrom4(LabAddr.As4()).WithPrefix()
	subnet.PrefixLen = labPrefix
	l.stack.SetRouteTable([]tcpip.Route{
		{Destination: subnet.Subnet(), NIC: nicID},
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
	})
	return nil
}

// Logf appends a line to the event log.
func (l *Lab) Logf(format string, args ...any) {
	e := Event{T: time.Since(l.start), Text: fmt.Sprintf(format, args...)}
	l.mu.Lock()
	l.events = append(l.events, e)
	w := l.cfg.Log
	l.mu.Unlock()
	if w != nil {
		fmt.Fprintf(w, "%8.3f %s\n", e.T.Seconds(), e.Text)
	}
}

// Events returns a copy of the event log.
func (l *Lab) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// EventText returns the event log as text, one event per line, without timestamps.
func (l *Lab) EventText() string {
	var b strings.Builder
	for _, e := range l.Events() {
		b.WriteString(e.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// FaultStats returns the injector's counters.
func (l *Lab) FaultStats() FaultStats { return l.inj.Stats() }

func (l *Lab) onClose(f func()) {
	l.mu.Lock()
	l.closers = append(l.closers, f)
	l.mu.Unlock()
}

// udpConn opens a UDP endpoint on the lab stack bound to addr:port (addr invalid = any address)
// with SO_BROADCAST and SO_REUSEADDR set, as a net.PacketConn.
func (l *Lab) udpConn(addr netip.Addr, port uint16) (*gonet.UDPConn, error) {
	var wq waiter.Queue
	proto := ipv4.ProtocolNumber
	if addr.Is6() {
		proto = ipv6.ProtocolNumber
	}
	ep, err := l.stack.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if err != nil {
		return nil, fmt.Errorf("lab: udp endpoint for port %d: %s", port, err)
	}
	ep.SocketOptions().SetBroadcast(true)
	ep.SocketOptions().SetReuseAddress(true) // the second DHCP server binds 10.0.2.3:67 beside *:67
	fa := tcpip.FullAddress{NIC: nicID, Port: port}
	if addr.IsValid() && !addr.IsUnspecified() {
		fa.Addr = tcpipAddr(addr)
	}
	if err := ep.Bind(fa); err != nil {
		ep.Close()
		return nil, fmt.Errorf("lab: bind udp %v:%d: %s", addr, port, err)
	}
	c := gonet.NewUDPConn(&wq, ep)
	l.onClose(func() { c.Close() })
	return c, nil
}

func (l *Lab) startServers() error {
	if !l.cfg.DHCP.Off {
		if err := l.startDHCP(); err != nil {
			return err
		}
	}
	if l.cfg.IPv6 != nil {
		if err := l.setupIPv6(); err != nil {
			return err
		}
	}
	if err := l.startTFTP(); err != nil {
		return err
	}
	if err := l.startHTTP(); err != nil {
		return err
	}
	return l.startDNS()
}

// file looks a requested path up; a leading '/' is ignored (TFTP roots are relative).
func (l *Lab) file(name string) (*File, bool) {
	f, ok := l.cfg.Files[strings.TrimLeft(name, "/")]
	return f, ok
}

// Attach connects the lab to one guest link (QEMU's stream socket) and pumps frames both ways
// until the link closes or Close is called. It returns at once.
func (l *Lab) Attach(conn io.ReadWriteCloser) {
	l.wmu.Lock()
	l.conn = conn
	l.wmu.Unlock()
	go l.pumpFromGuest(conn)
}

// directLink is the stack's link endpoint: inbound frames are injected by pumpFromGuest, and
// outbound frames go straight from the sending goroutine through the injector to the socket
// (no queue and no extra goroutine hop, which would add to every TFTP round trip).
type directLink struct {
	*channel.Endpoint
	l *Lab
}

// WritePackets implements stack.LinkEndpoint.WritePackets.
func (d *directLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		d.l.toGuest(pkt.ToView().AsSlice())
		n++
	}
	return n, nil
}

var _ stack.LinkEndpoint = (*directLink)(nil)

// Done is closed when the guest link has closed.
func (l *Lab) Done() <-chan struct{} { return l.done }

func (l *Lab) pumpFromGuest(conn io.Reader) {
	defer close(l.done)
	buf := make([]byte, 2048)
	for {
		frame, err := readStreamFrame(conn, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && l.ctx.Err() == nil {
				l.Logf("link: %v", err)
			}
			return
		}
		if l.ctx.Err() != nil {
			return
		}
		l.pcap.WriteFrame(time.Now(), frame)
		if l.cfg.IPv6 != nil {
			if mac, ok := isRouterSolicit(frame); ok {
				l.Logf("ndp: router solicitation from %s", mac)
				l.toGuest(routerAdvert(mac))
			}
		}
		for _, d := range l.inj.Apply(frame, FromGuest) {
			if d.After > 0 {
				f := d.Frame
				time.AfterFunc(d.After, func() { l.inject(f) })
				continue
			}
			l.inject(d.Frame)
		}
	}
}

func (l *Lab) inject(frame []byte) {
	if l.ctx.Err() != nil {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	l.link.InjectInbound(0, pkt)
	pkt.DecRef()
}

// toGuest sends one frame from the stack to the guest through the injector. frame is copied.
func (l *Lab) toGuest(frame []byte) {
	for _, d := range l.inj.Apply(frame, ToGuest) {
		if d.After > 0 {
			f := d.Frame
			time.AfterFunc(d.After, func() { l.writeGuest(f) })
			continue
		}
		l.writeGuest(d.Frame)
	}
}

func (l *Lab) writeGuest(frame []byte) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.conn == nil || l.ctx.Err() != nil {
		return
	}
	l.pcap.WriteFrame(time.Now(), frame)
	l.wbuf = appendStreamFrame(l.wbuf[:0], frame)
	if _, err := l.conn.Write(l.wbuf); err != nil && l.ctx.Err() == nil {
		l.Logf("link: write frame: %v", err)
	}
}

// Close stops the servers and the link and releases the stack.
func (l *Lab) Close() error {
	l.cancel()
	l.mu.Lock()
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	l.wmu.Lock()
	if l.conn != nil {
		l.conn.Close()
	}
	l.wmu.Unlock()
	l.link.Close()
	l.stack.Close()
	return l.pcap.Err()
}
