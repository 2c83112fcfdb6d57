package lab

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// maxFrame bounds a frame on the QEMU stream link (Ethernet + VLAN + jumbo slack); a larger
// length prefix means the stream is out of sync.
const maxFrame = 65536

// readStreamFrame reads one frame of QEMU's `-netdev stream` protocol: a 4-byte big-endian length
// followed by that many bytes of Ethernet frame.
func readStreamFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("read stream frame: length %d out of range (1..%d)", n, maxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read stream frame of %d bytes: %w", n, err)
	}
	return buf, nil
}

// appendStreamFrame appends frame with its length prefix to dst.
func appendStreamFrame(dst, frame []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(frame)))
	return append(dst, frame...)
}

// PcapWriter writes a classic pcap file (LINKTYPE_ETHERNET, microsecond timestamps). It is safe
// for concurrent use. A nil *PcapWriter discards everything.
type PcapWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// NewPcapWriter writes the pcap global header to w.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4) // magic, microseconds
	binary.LittleEndian.PutUint16(h[4:], 2)          // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], maxFrame) // snaplen
	binary.LittleEndian.PutUint32(h[20:], 1)        // LINKTYPE_ETHERNET
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("write pcap header: %w", err)
	}
	return &PcapWriter{w: w}, nil
}

// WriteFrame records one frame seen at time t. The first write error sticks and is returned by Err.
func (p *PcapWriter) WriteFrame(t time.Time, frame []byte) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	us := t.UnixMicro()
	rec := binary.LittleEndian.AppendUint32(p.buf[:0], uint32(us/1e6))
	rec = binary.LittleEndian.AppendUint32(rec, uint32(us%1e6))
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(frame)))
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(frame)))
	p.buf = append(rec, frame...)
	if _, err := p.w.Write(p.buf); err != nil {
		p.err = fmt.Errorf("write pcap record: %w", err)
	}
}

// Err returns the first write error.
func (p *PcapWriter) Err() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// datagramLink adapts a connected UDP socket (QEMU's `-netdev dgram`: one Ethernet frame per
// datagram, no length prefix) to the stream framing the lab's pumps speak.
type datagramLink struct {
	c       *net.UDPConn
	rbuf    []byte
	pending []byte
}

func newDatagramLink(c *net.UDPConn) *datagramLink {
	return &datagramLink{c: c, rbuf: make([]byte, 4+maxFrame)}
}

// Read returns the next datagram as a length-prefixed frame (possibly over several calls).
func (d *datagramLink) Read(p []byte) (int, error) {
	if len(d.pending) == 0 {
		n, err := d.c.Read(d.rbuf[4:])
		if err != nil {
			return 0, err
		}
		binary.BigEndian.PutUint32(d.rbuf, uint32(n))
		d.pending = d.rbuf[:4+n]
	}
	k := copy(p, d.pending)
	d.pending = d.pending[k:]
	return k, nil
}

// Write sends each length-prefixed frame in p as one datagram.
func (d *datagramLink) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) >= 4 {
		n := int(binary.BigEndian.Uint32(p))
		if 4+n > len(p) {
			return total - len(p), fmt.Errorf("write datagram: frame of %d bytes cut short", n)
		}
		if _, err := d.c.Write(p[4 : 4+n]); err != nil {
			return total - len(p), err
		}
		p = p[4+n:]
	}
	return total, nil
}

func (d *datagramLink) Close() error { return d.c.Close() }
