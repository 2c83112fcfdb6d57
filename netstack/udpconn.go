package netstack

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"
)

// UDPConn is a UDP socket of the stack: a net.PacketConn, and a net.Conn when it was dialled.
// Its methods are safe for concurrent use.
//
// Reads are its own, cheaper than gonet's on the guest's bulk path: no allocation per datagram
// (Read and ReadFromUDPAddrPort; ReadFrom allocates the net.Addr it returns), and a read deadline
// re-arms one timer instead of making a new one. Write on a connected IPv4 socket over the tap
// link takes the send fast path (udpsend.go) when it can; other writes, Close and the addresses
// are gonet's.
type UDPConn struct {
	ep tcpip.Endpoint
	wq *waiter.Queue
	gc *gonet.UDPConn // writes, Close, LocalAddr, RemoteAddr, write deadline

	fast       *udpFastPath // the stack's fast path, for an IPv4 socket; nil otherwise
	fmu        sync.Mutex   // guards unregister and closed
	unregister func()       // removes the socket's port from the fast path; nil if not there
	closed     bool

	send *udpSender // the send fast path for Write; nil: always gonet's

	// rmu serializes the endpoint reads that use w, so w does not escape per read.
	rmu sync.Mutex
	w   moveLongWriter

	dmu      sync.Mutex
	rTimer   *time.Timer   // fires at the read deadline; nil before the first one
	rCancel  chan struct{} // closed once the read deadline has passed
	rExpired bool          // rCancel is closed
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

func newUDPConn(wq *waiter.Queue, ep tcpip.Endpoint) *UDPConn {
	return &UDPConn{ep: ep, wq: wq, gc: gonet.NewUDPConn(wq, ep), rCancel: make(chan struct{})}
}

// leaveFastPath drops the socket's fast-path registration; its datagrams take gVisor's path until
// updateFastPath registers it again.
func (c *UDPConn) leaveFastPath() {
	if c.fast == nil {
		return
	}
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.leaveFastPathLocked()
}

// leaveFastPathLocked is leaveFastPath with c.fmu held.
func (c *UDPConn) leaveFastPathLocked() {
	if c.unregister != nil {
		c.unregister()
		c.unregister = nil
	}
}

// updateFastPath (re)registers the socket's binding with the fast path: after it was bound, and
// after Connect changed its peer.
func (c *UDPConn) updateFastPath() {
	if c.fast == nil {
		return
	}
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.leaveFastPathLocked()
	if c.closed {
		return
	}
	local, terr := c.ep.GetLocalAddress()
	if terr != nil {
		return
	}
	p := &fastPort{local: local.Addr}
	p.ep, _ = c.ep.(stack.TransportEndpoint)
	if remote, terr := c.ep.GetRemoteAddress(); terr == nil {
		p.remote, p.rport, p.connected = remote.Addr, remote.Port, true
	}
	c.unregister = c.fast.register(local.Port, p)
}

// Read reads one datagram into b (a longer datagram is truncated, the rest discarded).
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.read(b, false)
	return n, err
}

// ReadFromUDPAddrPort reads one datagram into b and returns its sender, without allocating.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.read(b, true)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, addrPortOf(from), nil
}

// ReadFrom implements net.PacketConn: ReadFromUDPAddrPort with a *net.UDPAddr.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.read(b, true)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addrPortOf(from)), nil
}

func addrPortOf(fa tcpip.FullAddress) netip.AddrPort {
	a, _ := netip.AddrFromSlice(fa.Addr.AsSlice())
	return netip.AddrPortFrom(a, fa.Port)
}

// tryRead is one non-blocking endpoint read.
func (c *UDPConn) tryRead(b []byte, needAddr bool) (tcpip.ReadResult, tcpip.Error) {
	c.rmu.Lock()
	c.w = moveLongWriter(b) // kept in the UDPConn: a fresh writer per read would escape to the heap
	res, err := c.ep.Read(&c.w, tcpip.ReadOptions{NeedRemoteAddr: needAddr})
	c.w = nil
	c.rmu.Unlock()
	return res, err
}

func (c *UDPConn) read(b []byte, needAddr bool) (int, tcpip.FullAddress, error) {
	cancel := c.readCancel()
	select {
	case <-cancel:
		return 0, tcpip.FullAddress{}, c.opError(os.ErrDeadlineExceeded)
	default:
	}
	res, err := c.tryRead(b, needAddr)
	if _, ok := err.(*tcpip.ErrWouldBlock); ok {
		entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
		c.wq.EventRegister(&entry)
		for {
			if res, err = c.tryRead(b, needAddr); err == nil {
				break
			}
			if _, ok := err.(*tcpip.ErrWouldBlock); !ok {
				break
			}
			select {
			case <-cancel:
				c.wq.EventUnregister(&entry)
				return 0, tcpip.FullAddress{}, c.opError(os.ErrDeadlineExceeded)
			case <-notify:
			}
		}
		c.wq.EventUnregister(&entry)
	}
	switch err.(type) {
	case nil:
		return res.Count, res.RemoteAddr, nil
	case *tcpip.ErrClosedForReceive:
		return 0, tcpip.FullAddress{}, c.opError(net.ErrClosed)
	default:
		return 0, tcpip.FullAddress{}, c.opError(errors.New(err.String()))
	}
}

func (c *UDPConn) opError(err error) error {
	return &net.OpError{Op: "read", Net: "udp", Source: c.gc.LocalAddr(), Addr: c.gc.RemoteAddr(), Err: err}
}

// readCancel returns the channel that is closed when the current read deadline passes.
func (c *UDPConn) readCancel() <-chan struct{} {
	c.dmu.Lock()
	ch := c.rCancel
	c.dmu.Unlock()
	return ch
}

// SetReadDeadline implements net.Conn. Moving a pending deadline re-arms the same timer.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	stopped := c.rTimer == nil || c.rTimer.Stop()
	if !stopped || c.rExpired {
		// The timer fired (or is firing: it closes the channel it captured, the old one).
		c.rCancel, c.rExpired = make(chan struct{}), false
	}
	if t.IsZero() {
		return nil
	}
	d := time.Until(t)
	if d <= 0 {
		close(c.rCancel)
		c.rExpired = true
		return nil
	}
	ch := c.rCancel
	if c.rTimer == nil || !stopped {
		// A fresh timer: a fired one's callback closes the channel it was made with.
		c.rTimer = time.AfterFunc(d, func() { c.expire(ch) })
		return nil
	}
	c.rTimer.Reset(d)
	return nil
}

// expire closes ch if it is still the current cancel channel (the timer fired for it).
func (c *UDPConn) expire(ch chan struct{}) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.rCancel == ch && !c.rExpired {
		close(ch)
		c.rExpired = true
	}
}

// SetDeadline implements net.Conn: both read and write deadlines.
func (c *UDPConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetWriteDeadline implements net.Conn. While a write deadline is set, writes are gonet's.
func (c *UDPConn) SetWriteDeadline(t time.Time) error {
	if c.send != nil {
		c.send.setDeadline(!t.IsZero())
	}
	return c.gc.SetWriteDeadline(t)
}

// Write implements net.Conn (a dialled or connected socket).
func (c *UDPConn) Write(b []byte) (int, error) {
	if c.send != nil {
		if n, err, ok := c.send.write(c, b); ok {
			return n, err
		}
	}
	return c.gc.Write(b)
}

// WriteTo implements net.PacketConn.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.gc.WriteTo(b, addr) }

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *UDPConn) Close() error {
	c.fmu.Lock()
	c.closed = true
	c.leaveFastPathLocked()
	c.fmu.Unlock()
	if c.send != nil {
		c.send.close()
	}
	c.dmu.Lock()
	if c.rTimer != nil {
		c.rTimer.Stop()
	}
	c.dmu.Unlock()
	return c.gc.Close()
}

// LocalAddr implements net.Conn.
func (c *UDPConn) LocalAddr() net.Addr { return c.gc.LocalAddr() }

// RemoteAddr implements net.Conn (nil for a socket that was not dialled).
func (c *UDPConn) RemoteAddr() net.Addr { return c.gc.RemoteAddr() }
