package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
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
	// Pipeline is how many blocks to keep in flight when the server negotiates no windowsize (1..1024; 0 or 1
	// means off). It works with servers that answer every ACK with their next unsent block whatever block
	// number the ACK carries, as QEMU's built-in server (libslirp) does: after the OACK the client repeats its
	// ACK 0 Pipeline-1 times and then acknowledges each block as it arrives. Other servers are recognised from
	// their answer to the repeated ACK 0 and get lock-step; see doc.go. A block lost while pipelining restarts
	// the transfer once, lock-step, from offset 0 (Stats.Restarts).
	Pipeline int
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

	// noRefill turns the pipeline's refills off (the behaviour before them), for the A/B in
	// BenchmarkPipelineAckLoss.
	noRefill bool
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
	Restarts        uint64 // transfers started over in lock-step after a block was lost while pipelining
	WindowRefills   uint64 // pipelining: no DATA for a quiet wait, so ACKs were lost and the pipeline was refilled
	RefillACKs      uint64 // ACKs sent by those refills (Pipeline each)
	StalledRefills  uint64 // refills whose first answer came late (the path had only stalled): Pipeline ACKs withheld
}

// Result describes a finished transfer.
type Result struct {
	Size         int64 // bytes written
	TransferSize int64 // tsize from the OACK, or -1
	BlockSize    int   // negotiated block size
	WindowSize   int   // negotiated window size (1 = lock-step)
	Pipeline     int   // blocks kept in flight by ACK counting (Options.Pipeline; 1 = not used)
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
	if o.Pipeline > maxPipeline {
		return res, fmt.Errorf("pipeline %d above %d", o.Pipeline, maxPipeline)
	}
	t := &transfer{
		ctx:    ctx,
		o:      o,
		listen: c.Listen,
		server: netip.AddrPortFrom(server.Addr().Unmap(), server.Port()),
		name:   name,
		w:      w,
		res:    &res,
	}
	if err := t.open(); err != nil {
		return res, err
	}
	defer t.close()
	stop := context.AfterFunc(ctx, t.interrupt)
	defer stop()
	withOptions, pipeline := true, o.Pipeline
	for {
		next, err := t.run(withOptions, pipeline)
		switch {
		case next == outcomeFallback && withOptions:
			res.Stats.Fallbacks++
			withOptions = false
			continue
		case next == outcomeRestart:
			if pipeline <= 1 {
				return res, fmt.Errorf("%w: restart asked without pipelining", ErrProtocol)
			}
			// A fresh socket (a new transfer ID), so no block still in flight from the old session can land in
			// the new one.
			res.Stats.Restarts++
			pipeline = 1
			if err := t.reopen(); err != nil {
				return res, err
			}
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
	if o.Pipeline < 1 {
		o.Pipeline = 1
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

// maxPipeline bounds Options.Pipeline: the blocks in flight must fit the socket's receive buffer and the NIC's
// receive ring, or the burst's tail is dropped and every transfer restarts lock-step.
const maxPipeline = 1024

// transfer is the state of one Get: its socket and timer, shared by the RRQ exchanges (a fallback without options,
// a restart in lock-step).
//
// One goroutine does everything: it reads the socket, answers, and writes the data. The retransmission timer and
// the context do not feed a channel; they interrupt a blocked read by moving the socket's read deadline into the
// past (interrupt), and the loop looks at what woke it. The deadline is kept lazily: progress only moves
// t.deadline forward, and the timer, when it fires early, is re-armed for the rest of the wait.
type transfer struct {
	ctx    context.Context
	o      Options
	listen func() (net.PacketConn, error)
	server netip.AddrPort // where the RRQ goes (port 69)
	name   string
	w      io.WriterAt
	res    *Result

	mu    sync.Mutex     // guards conn (replaced by reopen) and woken against the timer and context callbacks
	conn  net.PacketConn // guarded by mu for replacement; the transfer goroutine reads it without the lock
	woken bool           // the read deadline was moved into the past to interrupt a read

	fired atomic.Bool // the timer expired since the loop last looked
	timer tcpip.Timer
	// deadline is when the current wait expires; armed is when the timer is set to fire.
	deadline, armed tcpip.MonotonicTime

	peer    netip.AddrPort                            // the socket is connected to it; write goes there
	write   func([]byte) (int, error)                 // conn's Write, once connected
	readAP  func([]byte) (int, netip.AddrPort, error) // conn's ReadFromUDPAddrPort, if it has one
	writeAP func([]byte, netip.AddrPort) (int, error) // conn's WriteToUDPAddrPort, if it has one

	buf []byte // receive buffer, one datagram at a time
	out []byte // scratch for outgoing packets
}

// pastDeadline is a read deadline that has expired: setting it makes a blocked read return at once.
var pastDeadline = time.Unix(1, 0)

// open makes the transfer's socket and buffers.
func (t *transfer) open() error {
	conn, err := t.listen()
	if err != nil {
		return fmt.Errorf("open socket: %w", err)
	}
	// A whole window must fit the socket's receive buffer, or its tail is dropped and only a timeout recovers.
	// Host sockets grow on request (up to net.core.rmem_max); a gVisor socket's buffer is set by whoever opens it.
	if rb, ok := conn.(interface{ SetReadBuffer(int) error }); ok {
		if inFlight := max(t.o.WindowSize, t.o.Pipeline); inFlight > 1 {
			// Never below Linux's usual default (212992 bytes), which a small request would shrink.
			rb.SetReadBuffer(max(2*inFlight*(t.o.BlockSize+256), 256<<10))
		}
	}
	t.readAP, t.writeAP, t.peer, t.write = nil, nil, netip.AddrPort{}, nil
	if c, ok := conn.(interface {
		ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
	}); ok {
		t.readAP = c.ReadFromUDPAddrPort
	}
	if c, ok := conn.(interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
	}); ok {
		t.writeAP = c.WriteToUDPAddrPort
	}
	t.mu.Lock()
	t.conn, t.woken = conn, false
	t.mu.Unlock()
	if t.buf == nil {
		size := t.o.BlockSize + headerLen + 1 // one spare byte detects oversized DATA
		if size < 1024 {
			size = 1024
		}
		t.buf = make([]byte, size)
		t.out = make([]byte, 0, 1500)
	}
	return nil
}

// reopen closes the socket and opens a fresh one (a new client transfer ID).
func (t *transfer) reopen() error {
	t.conn.Close()
	return t.open()
}

func (t *transfer) close() {
	t.conn.Close()
	if t.timer != nil {
		t.timer.Stop()
	}
}

// interrupt makes a blocked read (now or next) return with a timeout error. It runs on the timer's and the
// context's goroutines.
func (t *transfer) interrupt() {
	t.mu.Lock()
	t.woken = true
	t.conn.SetReadDeadline(pastDeadline)
	t.mu.Unlock()
}

// settle clears an interrupt after a read returned a timeout; false means the timeout was not ours.
func (t *transfer) settle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.woken {
		return false
	}
	t.woken = false
	t.conn.SetReadDeadline(time.Time{})
	return true
}

func (t *transfer) fire() {
	t.fired.Store(true)
	t.interrupt()
}

// read returns the next datagram in t.buf and its sender.
func (t *transfer) read() (int, netip.AddrPort, error) {
	if t.readAP != nil {
		n, from, err := t.readAP(t.buf)
		return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
	}
	n, addr, err := t.conn.ReadFrom(t.buf)
	var from netip.AddrPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		from = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return n, from, err
}

// arm sets the wait deadline to now+d, moving the timer earlier if needed. The timer is armed before the packet
// it guards is sent, so a test that sees the packet can advance a manual clock past the deadline.
func (t *transfer) arm(now tcpip.MonotonicTime, d time.Duration) {
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

// wakeBy makes the timer fire no later than at, before the wait's deadline (the pipeline's quiet check). It
// resets the timer only when it is set later (or has run), so calling it for every block costs a comparison.
func (t *transfer) wakeBy(now, at tcpip.MonotonicTime) {
	if t.armed.After(at) || !now.Before(t.armed) {
		t.timer.Reset(at.Sub(now))
		t.armed = at
	}
}

func (t *transfer) send(p []byte, to netip.AddrPort) error {
	t.res.Stats.PacketsSent++
	var err error
	if to == t.peer && t.write != nil {
		_, err = t.write(p)
	} else if t.writeAP != nil {
		_, err = t.writeAP(p, to)
	} else {
		_, err = t.conn.WriteTo(p, net.UDPAddrFromAddrPort(to))
	}
	if err != nil {
		return fmt.Errorf("send to %s: %w", to, err)
	}
	return nil
}

// connect fixes the socket's peer to the server's transfer ID when the socket can (a gVisor socket then sends
// over a route found once instead of per datagram, and drops packets from anyone else itself).
func (t *transfer) connect(to netip.AddrPort) {
	c, ok := t.conn.(interface {
		Connect(netip.AddrPort) error
		Write([]byte) (int, error)
	})
	if !ok || c.Connect(to) != nil {
		return
	}
	t.peer, t.write = to, c.Write
}

// abort sends an ERROR to the peer (best effort) and returns err.
func (t *transfer) abort(to netip.AddrPort, code uint16, msg string, err error) error {
	t.out = appendERROR(t.out[:0], code, msg)
	t.send(t.out, to)
	return err
}

// outcome is how one RRQ exchange ended.
type outcome int

const (
	outcomeDone     outcome = iota // finished, or failed with an error
	outcomeFallback                // the server refused the options: ask again without
	outcomeRestart                 // a block was lost while pipelining: ask again, lock-step
)

// mode is how a session paces the server.
type mode int

const (
	lockStep  mode = iota // one block per ACK (RFC 1350)
	windowed              // RFC 7440 windowsize negotiated
	probing               // ACK 0 sent Pipeline times; the first answers tell what kind of server this is
	pipelined             // the server answers every ACK with its next block: Pipeline blocks in flight
)

// session is the state of one RRQ exchange.
type session struct {
	t           *transfer
	o           Options
	withOptions bool
	pipeline    int
	asked       []option
	rrq         []byte
	rto         rtoEstimator

	blockSize, window int
	mode              mode
	held              bool                // probing: block 1 arrived and its ACK is held back
	tid               netip.AddrPort      // server's transfer ID; zero until the first answer
	started           bool                // OACK or DATA 1 seen
	expect            uint16              // next block number
	pos               int64               // bytes received in order
	inWindow          int                 // blocks received since the last ACK
	lastAck           uint16              // block number in the last ACK sent
	gapAcked          bool                // an ACK for a gap was sent and no progress since
	timeouts          int                 // consecutive
	bad               int                 // consecutive
	sentAt            tcpip.MonotonicTime // when the outstanding request (RRQ or ACK) was sent, for RTT samples
	lastAckAt         tcpip.MonotonicTime // when any ACK last went out, repeats included (Sorcerer's Apprentice guard)
	retransmit        bool                // the outstanding request was retransmitted (Karn)
	wrapped           bool                // block numbers have rolled over at least once
	quiet             bool                // pipelined: DATA is due before quietAt, else suspect lost ACKs
	suspect           bool                // pipelined: a quiet wait passed; a second one confirms the silence
	confirming        bool                // pipelined: the second wait passed too; a last read before the refill
	lossSeen          bool                // pipelined: a refill proved ACKs lost on this path; quiet is checked closely
	afterRefill       bool                // pipelined: refilled at refilledAt, no DATA since
	refilledAt        tcpip.MonotonicTime // pipelined: when the last refill went out
	debt              int                 // pipelined: blocks still to take without an ACK, undoing a refill into a stall
	quietAt           tcpip.MonotonicTime // pipelined: the last in-order DATA's arrival plus quietWait
	lastDataAt        tcpip.MonotonicTime // pipelined: when the last in-order DATA arrived
	maxGap            time.Duration       // pipelined: longest wait between two blocks without a refill between
	nextReport        int64
}

// run performs one RRQ exchange.
func (t *transfer) run(withOptions bool, pipeline int) (outcome, error) {
	o := t.o
	s := &session{t: t, o: o, withOptions: withOptions, pipeline: pipeline, expect: 1, nextReport: o.ProgressEvery,
		blockSize: plainBlockSize, window: 1}
	if withOptions {
		if o.BlockSize != plainBlockSize {
			s.asked = append(s.asked, option{"blksize", strconv.Itoa(o.BlockSize)})
		}
		if !o.NoTransferSize {
			s.asked = append(s.asked, option{"tsize", "0"})
		}
		if o.WindowSize > 1 {
			s.asked = append(s.asked, option{"windowsize", strconv.Itoa(o.WindowSize)})
		}
	}
	t.res.TransferSize = -1
	t.res.BlockSize, t.res.WindowSize, t.res.Pipeline = s.blockSize, s.window, 1
	t.res.Size = 0
	s.rrq = appendRRQ(nil, t.name, s.asked)
	s.rto = newRTO(o.InitialTimeout, o.MinTimeout, o.MaxTimeout)

	// A cancellation that interrupted the previous socket (before a fallback or restart) is not lost.
	if err := t.ctx.Err(); err != nil {
		return outcomeDone, err
	}
	now := o.Clock.NowMonotonic()
	t.arm(now, s.rto.current())
	s.sentAt = now
	if err := t.send(s.rrq, t.server); err != nil {
		return outcomeDone, err
	}
	for {
		n, from, err := t.read()
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !t.settle() {
				return outcomeDone, fmt.Errorf("receive: %w", err)
			}
			// Interrupted (interrupt runs before the context or the timer is looked at here, so neither
			// is missed): the context ended or the timer fired.
			if err := t.ctx.Err(); err != nil {
				to := t.server
				if s.tid.IsValid() {
					to = s.tid
				}
				return outcomeDone, t.abort(to, ErrCodeUndefined, "transfer cancelled", err)
			}
			if t.fired.Swap(false) {
				if next, err := s.expired(); err != nil || next != outcomeDone {
					return next, err
				}
			}
			continue
		}
		t.res.Stats.PacketsReceived++
		next, finished, err := s.handle(packet(t.buf[:n]), from)
		if err != nil || next != outcomeDone || finished {
			return next, err
		}
	}
}

// expired handles a timer expiry: early ones re-arm the timer, the end of a probe settles the server's kind, and
// real timeouts retransmit or give up.
func (s *session) expired() (outcome, error) {
	t, o := s.t, s.o
	now := o.Clock.NowMonotonic()
	if s.quiet && !now.Before(s.quietAt) && now.Before(t.deadline) {
		switch {
		case !s.suspect:
			// The first quiet wait: the blocks in flight are lost or late. A late one ends the suspicion (and
			// raises the wait); only a second quiet wait without any block leads to a refill.
			s.suspect = true
			s.quietAt = now.Add(s.quietWait())
		case !s.confirming:
			// The timer interrupts a read before it looks at the socket: after a pause of this goroutine
			// (or of the guest) blocks may be queued unread. One more read first, waiting a little.
			s.confirming = true
			s.quietAt = now.Add(confirmWait)
		default:
			return outcomeDone, s.refill(now)
		}
		next := s.quietAt
		if t.deadline.Before(next) {
			next = t.deadline
		}
		t.timer.Reset(next.Sub(now))
		t.armed = next
		return outcomeDone, nil
	}
	if now.Before(t.deadline) {
		next := t.deadline
		if at := s.quietAt; s.quiet && at.Before(next) {
			// Blocks are coming; look again once they may have stopped, or a check period from now.
			if p := s.checkPeriod(); at.Before(now.Add(p)) {
				at = now.Add(p)
			}
			if at.Before(next) {
				next = at
			}
		}
		t.timer.Reset(next.Sub(now))
		t.armed = next
		return outcomeDone, nil
	}
	s.quiet, s.suspect, s.confirming = false, false, false
	if s.mode == probing && s.held {
		// Block 1 arrived and nothing followed it: the server ignores repeated ACKs (pin/tftp, dnsmasq).
		s.mode, s.held = lockStep, false
		return outcomeDone, s.sendACK(now, 1)
	}
	if s.mode == pipelined && s.timeouts > 0 {
		// Nothing came for two timeouts, not even an answer to the repeated ACK: the rest of the file is lost (or
		// the session ended with a lost last block), and a server that only counts ACKs cannot resend it.
		return outcomeRestart, s.endForRestart("timeout while pipelining")
	}
	t.res.Stats.Timeouts++
	s.timeouts++
	if s.timeouts > o.Retries {
		err := fmt.Errorf("%w after %d retransmissions (block %d, %d bytes received)",
			ErrTimeout, o.Retries, s.expect, s.pos)
		if s.tid.IsValid() {
			return outcomeDone, t.abort(s.tid, ErrCodeUndefined, "timeout", err)
		}
		return outcomeDone, err
	}
	// A duplicate answered just now (reACK) already repeated the ACK: count the expiry, do not send it twice.
	justAcked := s.started && now.Sub(s.lastAckAt) < s.rto.current()/4
	s.rto.backoff()
	switch {
	case !s.started:
		t.res.Stats.Retransmits++
		t.arm(now, s.rto.current())
		if err := t.send(s.rrq, t.server); err != nil {
			return outcomeDone, err
		}
	case justAcked:
		t.arm(now, s.rto.current())
	default:
		t.res.Stats.Retransmits++
		if err := s.sendACK(now, s.expect-1); err != nil {
			return outcomeDone, err
		}
		s.inWindow = 0
	}
	s.retransmit = true
	return outcomeDone, nil
}

// quietWait is how long the pipeline may stay without DATA before the client suspects lost ACKs (and then how
// long the silence must last again before it refills): twice the longest gap seen between two blocks of this
// session, at least four round trips (the OACK's) and 2 ms, at most a quarter of the retransmission timeout (the
// Sorcerer's Apprentice guard's fraction). A stall of the server or path shows as a block after a quiet wait (or
// late after a refill) and raises it to twice the stall.
func (s *session) quietWait() time.Duration {
	return min(max(2*s.maxGap, 4*s.rto.srtt, minQuietWait), s.rto.current()/4)
}

// checkPeriod is how often the timer looks for a quiet pipeline while blocks come: half the retransmission
// timeout (the timer fires about once per timeout anyway) until a refill has shown that this path loses ACKs,
// then at every quiet wait. Each look interrupts the read, which costs the guest about as much as a few hundred
// blocks (a 20 MB initrd through slirp ran at 24.5 instead of 31 MB/s when it looked every 2 ms), and slirp
// itself never loses.
func (s *session) checkPeriod() time.Duration {
	if s.lossSeen {
		return 0
	}
	return s.rto.current() / 2
}

// minQuietWait is the shortest quiet wait; confirmWait is the last read's wait before a refill (see expired).
const (
	minQuietWait = 2 * time.Millisecond
	confirmWait  = 200 * time.Microsecond
)

// refill puts Pipeline blocks in flight again after two quiet waits in a row without a block. A server that
// counts ACKs sends one block per ACK it receives, so every lost ACK takes one block out of flight for good; once
// all are gone nothing arrives. Pipeline more ACKs of the last block received in order (repeated ACKs: legal, and
// such a server answers each with its next block) restore the pipeline. A block that comes during the second
// wait ends the suspicion (the blocks were late, not lost) and is acknowledged as usual, so a stall that lets
// blocks trickle through changes nothing. Only a stall that lets nothing through for both waits puts twice
// Pipeline in flight, once: data sees the refill's first block come late and undoes it. Only pipelined sessions
// refill, and pipelining starts only once the probe showed a server that counts ACKs, so a server that resends
// on every ACK (the Sorcerer's Apprentice) never sees a refill. The refill is not progress: the retransmission
// deadline stays where it is, so a server that is gone (or a lost last block) still meets the timeout and the
// restart, and there is one refill per quiet spell (the next waits for DATA).
func (s *session) refill(now tcpip.MonotonicTime) error {
	t := s.t
	s.quiet, s.suspect, s.confirming = false, false, false
	s.afterRefill, s.refilledAt, s.debt = true, now, 0
	t.res.Stats.WindowRefills++
	t.out = appendACK(t.out[:0], s.expect-1)
	s.lastAck, s.lastAckAt = s.expect-1, now
	for i := 0; i < s.pipeline; i++ {
		t.res.Stats.RefillACKs++
		if err := t.send(t.out, s.tid); err != nil {
			return err
		}
	}
	t.timer.Reset(t.deadline.Sub(now))
	t.armed = t.deadline
	return nil
}

// sendACK acknowledges block and restarts the wait.
func (s *session) sendACK(now tcpip.MonotonicTime, block uint16) error {
	t := s.t
	t.out = appendACK(t.out[:0], block)
	s.lastAck = block
	s.sentAt = now
	s.lastAckAt = now
	s.retransmit = false
	t.arm(now, s.rto.current())
	return t.send(t.out, s.tid)
}

// reACK answers a duplicate (OACK or DATA) by repeating the last ACK, unless an ACK went out less than a
// quarter of the retransmission timeout ago: then the duplicate crossed that ACK on the wire, and answering it
// would start the Sorcerer's Apprentice loop (RFC 1123 §4.2.3.1) with servers that resend on every ACK.
// A duplicate is no progress: the wait is not pushed back, so a server that repeats one packet forever still
// meets the Retries limit. The next answer may reply to either ACK, so it gives no RTT sample (Karn).
func (s *session) reACK() error {
	t := s.t
	now := s.o.Clock.NowMonotonic()
	if now.Sub(s.lastAckAt) < s.rto.current()/4 {
		return nil
	}
	t.out = appendACK(t.out[:0], s.lastAck)
	s.lastAckAt = now
	s.retransmit = true
	return t.send(t.out, s.tid)
}

// endForRestart tells the server this session is over (libslirp frees it on an ERROR) before the transfer starts
// again on a fresh socket.
func (s *session) endForRestart(why string) error {
	t := s.t
	t.out = appendERROR(t.out[:0], ErrCodeUndefined, "restarting: "+why)
	t.send(t.out, s.tid)
	return nil
}

func (s *session) report(done bool) {
	if s.o.Progress != nil {
		s.o.Progress(Progress{Received: s.pos, Size: s.t.res.TransferSize, Done: done})
	}
}

func (s *session) badPacket(from netip.AddrPort, why string) (outcome, bool, error) {
	s.t.res.Stats.BadPackets++
	s.bad++
	if s.bad > s.o.MaxBadPackets {
		return outcomeDone, false, s.t.abort(from, ErrCodeIllegalOp, why,
			fmt.Errorf("%w: %d bad packets in a row, last: %s", ErrProtocol, s.bad, why))
	}
	return outcomeDone, false, nil
}

// handle processes one datagram; finished reports the last block.
func (s *session) handle(p packet, from netip.AddrPort) (next outcome, finished bool, err error) {
	t := s.t
	// Transfer ID checks (RFC 1350 §4).
	if s.tid.IsValid() && from != s.tid || !s.tid.IsValid() && from.Addr() != t.server.Addr() {
		t.res.Stats.ForeignPackets++
		t.out = appendERROR(t.out[:0], ErrCodeUnknownTID, "unknown transfer ID")
		t.send(t.out, from)
		return outcomeDone, false, nil
	}
	if len(p) < headerLen {
		return s.badPacket(from, "short packet")
	}
	switch p.opcode() {
	case opDATA:
		return s.data(p, from)
	case opERROR:
		e, _ := parseERROR(p)
		if !s.started && s.withOptions && len(s.asked) > 0 &&
			(e.Code == ErrCodeOptionRefused || e.Code == ErrCodeIllegalOp) {
			return outcomeFallback, false, nil
		}
		return outcomeDone, false, e
	case opOACK:
		return s.oack(p, from)
	default:
		return s.badPacket(from, fmt.Sprintf("unexpected opcode %d", p.opcode()))
	}
}

func (s *session) oack(p packet, from netip.AddrPort) (outcome, bool, error) {
	t, o := s.t, s.o
	if s.started {
		if s.pos == 0 && s.expect == 1 {
			// Our ACK 0 was lost and the server repeats its OACK.
			t.res.Stats.Duplicates++
			return outcomeDone, false, s.reACK()
		}
		return s.badPacket(from, "OACK during data")
	}
	s.tid = from
	t.connect(s.tid)
	if !s.withOptions || len(s.asked) == 0 {
		return outcomeDone, false, t.abort(s.tid, ErrCodeOptionRefused, "no options requested",
			fmt.Errorf("%w: OACK to a request without options", ErrProtocol))
	}
	opts, err := parseOACK(p)
	if err != nil {
		return outcomeDone, false, t.abort(s.tid, ErrCodeOptionRefused, "malformed OACK",
			fmt.Errorf("%w: %v", ErrProtocol, err))
	}
	neg, err := negotiate(s.asked, opts)
	if err != nil {
		return outcomeDone, false, t.abort(s.tid, ErrCodeOptionRefused, err.Error(),
			fmt.Errorf("%w: %v", ErrProtocol, err))
	}
	s.blockSize, s.window = neg.blockSize, neg.window
	t.res.BlockSize, t.res.WindowSize, t.res.TransferSize = s.blockSize, s.window, neg.tsize
	if s.blockSize > len(t.buf)-headerLen-1 {
		return outcomeDone, false, t.abort(s.tid, ErrCodeOptionRefused, "blksize too large",
			fmt.Errorf("%w: blksize %d larger than asked", ErrProtocol, s.blockSize))
	}
	if o.MaxSize > 0 && neg.tsize > o.MaxSize {
		return outcomeDone, false, t.abort(s.tid, ErrCodeDiskFull, "file too large",
			fmt.Errorf("%w: tsize %d bytes, limit %d", ErrTooLarge, neg.tsize, o.MaxSize))
	}
	if o.OnSize != nil && neg.tsize >= 0 {
		if err := o.OnSize(neg.tsize); err != nil {
			return outcomeDone, false, t.abort(s.tid, ErrCodeDiskFull, "refused by client", err)
		}
	}
	s.started = true
	now := o.Clock.NowMonotonic()
	if !s.retransmit {
		s.rto.sample(now.Sub(s.sentAt))
	}
	s.timeouts, s.bad = 0, 0
	switch {
	case s.window > 1:
		s.mode = windowed
	case s.pipeline > 1 && (neg.tsize < 0 || neg.tsize >= int64(s.blockSize)):
		// Worth it only for more than one block.
		s.mode = probing
	}
	if err := s.sendACK(now, 0); err != nil {
		return outcomeDone, false, err
	}
	if s.mode == probing {
		// Repeat ACK 0 (a legal retransmission): a server that counts ACKs answers each with its next block.
		for i := 1; i < s.pipeline; i++ {
			if err := t.send(t.out, s.tid); err != nil {
				return outcomeDone, false, err
			}
		}
	}
	return outcomeDone, false, nil
}

// probeWait is how long block 1's ACK is held back while probing for a second block: a server that counts ACKs
// sent block 2 right after block 1, in answer to the second ACK 0.
func (s *session) probeWait() time.Duration {
	return min(max(4*s.rto.srtt, 2*time.Millisecond), s.rto.current())
}

func (s *session) data(p packet, from netip.AddrPort) (outcome, bool, error) {
	t, o := s.t, s.o
	if !s.started {
		// The server ignored our options (or we sent none): 512-byte lock-step.
		s.tid = from
		t.connect(s.tid)
		s.started = true
		s.blockSize, s.window, s.mode = plainBlockSize, 1, lockStep
		t.res.BlockSize, t.res.WindowSize = s.blockSize, s.window
	}
	n := len(p) - headerLen
	if n > s.blockSize {
		return s.badPacket(from, fmt.Sprintf("DATA of %d bytes exceeds blksize %d", n, s.blockSize))
	}
	b := p.block()
	if b != s.expect && !(!s.wrapped && s.expect == 0 && b == 1 && s.pos > 0) {
		if int16(b-s.expect) < 0 {
			t.res.Stats.Duplicates++
			switch s.mode {
			case probing:
				// A server that counts ACKs never sends a block twice: this one answered the repeated ACK 0 with
				// block 1 again (tftpd-hpa, atftpd without --prevent-sas). Lock-step from here; block 1's ACK,
				// if held, goes out now.
				s.mode = lockStep
				if s.held {
					s.held = false
					return outcomeDone, false, s.sendACK(o.Clock.NowMonotonic(), s.expect-1)
				}
			case pipelined:
				// The probe showed a server that counts ACKs, which never sends a block twice: the network
				// duplicated this one. Ignore it: leaving pipelining here would turn a later loss into a
				// lock-step failure instead of a restart, and an ACK for it would put one more block in flight.
				return outcomeDone, false, nil
			}
			// Our ACK may have been lost: acknowledge again (lock-step only, RFC 1350 §2), but not a duplicate
			// that crossed our ACK (see reACK; atftpd without --prevent-sas resends on every ACK).
			if s.window == 1 && b == s.lastAck && s.pos > 0 {
				return outcomeDone, false, s.reACK()
			}
			return outcomeDone, false, nil
		}
		t.res.Stats.OutOfOrder++
		switch s.mode {
		case probing, pipelined:
			// A block was lost; a server that counts ACKs never sends it again.
			return outcomeRestart, false, s.endForRestart(fmt.Sprintf("block %d lost", s.expect))
		case windowed:
			if !s.gapAcked {
				// RFC 7440 §4: acknowledge the last block received in sequence, once.
				s.gapAcked = true
				s.inWindow = 0
				return outcomeDone, false, s.sendACK(o.Clock.NowMonotonic(), s.expect-1)
			}
			return outcomeDone, false, nil
		}
		return s.badPacket(from, fmt.Sprintf("DATA %d while expecting %d", b, s.expect))
	}
	if b != s.expect {
		// Server rolled over from 65535 to 1 rather than 0.
		s.expect = 1
	}
	if s.expect == 0 {
		s.wrapped = true
	}
	now := o.Clock.NowMonotonic()
	if !s.retransmit && s.inWindow == 0 && s.mode != pipelined {
		s.rto.sample(now.Sub(s.sentAt))
	}
	s.timeouts, s.bad = 0, 0
	s.gapAcked = false
	if o.MaxSize > 0 && s.pos+int64(n) > o.MaxSize {
		return outcomeDone, false, t.abort(s.tid, ErrCodeDiskFull, "file too large",
			fmt.Errorf("%w: more than %d bytes", ErrTooLarge, o.MaxSize))
	}
	last := n < s.blockSize
	s.expect++
	s.inWindow++
	if s.mode == pipelined && s.afterRefill {
		s.afterRefill = false
		if late := now.Sub(s.refilledAt); late > max(4*s.rto.srtt, minQuietWait) {
			// A refill is answered within a round trip if nothing was in flight. This block came later: the
			// path had stalled without letting a block through, and the blocks of before the stall are still
			// coming on top of the refill's. Take the next Pipeline blocks without an ACK to undo the refill,
			// and wait longer before the next.
			t.res.Stats.StalledRefills++
			s.debt = s.pipeline
			s.maxGap = max(s.maxGap, late)
		} else {
			// The refill was answered at once: the blocks had been lost (their ACKs), not held up.
			s.lossSeen = true
		}
	}
	// Acknowledge before writing, so the server works on the next block while this one is copied.
	switch {
	case s.mode == probing && !s.held && b == 1 && !last:
		// Hold ACK 1 back: block 2 arriving first proves a server that counts ACKs.
		s.held = true
		t.arm(now, s.probeWait())
	case s.mode == probing && s.held:
		// Block 2 before our ACK 1: the server answered the second ACK 0.
		s.mode, s.held = pipelined, false
		t.res.Pipeline = s.pipeline
		if err := s.sendACK(now, b-1); err != nil {
			return outcomeDone, false, err
		}
		s.inWindow = 0
		if err := s.sendACK(now, b); err != nil {
			return outcomeDone, false, err
		}
	case s.mode == pipelined && s.debt > 0 && !last:
		// Undoing a refill into a stall: a block taken without an ACK, but progress.
		s.debt--
		s.inWindow = 0
		t.arm(now, s.rto.current())
	case last || s.inWindow >= s.window:
		s.inWindow = 0
		if err := s.sendACK(now, b); err != nil {
			return outcomeDone, false, err
		}
	default:
		// Inside a window: the server is alive, push the deadline.
		t.arm(now, s.rto.current())
	}
	if s.mode == pipelined && !last && !o.noRefill {
		if s.quiet {
			// No refill since the previous block: the gap is the stream's own (a stall, if it came after a quiet wait).
			s.maxGap = max(s.maxGap, now.Sub(s.lastDataAt))
		}
		s.lastDataAt = now
		g := s.quietWait()
		s.quiet, s.quietAt, s.suspect, s.confirming = true, now.Add(g), false, false
		t.wakeBy(now, now.Add(max(g, s.checkPeriod())))
	}
	if n > 0 {
		if _, err := t.w.WriteAt(p.payload(), s.pos); err != nil {
			return outcomeDone, false, t.abort(s.tid, ErrCodeDiskFull, "write failed",
				fmt.Errorf("write at offset %d: %w", s.pos, err))
		}
	}
	s.pos += int64(n)
	t.res.Size = s.pos
	if last {
		if t.res.TransferSize >= 0 && t.res.TransferSize != s.pos {
			return outcomeDone, false, fmt.Errorf("%w: received %d bytes, server announced tsize %d",
				ErrProtocol, s.pos, t.res.TransferSize)
		}
		s.report(true)
		return outcomeDone, true, nil
	}
	if s.pos >= s.nextReport {
		s.report(false)
		s.nextReport = s.pos + o.ProgressEvery
	}
	return outcomeDone, false, nil
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
