package netstack

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tapLink is the stack's link endpoint over a tap fd (IFF_TAP|IFF_NO_PI: one Ethernet frame per
// read or write), driven by Go's network poller instead of a goroutine blocked in ppoll.
//
// Why not gVisor's fdbased: on linux/s390x its dispatcher waits in a raw ppoll system call, which
// keeps the scheduler's P. With one CPU (GOMAXPROCS=1, the guest) every goroutine a frame makes
// runnable (the socket reader) then waits until sysmon takes the P back, tens to hundreds of µs per
// frame. Here the fd is non-blocking and registered with the poller: an idle stack parks in the
// runtime's epoll_pwait, a wake-up reads frames until EAGAIN and delivers each to the stack on the
// reading goroutine, and the goroutines they wake run as soon as it parks again. Writes are
// non-blocking writev calls on the sender's goroutine; a full device queue drops the frame
// (tcpip.ErrWouldBlock, as fdbased does) rather than blocking the stack.
type tapLink struct {
	f  *os.File
	rc syscall.RawConn

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	mtu        uint32
	addr       tcpip.LinkAddress
	onClose    func()

	wg        sync.WaitGroup
	closeOnce sync.Once

	// reading is set (under mu) while a reader goroutine runs: Attach starts one only if none
	// does, and a reader stopped by Attach(nil) reads on if a dispatcher was attached again
	// before it returned. Two readers would share frames and co (silent corruption).
	reading bool

	// readErr is the error that ended the reader (nil while it runs or after a clean stop).
	readErr error

	// co, if set, merges the TCP data frames of a burst (tcpcoalesce.go); the reader owns it.
	co *tcpCoalescer

	// frames reads the fd's frames, a batch per system call where it can (tapbatch.go); the
	// reader owns it.
	frames tapFrames

	// verifiedRx is set while the reader delivers a packet whose checksums it verified itself
	// (the coalescer's): Capabilities then reports RX checksum offload, which gVisor reads once per
	// packet in DeliverNetworkPacket, so it does not verify that packet a second time.
	verifiedRx atomic.Bool
}

var _ stack.LinkEndpoint = (*tapLink)(nil)

// newTapLink takes over fd: it is made non-blocking, registered with the runtime poller and
// closed by Close.
func newTapLink(fd int, mtu uint32, addr tcpip.LinkAddress) (*tapLink, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("netstack: tap fd %d: set non-blocking: %w", fd, err)
	}
	// os.NewFile registers a non-blocking fd with the poller.
	f := os.NewFile(uintptr(fd), "tap")
	if f == nil {
		return nil, fmt.Errorf("netstack: tap fd %d: not a valid fd", fd)
	}
	return newTapLinkFile(f, mtu, addr)
}

// newTapLinkFile takes over f, which must be a non-blocking file the poller watches (OpenTap's).
func newTapLinkFile(f *os.File, mtu uint32, addr tcpip.LinkAddress) (*tapLink, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netstack: tap %s: %w", f.Name(), err)
	}
	// A deadline is only accepted on a file the poller watches: the reader depends on that.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("netstack: tap %s is not pollable: %w", f.Name(), err)
	}
	return &tapLink{f: f, rc: rc, mtu: mtu, addr: addr}, nil
}

// frameBufferSize is the read buffer per frame: an MTU-sized payload, the Ethernet header and a
// VLAN tag's room. A longer frame fills it completely and is dropped.
func (l *tapLink) frameBufferSize() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return int(l.mtu) + header.EthernetMinimumSize + 4 + 1
}

// rxBatch is how many frames of a burst the reader delivers between yields to the goroutines
// they woke, unless the TCP coalescer holds a packet (then tcpMergeFrames bounds the burst). When
// it also bounded the merged packets, a TCP download through slirp ran at 44 MB/s with 16, 58-64
// with 32, 62 with 40 and 54 with 64 (guest under TCG, medians of 4).
const rxBatch = 32

// readLoop runs until Attach(nil) or Close: each poller wake-up drains the fd.
func (l *tapLink) readLoop() {
	defer l.wg.Done()
	r := &l.frames
	var readErr error
	size := 0
	drain := func(fd uintptr) bool {
		for reads := 0; ; reads++ {
			if held := l.co.holds(); (reads == 1 && !held) || (reads > 0 && reads%rxBatch == 0 && !held) || l.co.full() {
				// Let the goroutines the frames woke (socket readers) run before reading
				// more: after the first frame, so a lock-step reply (a TFTP ACK) leaves
				// before the read that finds the queue empty, then every rxBatch frames,
				// so with one CPU a flood does not fill their buffers unread. While the TCP
				// coalescer holds a packet it grows to tcpMergeFrames frames first (or until
				// a frame does not continue it, or the queue is empty), then goes: a first
				// frame handed over alone cost an ACK of its own per burst (a third of the
				// guest's frames in an HTTP download) and slirp answered with a one-frame
				// burst, and one ACK per 44 segments beat one per 32 (tcpMergeFrames).
				l.deliverCoalesced()
				runtime.Gosched()
			}
			if reads == 0 {
				size = l.frameBufferSize() // once per wake-up: the MTU may change
			}
			v, n, err := r.read(int(fd), size)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				l.deliverCoalesced()
				return false // wait for the poller
			case err != nil:
				readErr = err
				return true
			case n == 0:
				readErr = errors.New("end of file")
				return true
			}
			if n >= v.Size() { // truncated: longer than the MTU allows
				continue
			}
			if l.co != nil {
				switch res, prev := l.co.offer(v, n); res {
				case offerKept:
					r.take()
					if prev.Size() > 0 {
						l.deliverVerified(prev)
					}
					continue
				case offerCopied:
					continue // the next frame is read into v again
				}
				l.deliverCoalesced()
			}
			r.take()
			v.CapLength(n)
			l.deliver(v)
		}
	}
	for {
		err := l.rc.Read(drain)
		if readErr != nil {
			err = readErr
		}
		l.deliverCoalesced() // a read error stopped drain with a packet pending
		l.mu.Lock()
		if errors.Is(err, os.ErrDeadlineExceeded) && l.dispatcher != nil {
			// Attach(nil) stopped this reader and Attach(d) came before it returned; Attach
			// cleared the deadline with mu held, so reading on waits for frames again.
			l.mu.Unlock()
			continue
		}
		// The views go back with mu held: once reading is false, Attach may start a reader
		// that uses l.frames (TestTapLinkConcurrentControl).
		r.release()
		l.reading = false
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
			l.readErr = err
		}
		l.mu.Unlock()
		return
	}
}

// deliverCoalesced delivers the packet the coalescer holds, if any.
func (l *tapLink) deliverCoalesced() {
	if l.co == nil {
		return
	}
	if b, ok := l.co.take(); ok {
		l.deliverVerified(b)
	}
}

// deliverVerified hands the stack a packet from the coalescer, whose IPv4 header checksum and
// whose segments' TCP checksums it verified (parseTCPSegment), as checksum-validated.
//
// Why: gVisor would verify the merged packet again, a second pass over up to 64 KiB per burst
// (the coalescer's own pass per segment cannot go: it is what rejects segments with
// compensating corruptions). gVisor has no per-packet way in: the NIC sets
// pkt.RXChecksumValidated from the link's Capabilities in DeliverNetworkPacket, for every packet,
// so the link reports RX checksum offload exactly while it delivers such a packet. Only the
// reader delivers packets, and no other part of gVisor reads that capability bit
// (TestTapLinkChecksumOffloadOnlyForVerified).
func (l *tapLink) deliverVerified(b buffer.Buffer) {
	l.verifiedRx.Store(true)
	l.deliverBuffer(b)
	l.verifiedRx.Store(false)
}

// deliver hands one received frame (v, which it takes over) to the stack.
func (l *tapLink) deliver(v *buffer.View) { l.deliverBuffer(buffer.MakeWithView(v)) }

// deliverBuffer hands one received frame (b, which it takes over) to the stack.
func (l *tapLink) deliverBuffer(b buffer.Buffer) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: b})
	defer pkt.DecRef()
	hdr, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if !ok {
		return
	}
	eth := header.Ethernet(hdr)
	l.mu.RLock()
	d, addr := l.dispatcher, l.addr
	l.mu.RUnlock()
	if d == nil {
		return
	}
	// Unicast for another station is not ours; group addresses (low bit of the first octet)
	// reach everyone.
	if dst := eth.DestinationAddress(); dst != addr && dst[0]&1 == 0 {
		return
	}
	pkt.NetworkProtocolNumber = eth.Type()
	d.DeliverNetworkPacket(eth.Type(), pkt)
}

// Attach implements stack.NetworkLinkEndpoint: a dispatcher starts the reader, nil stops it.
// The deadline is set and cleared with mu held, so a reader that finds a dispatcher after its
// deadline passed (readLoop) also finds the deadline cleared.
func (l *tapLink) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	had := l.dispatcher != nil
	l.dispatcher = d
	if d == nil {
		if had {
			// Wake the reader, which returns; do not join it here. gVisor detaches with
			// the stack's lock held (Stack.Wait → removeNICLocked), and a reader that is
			// delivering a frame needs that lock (e.g. to send a TCP RST): joining it
			// here deadlocks. Stack.Close joins it once gVisor has let go (waitReader).
			l.f.SetReadDeadline(time.Unix(1, 0))
		}
		return
	}
	if !had {
		l.f.SetReadDeadline(time.Time{})
	}
	if !l.reading { // else the reader stopped by Attach(nil) has not returned: it reads on
		l.reading = true
		l.wg.Add(1)
		go l.readLoop()
	}
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *tapLink) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher != nil
}

// MTU implements stack.NetworkLinkEndpoint.
func (l *tapLink) MTU() uint32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mtu
}

// SetMTU implements stack.NetworkLinkEndpoint.
func (l *tapLink) SetMTU(mtu uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mtu = mtu
}

// MaxHeaderLength implements stack.NetworkLinkEndpoint: the Ethernet header.
func (l *tapLink) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.NetworkLinkEndpoint.
func (l *tapLink) LinkAddress() tcpip.LinkAddress {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.addr
}

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (l *tapLink) SetLinkAddress(addr tcpip.LinkAddress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addr = addr
}

// Capabilities implements stack.NetworkLinkEndpoint: Ethernet needs address resolution; no
// offloads (the tap carries no virtio-net header), except RX checksum offload while the reader
// delivers a packet it verified itself (deliverVerified).
func (l *tapLink) Capabilities() stack.LinkEndpointCapabilities {
	if l.verifiedRx.Load() {
		return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
	}
	return stack.CapabilityResolutionRequired
}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (l *tapLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.NetworkLinkEndpoint.
func (l *tapLink) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.NetworkLinkEndpoint.
func (l *tapLink) ParseHeader(pkt *stack.PacketBuffer) bool {
	hdr, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if ok {
		pkt.NetworkProtocolNumber = header.Ethernet(hdr).Type()
	}
	return ok
}

// WritePackets implements stack.LinkWriter: one non-blocking writev per frame.
func (l *tapLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	sent := 0
	for _, pkt := range pkts.AsSlice() {
		if err := l.writePacket(pkt); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

func (l *tapLink) writePacket(pkt *stack.PacketBuffer) tcpip.Error {
	views := pkt.AsSlices()
	var iovArr [8]unix.Iovec
	iovs := iovArr[:0]
	if len(views) > len(iovArr) {
		iovs = make([]unix.Iovec, 0, len(views))
	}
	for _, b := range views {
		iovs = rawfile.AppendIovecFromBytes(iovs, b, len(views))
	}
	var errno unix.Errno
	// RawConn.Write holds the file open for the call; the callback runs once (it returns true).
	if err := l.rc.Write(func(fd uintptr) bool {
		for {
			errno = rawfile.NonBlockingWriteIovec(int(fd), iovs)
			if errno != unix.EINTR {
				return true
			}
		}
	}); err != nil {
		return &tcpip.ErrClosedForSend{}
	}
	if errno == unix.EAGAIN {
		// The device queue is full (metal's tapWrite: every TX buffer is with the device).
		// gVisor treats ErrNoBufferSpace as Linux treats a full qdisc: counted
		// (TxNoBufferSpace), a UDP datagram dropped and its Write successful, TCP retransmits.
		// TranslateErrno's ErrWouldBlock made gonet's UDP Write wait for a writable event that
		// never comes: a hang (TestUDPSendAdversarialBackpressure).
		return &tcpip.ErrNoBufferSpace{}
	}
	if errno != 0 {
		return tcpip.TranslateErrno(errno)
	}
	return nil
}

// Wait implements stack.NetworkLinkEndpoint. It does not join the reader: gVisor calls it with
// the stack's lock held, which a reader delivering a frame may be waiting for (see Attach).
// Owners join the reader with waitReader after the stack has stopped.
func (l *tapLink) Wait() {}

// waitReader waits for the reader goroutine to return (after Attach(nil) or Close).
func (l *tapLink) waitReader() { l.wg.Wait() }

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (l *tapLink) SetOnCloseAction(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onClose = f
}

// Close implements stack.NetworkLinkEndpoint: it stops the reader and closes the fd.
func (l *tapLink) Close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		f := l.onClose
		l.mu.Unlock()
		if f != nil {
			f()
		}
		l.f.Close() // wakes a parked reader (os.ErrClosed)
	})
}

// err returns the error that stopped the reader, if it stopped on one.
func (l *tapLink) err() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.readErr
}
