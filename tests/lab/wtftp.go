package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// TFTP opcodes and error codes (RFC 1350 §5, RFC 2347).
const (
	tftpRRQ   = 1
	tftpWRQ   = 2
	tftpDATA  = 3
	tftpACK   = 4
	tftpERROR = 5
	tftpOACK  = 6

	tftpErrUndefined  = 0
	tftpErrNotFound   = 1
	tftpErrIllegalOp  = 4
	tftpErrBadOptions = 8
)

// Limits of the windowed server: blksize is capped so one DATA fits a 1500-byte MTU
// (1500 − 20 IPv4 − 8 UDP − 4 TFTP); windowsize is capped at 512 blocks.
const (
	maxBlksize    = 1468
	maxWindowsize = 512
	tftpRetries   = 8
)

// windowedServer is the lab's own TFTP server: RRQ only, octet/netascii treated alike, options
// blksize (RFC 2348), tsize and timeout (RFC 2349), windowsize (RFC 7440). Each transfer gets its
// own port (its TID), as RFC 1350 asks.
type windowedServer struct {
	l    *Lab
	conn net.PacketConn
}

// rrq is a parsed read request.
type rrq struct {
	name string
	mode string
	opts map[string]string // lower-case option names
	keys []string          // options in request order
}

// parseRRQ decodes an RRQ packet (opcode included).
func parseRRQ(p []byte) (rrq, error) {
	if len(p) < 2 || binary.BigEndian.Uint16(p) != tftpRRQ {
		return rrq{}, errors.New("not an RRQ")
	}
	fields := strings.Split(string(p[2:]), "\x00")
	if len(fields) < 3 || fields[len(fields)-1] != "" {
		return rrq{}, errors.New("RRQ fields not NUL-terminated")
	}
	fields = fields[:len(fields)-1]
	r := rrq{name: fields[0], mode: strings.ToLower(fields[1]), opts: map[string]string{}}
	if r.name == "" {
		return rrq{}, errors.New("RRQ with an empty file name")
	}
	if r.mode != "octet" && r.mode != "netascii" {
		return rrq{}, fmt.Errorf("RRQ mode %q not supported", fields[1])
	}
	rest := fields[2:]
	if len(rest)%2 != 0 {
		return rrq{}, errors.New("RRQ option without a value")
	}
	for i := 0; i < len(rest); i += 2 {
		k := strings.ToLower(rest[i])
		r.opts[k] = rest[i+1]
		r.keys = append(r.keys, k)
	}
	return r, nil
}

// negotiated is the outcome of option negotiation.
type negotiated struct {
	blksize, windowsize int
	timeout             time.Duration
	oack                []byte // nil when no option was accepted
}

// negotiate answers the options of r for a file of size bytes (RFC 2347: unknown or bad options
// are left out of the OACK).
func negotiate(r rrq, size int) negotiated {
	n := negotiated{blksize: 512, windowsize: 1, timeout: tftpTimeout}
	var oack []byte
	add := func(k, v string) {
		if oack == nil {
			oack = binary.BigEndian.AppendUint16(nil, tftpOACK)
		}
		oack = append(append(append(append(oack, k...), 0), v...), 0)
	}
	for _, k := range r.keys {
		v, err := strconv.Atoi(r.opts[k])
		switch {
		case err != nil:
		case k == "blksize" && v >= 8:
			n.blksize = min(v, maxBlksize)
			add(k, strconv.Itoa(n.blksize))
		case k == "windowsize" && v >= 1:
			n.windowsize = min(v, maxWindowsize)
			add(k, strconv.Itoa(n.windowsize))
		case k == "tsize" && v == 0:
			add(k, strconv.Itoa(size))
		case k == "timeout" && v >= 1 && v <= 255:
			n.timeout = time.Duration(v) * time.Second
			add(k, strconv.Itoa(v))
		}
	}
	n.oack = oack
	return n
}

func tftpError(code uint16, msg string) []byte {
	p := binary.BigEndian.AppendUint16(nil, tftpERROR)
	p = binary.BigEndian.AppendUint16(p, code)
	return append(append(p, msg...), 0)
}

func (w *windowedServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, peer, err := w.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		p := append([]byte(nil), buf[:n]...)
		go w.transfer(p, peer)
	}
}

func (w *windowedServer) transfer(p []byte, peer net.Addr) {
	l := w.l
	r, err := parseRRQ(p)
	if err != nil {
		l.Logf("tftp: bad request from %v: %v", peer, err)
		w.conn.WriteTo(tftpError(tftpErrIllegalOp, err.Error()), peer)
		return
	}
	local := LabAddr
	if ua, ok := peer.(*net.UDPAddr); ok && ua.IP.To4() == nil {
		local = LabAddr6
	}
	conn, err := l.udpConn(local, 0) // a fresh TID
	if err != nil {
		l.Logf("tftp: RRQ %q: %v", r.name, err)
		return
	}
	defer conn.Close()
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	l.inj.addTFTPPort(port)
	f, ok := l.file(r.name)
	if !ok {
		l.Logf("tftp: RRQ %q opts %v: not found", r.name, r.opts)
		conn.WriteTo(tftpError(tftpErrNotFound, "file not found"), peer)
		return
	}
	data := f.served()
	neg := negotiate(r, len(data))
	l.Logf("tftp: RRQ %q (%d bytes) opts %v -> blksize %d windowsize %d", r.name, len(data), r.opts, neg.blksize, neg.windowsize)
	t := &wtransfer{conn: conn, peer: peer, data: data, neg: neg, errorAfter: f.ErrorAfter, buf: make([]byte, 2048)}
	start := time.Now()
	err = t.run()
	el := time.Since(start)
	if err != nil {
		l.Logf("tftp: transfer %q failed after %d datagrams: %v", r.name, t.sent, err)
		return
	}
	l.Logf("tftp: sent %q in %.3fs (%d datagrams, %d retransmitted, %.1f MB/s)", r.name, el.Seconds(), t.sent, t.resent,
		float64(len(data))/el.Seconds()/1e6)
}

// wtransfer is one windowed RRQ transfer.
type wtransfer struct {
	conn       net.PacketConn
	peer       net.Addr
	data       []byte
	neg        negotiated
	errorAfter int
	buf        []byte

	sent, resent int
}

func (t *wtransfer) send(p []byte) error {
	t.sent++
	_, err := t.conn.WriteTo(p, t.peer)
	return err
}

// waitAck reads until an ACK (or ERROR) from the peer's address and port arrives or deadline
// passes (ok false). Packets from other TIDs get ERROR 5 and are otherwise ignored.
func (t *wtransfer) waitAck(deadline time.Time) (block uint16, ok bool, err error) {
	t.conn.SetReadDeadline(deadline)
	for {
		n, from, err := t.conn.ReadFrom(t.buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
				return 0, false, nil
			}
			return 0, false, err
		}
		if from.String() != t.peer.String() {
			t.conn.WriteTo(tftpError(5, "unknown transfer ID"), from)
			continue
		}
		if n < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(t.buf) {
		case tftpACK:
			return binary.BigEndian.Uint16(t.buf[2:]), true, nil
		case tftpERROR:
			return 0, false, fmt.Errorf("client sent ERROR %d %q", binary.BigEndian.Uint16(t.buf[2:]),
				strings.TrimRight(string(t.buf[4:n]), "\x00"))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (t *wtransfer) run() error {
	bs := t.neg.blksize
	nblocks := len(t.data)/bs + 1 // the last block is short (possibly empty)
	if t.neg.oack != nil {
		acked := false
		for try := 0; try < tftpRetries && !acked; try++ {
			if try > 0 {
				t.resent++
			}
			if err := t.send(t.neg.oack); err != nil {
				return err
			}
			deadline := time.Now().Add(t.neg.timeout)
			for !acked {
				b, ok, err := t.waitAck(deadline)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				acked = b == 0
			}
		}
		if !acked {
			return errors.New("no ACK for the OACK")
		}
	}
	base := 1 // first unacknowledged block (1-based, not wrapped)
	tries := 0
	dupResent := 0 // the base for which a duplicate ACK already triggered an early resend
	for base <= nblocks {
		end := min(base+t.neg.windowsize-1, nblocks)
		for b := base; b <= end; b++ {
			off := (b - 1) * bs
			// The ERROR replaces the first block that would carry byte errorAfter, the last
			// (short) block included: a file just over a round size ends in that block.
			if t.errorAfter >= 0 && t.errorAfter < len(t.data) && off+bs > t.errorAfter {
				t.send(tftpError(tftpErrUndefined, errInjected.Error()))
				return fmt.Errorf("%w at byte %d", errInjected, off)
			}
			p := binary.BigEndian.AppendUint16(nil, tftpDATA)
			p = binary.BigEndian.AppendUint16(p, uint16(b))
			p = append(p, t.data[off:min(off+bs, len(t.data))]...)
			if err := t.send(p); err != nil {
				return err
			}
		}
		// Wait for progress. A duplicate ACK of the block before the window is not a reason
		// to resend in lock-step (that is the Sorcerer's Apprentice bug, RFC 1123 §4.2.3.1);
		// with a window it means the window's first block was lost, so resend once early.
		deadline := time.Now().Add(t.neg.timeout)
		progressed := false
		for !progressed {
			blk, ok, err := t.waitAck(deadline)
			if err != nil {
				return err
			}
			if !ok {
				if tries++; tries > tftpRetries {
					return fmt.Errorf("no ACK for block %d after %d tries", base, tries)
				}
				t.resent += end - base + 1
				break
			}
			// Map the 16-bit ACK onto [base-1, end]; anything else is stale.
			for b := end; b >= base; b-- {
				if uint16(b) == blk {
					base, tries, progressed = b+1, 0, true
					break
				}
			}
			if !progressed && uint16(base-1) == blk && t.neg.windowsize > 1 && dupResent != base {
				dupResent = base
				t.resent += end - base + 1
				break
			}
		}
	}
	return nil
}

// addTFTPPort makes frames to or from port count as TFTP for ScopeTFTP.
func (in *Injector) addTFTPPort(port uint16) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.tftpPort = port
}
