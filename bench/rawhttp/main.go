// Command rawhttp is a guest program for bench/httpceiling.sh: it runs as the loader on metal and
// downloads one file over HTTP with hand-made TCP frames on metal's raw tap fd, without a network
// stack. Its receive path is the cheapest a TCP consumer can have (one read per frame, a sequence
// check, an ACK every -ack frames or when the queue is empty), so its rate is the ceiling that
// slirp, QEMU's virtio-net and metal's NIC path leave for any stack in the guest.
//
//	rawhttp -peer 10.0.2.2:PORT -path /initrd60.img [-ack 16] [-addr 10.0.2.15]
//
// It prints `RESULT: raw_http_bytes=N raw_http_seconds=S raw_http_MBps=R acks=A frames=F
// out_of_order=O` (the rate counts the body and headers from the request to the FIN) or
// `FAIL: rawhttp: reason`. It is a measuring tool, not a TCP: no retransmission of its own
// segments beyond the request, no window scaling, no options but MSS, IPv4 only.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"netipl/netstack"
)

func main() {
	addr := flag.String("addr", "10.0.2.15", "our IPv4 address")
	peer := flag.String("peer", "10.0.2.2:8080", "HTTP server")
	path := flag.String("path", "/", "URL path to GET")
	ackEvery := flag.Int("ack", 16, "ACK after this many in-order data frames (and whenever the queue is empty)")
	flag.Parse()
	if err := run(*addr, *peer, *path, *ackEvery); err != nil {
		fmt.Printf("FAIL: rawhttp: %v\n", err)
	}
}

// slirpGatewayMAC is the Ethernet address slirp's virtual gateway (10.0.2.2) uses.
var slirpGatewayMAC = net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}

const (
	ethLen  = 14
	ipLen   = 20
	tcpLen  = 20
	ourPort = 40001
	ourISN  = 1000
	flagFIN = 0x01
	flagSYN = 0x02
	flagPSH = 0x08
	flagACK = 0x10
	flagRST = 0x04
)

// conn is the state of the one connection.
type conn struct {
	fd       int
	mac      net.HardwareAddr
	self     netip.Addr
	peer     netip.AddrPort
	sndNxt   uint32
	rcvNxt   uint32
	out      []byte
	acks     int
	frames   int
	outOrder int
}

func run(addr, peer, path string, ackEvery int) error {
	macText, err := os.ReadFile("/sys/class/net/eth0/address")
	if err != nil {
		return fmt.Errorf("read MAC: %w", err)
	}
	mac, err := net.ParseMAC(strings.TrimSpace(string(macText)))
	if err != nil {
		return fmt.Errorf("parse MAC %q: %w", macText, err)
	}
	self, err := netip.ParseAddr(addr)
	if err != nil || !self.Is4() {
		return fmt.Errorf("address %q is not IPv4", addr)
	}
	pa, err := netip.ParseAddrPort(peer)
	if err != nil || !pa.Addr().Is4() {
		return fmt.Errorf("peer %q is not IPv4:port", peer)
	}
	tap, err := netstack.OpenTap("eth0")
	if err != nil {
		return fmt.Errorf("open tap: %w", err)
	}
	defer tap.Close()
	c := &conn{fd: int(tap.Fd()), mac: mac, self: self, peer: pa, sndNxt: ourISN, out: make([]byte, 128)}
	if err := unix.SetNonblock(c.fd, true); err != nil {
		return fmt.Errorf("non-blocking mode: %w", err)
	}
	req := []byte(fmt.Sprintf("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: rawhttp\r\n\r\n", path, peer))
	buf := make([]byte, 2048)

	// Handshake: SYN (MSS 1460, no window scaling) until a SYN-ACK, at most 5 tries.
	established := false
	for try := 0; try < 5 && !established; try++ {
		if err := c.send(flagSYN, nil, true); err != nil {
			return err
		}
		deadline := time.Now().Add(time.Second)
		for !established && time.Now().Before(deadline) {
			f, err := c.read(buf, deadline)
			if err != nil {
				return err
			}
			if f == nil {
				continue
			}
			if tcp := c.tcpOf(f); tcp != nil && tcp[13]&(flagSYN|flagACK) == flagSYN|flagACK &&
				binary.BigEndian.Uint32(tcp[8:]) == ourISN+1 {
				c.rcvNxt = binary.BigEndian.Uint32(tcp[4:]) + 1
				c.sndNxt = ourISN + 1
				established = true
			}
		}
	}
	if !established {
		return errors.New("no SYN-ACK from the server")
	}
	start := time.Now()
	if err := c.send(flagACK|flagPSH, req, false); err != nil {
		return err
	}
	reqAcked := false
	var got int64
	var header []byte
	unacked := 0
	lastProgress := time.Now()
	for {
		f, err := c.read(buf, time.Time{})
		if err != nil {
			return err
		}
		if f == nil { // queue empty: ACK what came, then wait
			if unacked > 0 {
				if err := c.ack(); err != nil {
					return err
				}
				unacked = 0
			}
			if time.Since(lastProgress) > 3*time.Second {
				if !reqAcked { // the request was lost: send it again
					c.sndNxt = ourISN + 1
					if err := c.send(flagACK|flagPSH, req, false); err != nil {
						return err
					}
					lastProgress = time.Now()
					continue
				}
				return fmt.Errorf("stalled after %d bytes", got)
			}
			if err := c.wait(time.Second); err != nil {
				return err
			}
			continue
		}
		tcp := c.tcpOf(f)
		if tcp == nil {
			continue
		}
		flags := tcp[13]
		if flags&flagRST != 0 {
			return fmt.Errorf("connection reset after %d bytes", got)
		}
		if flags&flagACK != 0 && binary.BigEndian.Uint32(tcp[8:]) == c.sndNxt {
			reqAcked = true
		}
		ip := f[ethLen:]
		total := int(binary.BigEndian.Uint16(ip[2:]))
		off := int(tcp[12]>>4) * 4
		if total > len(ip) || ipLen+off > total {
			continue
		}
		data := ip[ipLen+off : total]
		seq := binary.BigEndian.Uint32(tcp[4:])
		if len(data) > 0 || flags&flagFIN != 0 {
			if seq != c.rcvNxt { // out of order or a retransmission: say where we are
				c.outOrder++
				if err := c.ack(); err != nil {
					return err
				}
				continue
			}
			c.frames++
			c.rcvNxt += uint32(len(data))
			got += int64(len(data))
			if len(header) < 1024 {
				header = append(header, data[:min(len(data), 1024)]...)
			}
			lastProgress = time.Now()
			unacked++
		}
		if flags&flagFIN != 0 {
			c.rcvNxt++
			if err := c.ack(); err != nil {
				return err
			}
			break
		}
		if unacked >= ackEvery {
			if err := c.ack(); err != nil {
				return err
			}
			unacked = 0
		}
	}
	secs := time.Since(start).Seconds()
	status, _, _ := bytes.Cut(header, []byte("\r\n"))
	if !bytes.Contains(status, []byte(" 200 ")) {
		return fmt.Errorf("server answered %q", status)
	}
	fmt.Printf("RESULT: raw_http_bytes=%d raw_http_seconds=%.3f raw_http_MBps=%.1f acks=%d frames=%d out_of_order=%d\n",
		got, secs, float64(got)/secs/1e6, c.acks, c.frames, c.outOrder)
	return nil
}

// read returns the next frame, or nil when none is queued (or deadline passed while waiting for
// one, when deadline is set). ARP requests for our address are answered on the way.
func (c *conn) read(buf []byte, deadline time.Time) ([]byte, error) {
	for {
		n, err := unix.Read(c.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if deadline.IsZero() {
				return nil, nil
			}
			left := time.Until(deadline)
			if left <= 0 {
				return nil, nil
			}
			if err := c.wait(left); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read tap: %w", err)
		}
		f := buf[:n]
		if n >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 1 &&
			netip.AddrFrom4([4]byte(f[38:42])) == c.self {
			c.arpReply(f)
			continue
		}
		return f, nil
	}
}

// wait blocks until the tap is readable or d passes.
func (c *conn) wait(d time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	if _, err := unix.Ppoll(pfd, &ts, nil); err != nil && err != unix.EINTR {
		return fmt.Errorf("ppoll tap: %w", err)
	}
	return nil
}

// tcpOf returns the TCP header of f if f is an IPv4 TCP segment of our connection.
func (c *conn) tcpOf(f []byte) []byte {
	if len(f) < ethLen+ipLen+tcpLen || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return nil
	}
	ip := f[ethLen:]
	if ip[0] != 0x45 || ip[9] != 6 || netip.AddrFrom4([4]byte(ip[12:16])) != c.peer.Addr() {
		return nil
	}
	tcp := ip[ipLen:]
	if binary.BigEndian.Uint16(tcp[0:]) != c.peer.Port() || binary.BigEndian.Uint16(tcp[2:]) != ourPort {
		return nil
	}
	return tcp
}

func (c *conn) ack() error {
	c.acks++
	return c.send(flagACK, nil, false)
}

// send writes one segment with the given flags and payload (a SYN carries the MSS option).
func (c *conn) send(flags byte, payload []byte, syn bool) error {
	opt := 0
	if syn {
		opt = 4
	}
	n := ethLen + ipLen + tcpLen + opt + len(payload)
	if cap(c.out) < n {
		c.out = make([]byte, n)
	}
	f := c.out[:n]
	clear(f)
	copy(f[0:], slirpGatewayMAC)
	copy(f[6:], c.mac)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[ethLen:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen+tcpLen+opt+len(payload)))
	s, p := c.self.As4(), c.peer.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], p[:])
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(0, ip[:ipLen])))
	tcp := ip[ipLen:]
	binary.BigEndian.PutUint16(tcp[0:], ourPort)
	binary.BigEndian.PutUint16(tcp[2:], c.peer.Port())
	seq := c.sndNxt
	if syn {
		seq = ourISN
	}
	binary.BigEndian.PutUint32(tcp[4:], seq)
	if flags&flagACK != 0 {
		binary.BigEndian.PutUint32(tcp[8:], c.rcvNxt)
	}
	tcp[12] = byte((tcpLen + opt) / 4 << 4)
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	if syn {
		tcp[20], tcp[21] = 2, 4
		binary.BigEndian.PutUint16(tcp[22:], 1460)
	}
	copy(tcp[tcpLen+opt:], payload)
	segLen := tcpLen + opt + len(payload)
	var pseudo [12]byte
	copy(pseudo[0:], s[:])
	copy(pseudo[4:], p[:])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], uint16(segLen))
	binary.BigEndian.PutUint16(tcp[16:], fold(sum16(sum16(0, pseudo[:]), tcp[:segLen])))
	for {
		_, err := unix.Write(c.fd, f)
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
			if _, err := unix.Ppoll(pfd, &unix.Timespec{Sec: 1}, nil); err != nil && err != unix.EINTR {
				return fmt.Errorf("ppoll tap for writing: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("write tap: %w", err)
		}
		break
	}
	if len(payload) > 0 {
		c.sndNxt += uint32(len(payload))
	}
	return nil
}

// arpReply answers an ARP request for our address.
func (c *conn) arpReply(f []byte) {
	r := make([]byte, 42)
	copy(r[0:], f[6:12])
	copy(r[6:], c.mac)
	binary.BigEndian.PutUint16(r[12:], 0x0806)
	copy(r[14:22], f[14:22])
	binary.BigEndian.PutUint16(r[20:], 2)
	copy(r[22:], c.mac)
	s := c.self.As4()
	copy(r[28:], s[:])
	copy(r[32:], f[22:28])
	copy(r[38:], f[28:32])
	unix.Write(c.fd, r)
}

// sum16 adds b's big-endian 16-bit words (a trailing byte padded with zero) to s.
func sum16(s uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// fold turns a sum16 total into the Internet checksum.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
