package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Defaults for Options fields left zero.
const (
	DefaultBlockSize      = 1428 // fits a 1500-byte MTU: 1500 - 20 (IPv4) - 8 (UDP) - 4 (TFTP) - 40 spare for IPv6
	DefaultInitialTimeout = time.Second
	DefaultMinTimeout     = 100 * time.Millisecond
	DefaultMaxTimeout     = 4 * time.Second
	DefaultRetries        = 6
	DefaultMaxBadPackets  = 20 // as SLOF's libnet tftp.c
	DefaultProgressEvery  = 1 << 20
)

// Options tune a transfer. The zero value asks blksize 1428 and tsize, lock-step, no size limit.
type Options struct {
	// BlockSize is the blksize to ask for (RFC 2348, 8..65464). 0 means DefaultBlockSize; 512 sends no blksize
	// option. Sizes above the path MTU rely on IP fragmentation.
	BlockSize int
	// WindowSize is the windowsize to ask for (RFC 7440, 1..65535). 0 or 1 means lock-step, no option.
	WindowSize int
	// NoTransferSize leaves out "tsize 0" (RFC 2349) from the request.
	NoTransferSize bool
	// MaxSize is the largest file accepted, in bytes; 0 means no limit. A larger tsize aborts before any data;
	// a server that sends more aborts as soon as the limit is crossed. Both send ERROR 3 and return ErrTooLarge.
	MaxSize int64
	// InitialTimeout, MinTimeout and MaxTimeout bound the adaptive retransmission timeout.
	InitialTimeout, MinTimeout, MaxTimeout time.Duration
	// Retries is the number of consecutive timeouts tolerated before the transfer fails with ErrTimeout. With
	// exponential backoff the total wait is bounded by about InitialTimeout·2^Retries, capped per step by MaxTimeout.
	Retries int
	// MaxBadPackets is the number of consecutive malformed or unexpected packets tolerated.
	MaxBadPackets int
	// Clock drives timeouts; nil means the wall clock. Tests pass a faketime.ManualClock.
	Clock tcpip.Clock
	// OnSize, if set, is called with the tsize from the OACK before any data is acknowledged, so the caller can
	// place the file or refuse it; an error aborts the transfer (ERROR 3 to the server) and is returned wrapped.
	// It is not called when the server does not report tsize.
	OnSize func(size int64) error
	// Progress, if set, is called from the transfer goroutine whenever another ProgressEvery bytes have arrived,
	// and once at the end.
	Progress func(Progress)
	// ProgressEvery is the progress granularity in bytes; 0 means DefaultProgressEvery.
	ProgressEvery int64
}

// Progress is a snapshot of a running transfer.
type Progress struct {
	Received int64 // bytes written so far
	Size     int64 // tsize announced by the server, or -1
	Done     bool  // the last block has arrived
}

// Stats counts what happened during a transfer (style B18).
type Stats struct {
	PacketsSent     uint64 // RRQ, ACK and ERROR packets sent, retransmissions included
	PacketsReceived uint64 // datagrams read from the socket
	Retransmits     uint64 // RRQ or ACK sent again after a timeout
	Timeouts        uint64 // timer expiries without progress
	Duplicates      uint64 // DATA (or OACK) already received
	OutOfOrder      uint64 // DATA ahead of the expected block (a gap)
	BadPackets      uint64 // malformed or unexpected packets from the server
	ForeignPackets  uint64 // packets from another address or port than the server's TID (answered with ERROR 5)
	Fallbacks       uint64 // RRQ repeated without options after the server refused them
}

// Result describes a finished transfer.
type Result struct {
	Size         int64 // bytes written
	TransferSize int64 // tsize from the OACK, or -1
	BlockSize    int   // negotiated block size
	WindowSize   int   // negotiated window size (1 = lock-step)
	Stats        Stats
}

// Client fetches files by TFTP. The zero Client is not usable: Listen must be set.
type Client struct {
	// Listen opens a fresh UDP socket for one transfer; the transfer closes it. In the guest it returns a gonet
	// UDP conn on the gVisor stack, on the host net.ListenPacket("udp", ":0").
	Listen func() (net.PacketConn, error)
	Options
}

// Get reads name from server (UDP port normally 69) into w, starting at offset 0. Errors read like
// `tftp RRQ "pxelinux.cfg/default" from 10.0.2.2:69: file not found (code 1)`.
func (c *Client) Get(ctx context.Context, server netip.AddrPort, name string, w io.WriterAt) (Result, error) {
	res, err := c.get(ctx, server, name, w)
	if err != nil {
		return res, fmt.Errorf("tftp RRQ %q from %s: %w", name, server, err)
	}
	return res, nil
}

func (c *Client) get(ctx context.Context, server netip.AddrPort, name string, w io.WriterAt) (Result, error) {
	res := Result{TransferSize: -1}
	if c.Listen == nil {
		return res, errors.New("no socket opener (Client.Listen is nil)")
	}
	if len(name) == 0 || len(name) > 1024 {
		return res, fmt.Errorf("bad file name length %d", len(name))
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return res, errors.New("file name contains NUL")
		}
	}
	o := c.Options.withDefaults()
	if o.BlockSize < minBlockSize || o.BlockSize > maxBlockSize {
		return res, fmt.Errorf("block size %d outside %d..%d", o.BlockSize, minBlockSize, maxBlockSize)
	}
	if o.WindowSize > maxWindowSize {
		return res, fmt.Errorf("window size %d above %d", o.WindowSize, maxWindowSize)
	}
	conn, err := c.Listen()
	if err != nil {
		return res, fmt.Errorf("open socket: %w", err)
	}
	// A whole window must fit the socket's receive buffer, or its tail is dropped and only a timeout recovers.
	// Host sockets grow on request (up to net.core.rmem_max); a gVisor socket's buffer is set by whoever opens it.
	if rb, ok := conn.(interface{ SetReadBuffer(int) error }); ok && o.WindowSize > 1 {
		rb.SetReadBuffer(2 * o.WindowSize * (o.BlockSize + 256))
	}
	t := &transfer{
		ctx:    ctx,
		o:      o,
		conn:   conn,
		server: netip.AddrPortFrom(server.Addr().Unmap(), server.Port()),
		name:   name,
		w:      w,
		res:    &res,
	}
	defer t.close()
	t.start()
	withOptions := true
	for {
		fallback, err := t.run(withOptions)
		if fallback && withOptions {
			res.Stats.Fallbacks++
			withOptions = false
			continue
		}
		return res, err
	}
}

func (o Options) withDefaults() Options {
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.WindowSize < 1 {
		o.WindowSize = 1
	}
	if o.InitialTimeout <= 0 {
		o.InitialTimeout = DefaultInitialTimeout
	}
	if o.MinTimeout <= 0 {
		o.MinTimeout = DefaultMinTimeout
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	if o.MaxTimeout < o.MinTimeout {
		o.MaxTimeout = o.MinTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.MaxBadPackets <= 0 {
		o.MaxBadPackets = DefaultMaxBadPackets
	}
	if o.Clock == nil {
		o.Clock = tcpip.NewStdClock()
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	return o
}

// datagram is one read from the socket, handed from the reader goroutine to the transfer loop.
type datagram struct {
	buf  []byte // full buffer; return it to transfer.free
	n    int
	from netip.AddrPort
	err  error
}

// transfer is the state of one Get.
type transfer struct {
	ctx    context.Context
	o      Options
	conn   net.PacketConn
	server netip.AddrPort // where the RRQ goes (port 69)
	name   string
	w      io.WriterAt
	res    *Result

	rx    chan datagram
	free  chan []byte
	done  chan struct{}
	fired chan struct{}
	timer tcpip.Timer
	// deadline is when the current wait expires; armed is when the timer is set to fire.
	deadline, armed tcpip.MonotonicTime

	out []byte // scratch for outgoing packets
}

const rxBuffers = 8

func (t *transfer) start() {
	t.rx = make(chan datagram, rxBuffers)
	t.free = make(chan []byte, rxBuffers)
	t.done = make(chan struct{})
	t.fired = make(chan struct{}, 1)
	size := t.o.BlockSize + headerLen + 1 // one spare byte detects oversized DATA
	if size < 1024 {
		size = 1024
	}
	for i := 0; i < rxBuffers; i++ {
		t.free <- make([]byte, size)
	}
	t.out = make([]byte, 0, 1500)
	go t.read()
}

func (t *transfer) close() {
	close(t.done)
	t.conn.Close()
	if t.timer != nil {
		t.timer.Stop()
	}
}

// read runs in its own goroutine and feeds t.rx until the socket is closed.
func (t *transfer) read() {
	for {
		var buf []byte
		select {
		case buf = <-t.free:
		case <-t.done:
			return
		}
		n, addr, err := t.conn.ReadFrom(buf)
		d := datagram{buf: buf, n: n, err: err}
		if ua, ok := addr.(*net.UDPAddr); ok {
			ap := ua.AddrPort()
			d.from = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		select {
		case t.rx <- d:
		case <-t.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// arm sets the wait deadline to now+d, moving the timer earlier if needed. The timer is armed before the packet
// it guards is sent, so a test that sees the packet can advance a manual clock past the deadline.
func (t *transfer) arm(d time.Duration) {
	now := t.o.Clock.NowMonotonic()
	t.deadline = now.Add(d)
	if t.timer == nil {
		t.timer = t.o.Clock.AfterFunc(d, t.fire)
		t.armed = t.deadline
		return
	}
	if t.deadline.Before(t.armed) || !now.Before(t.armed) {
		t.timer.Reset(d)
		t.armed = t.deadline
	}
}

func (t *transfer) fire() {
	select {
	case t.fired <- struct{}{}:
	default:
	}
}

func (t *transfer) send(p []byte, to netip.AddrPort) error {
	t.res.Stats.PacketsSent++
	_, err := t.conn.WriteTo(p, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return fmt.Errorf("send to %s: %w", to, err)
	}
	return nil
}

// abort sends an ERROR to the peer (best effort) and returns err.
func (t *transfer) abort(to netip.AddrPort, code uint16, msg string, err error) error {
	t.out = appendERROR(t.out[:0], code, msg)
	t.send(t.out, to)
	return err
}

// run performs one RRQ exchange. fallback=true asks the caller to retry without options.
func (t *transfer) run(withOptions bool) (fallback bool, err error) {
	o := t.o
	blockSize, window := plainBlockSize, 1
	var asked []option
	if withOptions {
		if o.BlockSize != plainBlockSize {
			asked = append(asked, option{"blksize", strconv.Itoa(o.BlockSize)})
		}
		if !o.NoTransferSize {
			asked = append(asked, option{"tsize", "0"})
		}
		if o.WindowSize > 1 {
			asked = append(asked, option{"windowsize", strconv.Itoa(o.WindowSize)})
		}
	}
	t.res.TransferSize = -1
	t.res.BlockSize, t.res.WindowSize = blockSize, window
	rrq := appendRRQ(nil, t.name, asked)
	rto := newRTO(o.InitialTimeout, o.MinTimeout, o.MaxTimeout)

	var (
		tid         netip.AddrPort          // server's transfer ID; zero until the first answer
		started     bool                    // OACK or DATA 1 seen
		expect      uint16              = 1 // next block number
		pos         int64                   // bytes received in order
		inWindow    int                     // blocks received since the last ACK
		lastAck     uint16                  // block number in the last ACK sent
		gapAcked    bool                    // an ACK for a gap was sent and no progress since
		timeouts    int                     // consecutive
		bad         int                     // consecutive
		sentAt      tcpip.MonotonicTime     // when the outstanding request (RRQ or ACK) was sent, for RTT samples
		lastAckAt   tcpip.MonotonicTime     // when any ACK last went out, repeats included (Sorcerer's Apprentice guard)
		retransmit  bool                    // the outstanding request was retransmitted (Karn)
		wrapped     bool                    // block numbers have rolled over at least once
		nextReport  = o.ProgressEvery
		progressSet = o.Progress != nil
	)
	report := func(done bool) {
		if progressSet {
			o.Progress(Progress{Received: pos, Size: t.res.TransferSize, Done: done})
		}
	}
	sendACK := func(block uint16) error {
		t.out = appendACK(t.out[:0], block)
		lastAck = block
		sentAt = o.Clock.NowMonotonic()
		lastAckAt = sentAt
		retransmit = false
		t.arm(rto.current())
		return t.send(t.out, tid)
	}
	// reACK answers a duplicate (OACK or DATA) by repeating the last ACK, unless an ACK went out less than a
	// quarter of the retransmission timeout ago: then the duplicate crossed that ACK on the wire, and answering it
	// would start the Sorcerer's Apprentice loop (RFC 1123 §4.2.3.1) with servers that resend on every ACK.
	// A duplicate is no progress: the wait is not pushed back, so a server that repeats one packet forever still
	// meets the Retries limit. The next answer may reply to either ACK, so it gives no RTT sample (Karn).
	reACK := func() error {
		now := o.Clock.NowMonotonic()
		if now.Sub(lastAckAt) < rto.current()/4 {
			return nil
		}
		t.out = appendACK(t.out[:0], lastAck)
		lastAckAt = now
		retransmit = true
		return t.send(t.out, tid)
	}

	t.arm(rto.current())
	sentAt = o.Clock.NowMonotonic()
	if err := t.send(rrq, t.server); err != nil {
		return false, err
	}
	for {
		select {
		case <-t.ctx.Done():
			to := t.server
			if tid.IsValid() {
				to = tid
			}
			return false, t.abort(to, ErrCodeUndefined, "transfer cancelled", t.ctx.Err())

		case <-t.fired:
			now := o.Clock.NowMonotonic()
			if now.Before(t.deadline) {
				t.timer.Reset(t.deadline.Sub(now))
				t.armed = t.deadline
				continue
			}
			t.res.Stats.Timeouts++
			timeouts++
			if timeouts > o.Retries {
				err := fmt.Errorf("%w after %d retransmissions (block %d, %d bytes received)",
					ErrTimeout, o.Retries, expect, pos)
				if tid.IsValid() {
					return false, t.abort(tid, ErrCodeUndefined, "timeout", err)
				}
				return false, err
			}
			// A duplicate answered just now (reACK) already repeated the ACK: count the expiry, do not send it twice.
			justAcked := started && now.Sub(lastAckAt) < rto.current()/4
			rto.backoff()
			switch {
			case !started:
				t.res.Stats.Retransmits++
				t.arm(rto.current())
				if err := t.send(rrq, t.server); err != nil {
					return false, err
				}
			case justAcked:
				t.arm(rto.current())
			default:
				t.res.Stats.Retransmits++
				if err := sendACK(expect - 1); err != nil {
					return false, err
				}
				inWindow = 0
			}
			retransmit = true

		case d := <-t.rx:
			if d.err != nil {
				return false, fmt.Errorf("receive: %w", d.err)
			}
			t.res.Stats.PacketsReceived++
			p := packet(d.buf[:d.n])
			fallback, finished, err := func() (bool, bool, error) {
				defer func() { t.free <- d.buf }()
				// Transfer ID checks (RFC 1350 §4).
				if tid.IsValid() {
					if d.from != tid {
						t.res.Stats.ForeignPackets++
						t.out = appendERROR(t.out[:0], ErrCodeUnknownTID, "unknown transfer ID")
						t.send(t.out, d.from)
						return false, false, nil
					}
				} else if d.from.Addr() != t.server.Addr() {
					t.res.Stats.ForeignPackets++
					t.out = appendERROR(t.out[:0], ErrCodeUnknownTID, "unknown transfer ID")
					t.send(t.out, d.from)
					return false, false, nil
				}
				badPacket := func(why string) (bool, bool, error) {
					t.res.Stats.BadPackets++
					bad++
					if bad > o.MaxBadPackets {
						to := d.from
						return false, false, t.abort(to, ErrCodeIllegalOp, why,
							fmt.Errorf("%w: %d bad packets in a row, last: %s", ErrProtocol, bad, why))
					}
					return false, false, nil
				}
				if len(p) < headerLen {
					return badPacket("short packet")
				}
				switch p.opcode() {
				case opERROR:
					e, _ := parseERROR(p)
					if !started && withOptions && len(asked) > 0 &&
						(e.Code == ErrCodeOptionRefused || e.Code == ErrCodeIllegalOp) {
						return true, false, nil
					}
					return false, false, e

				case opOACK:
					if started {
						if pos == 0 && expect == 1 {
							// Our ACK 0 was lost and the server repeats its OACK.
							t.res.Stats.Duplicates++
							return false, false, reACK()
						}
						return badPacket("OACK during data")
					}
					tid = d.from
					if !withOptions || len(asked) == 0 {
						return false, false, t.abort(tid, ErrCodeOptionRefused, "no options requested",
							fmt.Errorf("%w: OACK to a request without options", ErrProtocol))
					}
					opts, err := parseOACK(p)
					if err != nil {
						return false, false, t.abort(tid, ErrCodeOptionRefused, "malformed OACK",
							fmt.Errorf("%w: %v", ErrProtocol, err))
					}
					neg, err := negotiate(asked, opts)
					if err != nil {
						return false, false, t.abort(tid, ErrCodeOptionRefused, err.Error(),
							fmt.Errorf("%w: %v", ErrProtocol, err))
					}
					blockSize, window = neg.blockSize, neg.window
					t.res.BlockSize, t.res.WindowSize, t.res.TransferSize = blockSize, window, neg.tsize
					if blockSize > len(d.buf)-headerLen-1 {
						return false, false, t.abort(tid, ErrCodeOptionRefused, "blksize too large",
							fmt.Errorf("%w: blksize %d larger than asked", ErrProtocol, blockSize))
					}
					if o.MaxSize > 0 && neg.tsize > o.MaxSize {
						return false, false, t.abort(tid, ErrCodeDiskFull, "file too large",
							fmt.Errorf("%w: tsize %d bytes, limit %d", ErrTooLarge, neg.tsize, o.MaxSize))
					}
					if o.OnSize != nil && neg.tsize >= 0 {
						if err := o.OnSize(neg.tsize); err != nil {
							return false, false, t.abort(tid, ErrCodeDiskFull, "refused by client", err)
						}
					}
					started = true
					if !retransmit {
						rto.sample(o.Clock.NowMonotonic().Sub(sentAt))
					}
					timeouts, bad = 0, 0
					return false, false, sendACK(0)

				case opDATA:
					if !started {
						// The server ignored our options (or we sent none): 512-byte lock-step.
						tid = d.from
						started = true
						blockSize, window = plainBlockSize, 1
						t.res.BlockSize, t.res.WindowSize = blockSize, window
					}
					n := len(p) - headerLen
					if n > blockSize {
						return badPacket(fmt.Sprintf("DATA of %d bytes exceeds blksize %d", n, blockSize))
					}
					b := p.block()
					if b != expect && !(wrapped == false && expect == 0 && b == 1 && pos > 0) {
						if int16(b-expect) < 0 {
							t.res.Stats.Duplicates++
							// Our ACK may have been lost: acknowledge again (lock-step only, RFC 1350 §2), but not
							// a duplicate that crossed our ACK (see reACK; atftpd without --prevent-sas resends on
							// every ACK).
							if window == 1 && b == lastAck && pos > 0 {
								return false, false, reACK()
							}
							return false, false, nil
						}
						t.res.Stats.OutOfOrder++
						if window > 1 {
							if !gapAcked {
								// RFC 7440 §4: acknowledge the last block received in sequence, once.
								gapAcked = true
								inWindow = 0
								return false, false, sendACK(expect - 1)
							}
							return false, false, nil
						}
						return badPacket(fmt.Sprintf("DATA %d while expecting %d", b, expect))
					}
					if b != expect {
						// Server rolled over from 65535 to 1 rather than 0.
						expect = 1
					}
					if expect == 0 {
						wrapped = true
					}
					if !retransmit && inWindow == 0 {
						rto.sample(o.Clock.NowMonotonic().Sub(sentAt))
					}
					timeouts, bad = 0, 0
					gapAcked = false
					if o.MaxSize > 0 && pos+int64(n) > o.MaxSize {
						return false, false, t.abort(tid, ErrCodeDiskFull, "file too large",
							fmt.Errorf("%w: more than %d bytes", ErrTooLarge, o.MaxSize))
					}
					if n > 0 {
						if _, err := t.w.WriteAt(p.payload(), pos); err != nil {
							return false, false, t.abort(tid, ErrCodeDiskFull, "write failed",
								fmt.Errorf("write at offset %d: %w", pos, err))
						}
					}
					pos += int64(n)
					t.res.Size = pos
					expect++
					inWindow++
					if n < blockSize {
						if err := sendACK(b); err != nil {
							return false, false, err
						}
						if t.res.TransferSize >= 0 && t.res.TransferSize != pos {
							return false, false, fmt.Errorf("%w: received %d bytes, server announced tsize %d",
								ErrProtocol, pos, t.res.TransferSize)
						}
						report(true)
						return false, true, nil
					}
					if pos >= nextReport {
						report(false)
						nextReport = pos + o.ProgressEvery
					}
					if inWindow >= window {
						inWindow = 0
						return false, false, sendACK(b)
					}
					// Inside a window: the server is alive, push the deadline.
					t.arm(rto.current())
					return false, false, nil

				default:
					return badPacket(fmt.Sprintf("unexpected opcode %d", p.opcode()))
				}
			}()
			if err != nil || fallback {
				return fallback, err
			}
			if finished {
				return false, nil
			}
		}
	}
}

// negotiated holds the accepted OACK values.
type negotiated struct {
	blockSize, window int
	tsize             int64
}

// negotiate checks the server's OACK against what was asked (RFC 2347 §3: the server may only answer options the
// client sent; RFC 2348/7440: values may only be smaller).
func negotiate(asked, got []option) (negotiated, error) {
	n := negotiated{blockSize: plainBlockSize, window: 1, tsize: -1}
	for _, g := range got {
		var want *option
		for i := range asked {
			if asked[i].name == g.name {
				want = &asked[i]
			}
		}
		if want == nil {
			return n, fmt.Errorf("unrequested option %q in OACK", g.name)
		}
		v, err := parseDecimal(g.value)
		if err != nil {
			return n, fmt.Errorf("option %s: %v", g.name, err)
		}
		w, _ := parseDecimal(want.value)
		switch g.name {
		case "blksize":
			if v < minBlockSize || v > w {
				return n, fmt.Errorf("blksize %d outside %d..%d", v, minBlockSize, w)
			}
			n.blockSize = int(v)
		case "windowsize":
			if v < 1 || v > w {
				return n, fmt.Errorf("windowsize %d outside 1..%d", v, w)
			}
			n.window = int(v)
		case "tsize":
			n.tsize = v
		}
	}
	return n, nil
}

// BlockSizeForMTU is the largest blksize whose DATA packets fit one link frame of the given MTU without IP
// fragmentation (IPv4: 20-byte header; IPv6: 40), clamped to RFC 2348's range. For a 1500-byte MTU it is 1468
// over IPv4 and 1448 over IPv6; DefaultBlockSize (1428) fits both and matches QEMU's slirp limit.
func BlockSizeForMTU(mtu int, ipv6 bool) int {
	ipHeader := 20
	if ipv6 {
		ipHeader = 40
	}
	return min(max(mtu-ipHeader-8-headerLen, minBlockSize), maxBlockSize)
}
