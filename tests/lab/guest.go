package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
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
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Guest is an in-process stand-in for the firmware: a gVisor stack on the far end of a lab link,
// speaking QEMU's stream framing. Tests and the TFTP benchmark use it; it is not a firmware model.
type Guest struct {
	Stack  *stack.Stack
	link   *channel.Endpoint
	conn   io.ReadWriteCloser
	ctx    context.Context
	cancel context.CancelFunc
	wmu    sync.Mutex
}

// NewGuest builds a guest stack with mac on conn. If addr is valid it is configured (/24, default
// route via the lab); otherwise the guest has no address (for DHCP tests).
func NewGuest(conn io.ReadWriteCloser, mac net.HardwareAddr, addr netip.Addr) (*Guest, error) {
	g := &Guest{conn: conn}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.Stack = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol},
	})
	g.link = channel.New(512, 1500+header.EthernetMinimumSize, tcpip.LinkAddress(mac))
	if err := g.Stack.CreateNIC(nicID, ethernet.New(g.link)); err != nil {
		return nil, fmt.Errorf("guest: create NIC: %s", err)
	}
	if addr.IsValid() {
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom4(addr.As4()).WithPrefix()}
		pa.AddressWithPrefix.PrefixLen = labPrefix
		if err := g.Stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return nil, fmt.Errorf("guest: add address: %s", err)
		}
	} else {
		// DHCP clients send from 0.0.0.0.
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: header.IPv4Any.WithPrefix()}
		if err := g.Stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return nil, fmt.Errorf("guest: add any address: %s", err)
		}
	}
	g.Stack.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	go g.pumpIn()
	go g.pumpOut()
	return g, nil
}

func (g *Guest) pumpIn() {
	buf := make([]byte, 2048)
	for {
		frame, err := readStreamFrame(g.conn, buf)
		if err != nil || g.ctx.Err() != nil {
			return
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(append([]byte(nil), frame...))})
		g.link.InjectInbound(0, pkt)
		pkt.DecRef()
	}
}

func (g *Guest) pumpOut() {
	var out []byte
	for {
		pkt := g.link.ReadContext(g.ctx)
		if pkt == nil {
			return
		}
		out = appendStreamFrame(out[:0], pkt.ToView().AsSlice())
		pkt.DecRef()
		g.wmu.Lock()
		_, err := g.conn.Write(out)
		g.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// UDP opens a UDP socket on the guest bound to port (0 = ephemeral), broadcast allowed.
func (g *Guest) UDP(port uint16) (*gonet.UDPConn, error) {
	var wq waiter.Queue
	ep, err := g.Stack.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		return nil, fmt.Errorf("guest: udp endpoint: %s", err)
	}
	ep.SocketOptions().SetBroadcast(true)
	if err := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: port}); err != nil {
		ep.Close()
		return nil, fmt.Errorf("guest: bind udp port %d: %s", port, err)
	}
	return gonet.NewUDPConn(&wq, ep), nil
}

// DialTCP connects to the lab at addr:port.
func (g *Guest) DialTCP(ctx context.Context, addr netip.Addr, port uint16) (net.Conn, error) {
	return gonet.DialContextTCP(ctx, g.Stack, tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(addr.As4()), Port: port}, ipv4.ProtocolNumber)
}

// Close stops the pumps and the stack.
func (g *Guest) Close() {
	g.cancel()
	g.conn.Close()
	g.link.Close()
	g.Stack.Close()
}

// TFTPStats are a client transfer's counters.
type TFTPStats struct {
	Blksize, Windowsize int
	Tsize               int64 // -1 if the server sent none
	Blocks, Duplicates  int
	Timeouts            int
}

// TFTPGet fetches name from server with a minimal RFC 1350/2347/2348/2349/7440 client (blksize,
// windowsize, tsize); windowsize 0 leaves the option out. It is the lab's test and benchmark client.
func TFTPGet(conn net.PacketConn, server netip.AddrPort, name string, blksize, windowsize int) ([]byte, TFTPStats, error) {
	st := TFTPStats{Blksize: 512, Windowsize: 1, Tsize: -1}
	req := binary.BigEndian.AppendUint16(nil, tftpRRQ)
	req = append(append(req, name...), 0)
	req = append(req, "octet\x00"...)
	req = append(req, "tsize\x000\x00"...)
	if blksize > 0 {
		req = append(append(req, "blksize\x00"...), strconv.Itoa(blksize)+"\x00"...)
	}
	if windowsize > 0 {
		req = append(append(req, "windowsize\x00"...), strconv.Itoa(windowsize)+"\x00"...)
	}
	dst := net.UDPAddrFromAddrPort(server)
	var peer net.Addr
	send := func(p []byte) error {
		to := peer
		if to == nil {
			to = dst
		}
		_, err := conn.WriteTo(p, to)
		return err
	}
	ack := func(b uint16) error {
		p := binary.BigEndian.AppendUint16(nil, tftpACK)
		return send(binary.BigEndian.AppendUint16(p, b))
	}
	if err := send(req); err != nil {
		return nil, st, fmt.Errorf("tftp get %q: send RRQ: %w", name, err)
	}
	var data []byte
	var last uint16 // last in-order block received
	inWindow := 0
	buf := make([]byte, 65536)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if isTimeout(err) {
				if st.Timeouts++; st.Timeouts > 10 {
					return nil, st, fmt.Errorf("tftp get %q: no answer after %d timeouts", name, st.Timeouts)
				}
				if peer == nil {
					send(req)
				} else {
					ack(last)
				}
				continue
			}
			return nil, st, fmt.Errorf("tftp get %q: %w", name, err)
		}
		if n < 4 {
			continue
		}
		peer = from
		p := buf[:n]
		switch binary.BigEndian.Uint16(p) {
		case tftpOACK:
			f := splitNUL(p[2:])
			for i := 0; i+1 < len(f); i += 2 {
				v, _ := strconv.Atoi(f[i+1])
				switch f[i] {
				case "blksize":
					st.Blksize = v
				case "windowsize":
					st.Windowsize = v
				case "tsize":
					st.Tsize = int64(v)
				}
			}
			if err := ack(0); err != nil {
				return nil, st, err
			}
		case tftpERROR:
			return nil, st, fmt.Errorf("tftp get %q: server ERROR %d %q", name, binary.BigEndian.Uint16(p[2:]), string(bytesTrimNUL(p[4:])))
		case tftpDATA:
			b := binary.BigEndian.Uint16(p[2:])
			if b != last+1 {
				st.Duplicates++
				ack(last) // RFC 7440: acknowledge the last in-order block
				inWindow = 0
				continue
			}
			last = b
			st.Blocks++
			data = append(data, p[4:]...)
			inWindow++
			final := n-4 < st.Blksize
			if final || inWindow >= st.Windowsize {
				if err := ack(last); err != nil {
					return nil, st, err
				}
				inWindow = 0
			}
			if final {
				return data, st, nil
			}
		}
	}
}

func splitNUL(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

func bytesTrimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
