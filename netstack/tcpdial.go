package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"netipl/internal/movelong"
)

// DialTCP connects to raddr; ctx bounds the handshake. The connection is gonet's, over an endpoint whose reads copy with
// movelong (moveLongEndpoint): every byte of an HTTP download passes through that copy.
func (st *Stack) DialTCP(ctx context.Context, raddr netip.AddrPort) (*gonet.TCPConn, error) {
	var wq waiter.Queue
	ep, terr := st.s.NewEndpoint(tcp.ProtocolNumber, protocolOf(raddr.Addr()), &wq)
	if terr != nil {
		return nil, fmt.Errorf("netstack: dial tcp %s: %s", raddr, terr)
	}
	// Connect always reports ErrConnectStarted; the endpoint turns writable once it is done.
	entry, connected := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if err := ctx.Err(); err != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: dial tcp %s: %w", raddr, err)
	}
	terr = ep.Connect(fullAddr(raddr))
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, fmt.Errorf("netstack: dial tcp %s: %w", raddr, ctx.Err())
		case <-connected:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: dial tcp %s: %w", raddr,
			&net.OpError{Op: "connect", Net: "tcp", Addr: net.TCPAddrFromAddrPort(raddr), Err: errors.New(terr.String())})
	}
	return gonet.NewTCPConn(&wq, moveLongEndpoint{ep}), nil
}

// moveLongEndpoint is a TCP endpoint whose reads into a byte slice (gonet's reads: a
// tcpip.SliceWriter) copy with movelong.Copy instead of copy(): MVCLE on s390x, a page per QEMU
// helper call where copy()'s MVC does 256 bytes (internal/movelong). Everything else is the
// endpoint's own.
type moveLongEndpoint struct {
	tcpip.Endpoint
}

// Read implements tcpip.Endpoint.Read.
func (e moveLongEndpoint) Read(dst io.Writer, opts tcpip.ReadOptions) (tcpip.ReadResult, tcpip.Error) {
	sw, ok := dst.(*tcpip.SliceWriter)
	if !ok {
		return e.Endpoint.Read(dst, opts)
	}
	w := moveLongWriter(*sw)
	res, err := e.Endpoint.Read(&w, opts)
	*sw = tcpip.SliceWriter(w)
	return res, err
}

// moveLongWriter is tcpip.SliceWriter with movelong.Copy (MVCLE on s390x): it fills the slice
// from the front and keeps what is left. DialTCP's endpoint and UDPConn read through it.
type moveLongWriter []byte

// Write implements io.Writer.
func (w *moveLongWriter) Write(b []byte) (int, error) {
	n := movelong.Copy(*w, b)
	*w = (*w)[n:]
	if n != len(b) {
		return n, io.ErrShortWrite
	}
	return n, nil
}
