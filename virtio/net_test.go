package virtio

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// initNet brings a driver up over f and fails the test on error.
func initNet(t *testing.T, f *fakeCSS, dma uint64, ipl IPLDevice) *Net[*fakeCSS] {
	t.Helper()
	d := new(Net[*fakeCSS])
	if st := d.Init(f, dma, ipl, 3); st != OK {
		var buf [128]byte
		t.Fatalf("Init = %v: %s", st, buf[:d.Reason(buf[:], st)])
	}
	return d
}

// interruptedNet brings one NIC up, delivers a frame and takes its RX interruption: the
// driver's state right after an interruption, with RX interruptions off (NAPI).
func interruptedNet(t *testing.T) (*fakeDev, *fakeCSS, *Net[*fakeCSS]) {
	t.Helper()
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	f.deliver(nic, frame(60, 1), 0)
	if nic.irqs != 1 {
		t.Fatalf("first frame raised %d interruptions, want 1", nic.irqs)
	}
	if ev := d.Interrupt(); ev != EventReadable {
		t.Fatalf("Interrupt() = %v, want EventReadable", ev)
	}
	return nic, f, d
}

func frame(n int, seq byte) []byte {
	b := make([]byte, n)
	copy(b, []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x55, 0x0a, 0, 2, 2, 0x08, 0x00})
	for i := 14; i < n; i++ {
		b[i] = seq + byte(i)
	}
	return b
}

func TestInitSequence(t *testing.T) {
	nic := newFakeNet(0, 0, 0x0001)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	want := []string{
		"SET_VIRTIO_REV 1",
		"VDEV_RESET",
		"WRITE_STATUS 0x1",
		"WRITE_STATUS 0x3",
		"READ_FEAT 0",
		"READ_FEAT 1",
		"WRITE_FEAT 0 0x20",
		"WRITE_FEAT 1 0x1",
		"WRITE_STATUS 0xb",
		"READ_CONF 6",
		"READ_VQ_CONF 0",
		"SET_VQ 0 num 256",
		"READ_VQ_CONF 1",
		"SET_VQ 1 num 256",
		"SET_IND",
		"WRITE_STATUS 0xf",
	}
	if !slices.Equal(nic.log, want) {
		t.Errorf("virtio-ccw command sequence:\n got %q\nwant %q", nic.log, want)
	}
	if nic.revision != 1 {
		t.Errorf("device revision = %d, want 1", nic.revision)
	}
	if got := d.MAC(); got != nic.mac {
		t.Errorf("MAC() = %x, want %x", got, nic.mac)
	}
	if got := busString(d.BusID()); got != "0.0.0001" {
		t.Errorf("BusID() = %q, want 0.0.0001", got)
	}
	if !nic.enabled || nic.isc != 3 || nic.intparm != d.SubchannelWord() {
		t.Errorf("subchannel enabled=%v isc=%d intparm=%#x, want true 3 %#x", nic.enabled, nic.isc, nic.intparm, d.SubchannelWord())
	}
	if got := f.rxPosted(nic); got != 256 {
		t.Errorf("RX buffers posted = %d, want 256 (the whole ring)", got)
	}
	if nic.kicks[queueRX] != 1 || d.Stats().RxKicks != 1 {
		t.Errorf("RX kicks device=%d driver=%d, want 1 (after DRIVER_OK)", nic.kicks[queueRX], d.Stats().RxKicks)
	}
	q := &nic.queues[queueRX]
	for i := uint16(0); i < q.num; i++ {
		addr, l, flags, _ := f.descAt(q, i)
		if addr != dma+offRXBufs+uint64(i)*bufStride || l != bufStride || flags != descFWrite {
			t.Fatalf("RX descriptor %d = (%#x, %d, %#x), want its own 2 KiB device-writable buffer", i, addr, l, flags)
		}
	}
}

func TestInitSmallQueues(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	nic.maxQueue = [3]uint16{1024, 96, 64}
	f, dma := newFakeCSS(t, nic)
	initNet(t, f, dma, IPLDevice{})
	if nic.queues[0].num != 256 || nic.queues[1].num != 64 {
		t.Errorf("queue sizes = %d, %d for device maxima 1024, 96; want 256, 64", nic.queues[0].num, nic.queues[1].num)
	}
}

func TestInitFailures(t *testing.T) {
	tests := []struct {
		name   string
		devs   func() []*fakeDev
		ipl    IPLDevice
		dma    func(uint64) uint64
		want   Status
		reason string
		failed bool // the driver wrote FAILED to the device
	}{
		{name: "no devices", devs: func() []*fakeDev { return nil }, want: ErrNoNIC, reason: "No virtio-net device found"},
		{name: "only a virtio-blk", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.cuModel = 2
			return []*fakeDev{d}
		}, want: ErrNoNIC, reason: "No virtio-net device found"},
		{name: "IPL device missing", devs: func() []*fakeDev { return []*fakeDev{newFakeNet(0, 0, 1)} },
			ipl: IPLDevice{Valid: true, DevNo: 7}, want: ErrNoNICAtIPLDevice, reason: "No virtio-net device found (IPL device 0.0.0007)"},
		{name: "revision refused", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.reject[ccwCmdSetVirtioRev] = true
			return []*fakeDev{d}
		}, want: ErrRevision, reason: "virtio-net 0.0.0001: device refused virtio-ccw revision 1 (CCW 0x83, device status 0x02, subchannel status 0x00)", failed: true},
		{name: "legacy device", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.offered = featNetMAC
			return []*fakeDev{d}
		}, want: ErrNoVersion1, reason: "virtio-net 0.0.0001: device does not offer VIRTIO_F_VERSION_1", failed: true},
		{name: "no MAC", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.offered = featVersion1
			return []*fakeDev{d}
		}, want: ErrNoMAC, reason: "virtio-net 0.0.0001: virtio-net device does not support the MAC address feature", failed: true},
		{name: "features refused", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.refuseFOK = true
			return []*fakeDev{d}
		}, want: ErrFeaturesRefused, reason: "virtio-net 0.0.0001: device refused the negotiated features (CCW 0x31, device status 0x02, subchannel status 0x00)", failed: true},
		{name: "status writes rejected", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.reject[ccwCmdWriteStatus] = true
			return []*fakeDev{d}
		}, want: ErrCommandFailed, reason: "virtio-net 0.0.0001: channel program failed (CCW 0x31, device status 0x02, subchannel status 0x00)"},
		{name: "no TX queue", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.maxQueue[1] = 0
			return []*fakeDev{d}
		}, want: ErrNoQueue, reason: "virtio-net 0.0.0001: device has no RX or TX queue", failed: true},
		{name: "device never answers", devs: func() []*fakeDev {
			d := newFakeNet(0, 0, 1)
			d.hang = true
			return []*fakeDev{d}
		}, want: ErrNoNIC, reason: "No virtio-net device found"},
		{name: "DMA misaligned", devs: func() []*fakeDev { return nil }, dma: func(p uint64) uint64 { return p + 8 },
			want: ErrDMAAlign, reason: "virtio-net: DMA region not 4 KiB aligned (need 0x108000 bytes, 4 KiB aligned, below 2 GiB)"},
		{name: "DMA above 2 GiB", devs: func() []*fakeDev { return nil }, dma: func(uint64) uint64 { return 1<<31 - 0x100000 },
			want: ErrDMAAbove2G, reason: "virtio-net: DMA region not below 2 GiB (need 0x108000 bytes, 4 KiB aligned, below 2 GiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs := tt.devs()
			f, dma := newFakeCSS(t, devs...)
			if tt.dma != nil {
				dma = tt.dma(dma)
			}
			d := new(Net[*fakeCSS])
			st := d.Init(f, dma, tt.ipl, 3)
			var buf [160]byte
			reason := string(buf[:d.Reason(buf[:], st)])
			if st != tt.want || reason != tt.reason {
				t.Errorf("Init() = %v, %q; want %v, %q", st, reason, tt.want, tt.reason)
			}
			if _, st := d.Peek(); st != ErrNotReady {
				t.Errorf("Peek after failed Init = %v, want ErrNotReady", st)
			}
			for _, dev := range devs {
				if dev.enabled {
					t.Errorf("device %#x left enabled after a failed Init", dev.devno)
				}
				if got := dev.status == statusFailed; got != tt.failed {
					t.Errorf("device status %#x, FAILED written = %v, want %v", dev.status, got, tt.failed)
				}
			}
		})
	}
}

func TestInitTimeout(t *testing.T) {
	// The device answers SENSE ID but never finishes a virtio command.
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := new(Net[*fakeCSS])
	d.ch, d.dmaPhys, d.isc, d.rxCur = f, dma, 3, -1
	if !d.enableMSS() {
		t.Fatal("enableMSS() = false")
	}
	d.scan(3)
	if len(d.Candidates()) != 1 {
		t.Fatalf("scan found %d candidates, want 1", len(d.Candidates()))
	}
	d.sid = NewSubchannelID(0, 0)
	d.bus = BusID{DevNo: 1}
	d.setEnabled(d.sid, true)
	nic.hang = true
	start := f.clock
	st := d.setup()
	var buf [160]byte
	if got := string(buf[:d.Reason(buf[:], st)]); st != ErrTimeout || got != "virtio-net 0.0.0001: channel program timed out (CCW 0x83, device status 0x00, subchannel status 0x00)" {
		t.Errorf("setup on a hung device = %v, %q", st, got)
	}
	if waited := f.clock - start; waited < ioTimeout || waited > 2*ioTimeout {
		t.Errorf("waited %d TOD units, want about %d (1 s)", waited, ioTimeout)
	}
}

func TestNICSelection(t *testing.T) {
	tests := []struct {
		name     string
		devs     func() []*fakeDev
		noMSS    bool
		ipl      IPLDevice
		wantDev  uint16
		wantSSID uint8
	}{
		{name: "first of two without IPLB", devs: func() []*fakeDev { return []*fakeDev{newFakeNet(0, 0, 1), newFakeNet(0, 1, 2)} }, wantDev: 1},
		{name: "bootindex NIC named by the IPLB", devs: func() []*fakeDev { return []*fakeDev{newFakeNet(0, 0, 1), newFakeNet(0, 1, 2)} },
			ipl: IPLDevice{Valid: true, DevNo: 2}, wantDev: 2},
		{name: "virtio-blk first", devs: func() []*fakeDev {
			blk := newFakeNet(0, 0, 1)
			blk.cuModel = 2
			return []*fakeDev{blk, newFakeNet(0, 1, 5)}
		}, wantDev: 5},
		{name: "NIC in subchannel set 2", devs: func() []*fakeDev { return []*fakeDev{newFakeNet(2, 0, 9)} }, wantDev: 9, wantSSID: 2},
		{name: "IPLB in subchannel set 1", devs: func() []*fakeDev { return []*fakeDev{newFakeNet(0, 0, 9), newFakeNet(1, 0, 9)} },
			ipl: IPLDevice{Valid: true, SSID: 1, DevNo: 9}, wantDev: 9, wantSSID: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs := tt.devs()
			f, dma := newFakeCSS(t, devs...)
			f.noMSS = tt.noMSS
			d := initNet(t, f, dma, tt.ipl)
			if got := d.BusID(); got != (BusID{SSID: tt.wantSSID, DevNo: tt.wantDev}) {
				t.Errorf("Init chose %v, want 0.%d.%04x", got, tt.wantSSID, tt.wantDev)
			}
			for _, dev := range devs {
				chosen := dev.devno == tt.wantDev && dev.ssid == tt.wantSSID
				if dev.enabled != chosen {
					t.Errorf("device 0.%d.%04x enabled = %v, want %v", dev.ssid, dev.devno, dev.enabled, chosen)
				}
			}
		})
	}
}

func TestNoMSSScansSetZeroOnly(t *testing.T) {
	f, dma := newFakeCSS(t, newFakeNet(1, 0, 9))
	f.noMSS = true // the fake fails the test if ssid 1 is addressed
	d := new(Net[*fakeCSS])
	if st := d.Init(f, dma, IPLDevice{}, 3); st != ErrNoNIC {
		t.Errorf("Init without MSS, NIC in set 1 = %v, want ErrNoNIC", st)
	}
}

func TestReceive(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	if d.Readable() {
		t.Fatal("Readable() before any frame")
	}
	if _, st := d.Receive(make([]byte, 2048)); st != ErrAgain {
		t.Fatalf("Receive on an empty ring = %v, want ErrAgain", st)
	}
	want := [][]byte{frame(60, 1), frame(1514, 2), frame(MaxFrame, 3), frame(MinFrame, 4)}
	for _, fr := range want {
		if !f.deliver(nic, fr, 0) {
			t.Fatal("no RX buffer posted")
		}
	}
	f.deliver(nic, nil, NetHeaderSize+MinFrame-1) // runt
	f.deliver(nic, nil, NetHeaderSize+MaxFrame+1) // oversize
	f.deliver(nic, nil, 0xffffffff)               // hostile length
	if ev := d.Interrupt(); ev != EventReadable {
		t.Errorf("Interrupt() = %v, want EventReadable", ev)
	}
	if nic.pending {
		t.Error("Interrupt left the subchannel status pending")
	}
	if ind := binary.BigEndian.Uint64(f.mem[offIndicators:]); ind != 0 {
		t.Errorf("indicators = %#x after Interrupt, want 0", ind)
	}
	buf := make([]byte, 2048)
	for i, w := range want {
		n, st := d.Receive(buf)
		if st != OK || !bytes.Equal(buf[:n], w) {
			t.Fatalf("Receive #%d = %d bytes, %v; want the %d-byte frame", i, n, st, len(w))
		}
	}
	if n, st := d.Receive(buf); st != ErrAgain {
		t.Errorf("Receive after the good frames = %d, %v; want ErrAgain (bad frames dropped)", n, st)
	}
	s := d.Stats()
	if s.RxFrames != 4 || s.RxRunts != 1 || s.RxOversize != 2 || s.RxBytes != 60+1514+MaxFrame+MinFrame {
		t.Errorf("stats rx=%d runts=%d oversize=%d bytes=%d; want 4 1 2 %d", s.RxFrames, s.RxRunts, s.RxOversize, s.RxBytes, 60+1514+MaxFrame+MinFrame)
	}
	if got := f.rxPosted(nic); got != 256 {
		t.Errorf("RX buffers posted after reading = %d, want 256 (ring kept full)", got)
	}
}

func TestReceiveTruncatesAndPeek(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	fr := frame(100, 7)
	f.deliver(nic, fr, 0)
	p, st := d.Peek()
	if st != OK || !bytes.Equal(p, fr) {
		t.Fatalf("Peek = %v, %v", len(p), st)
	}
	if p2, _ := d.Peek(); &p2[0] != &p[0] {
		t.Error("second Peek returned another frame before Release")
	}
	d.Release()
	f.deliver(nic, fr, 0)
	small := make([]byte, 20)
	if n, st := d.Receive(small); n != 20 || st != OK || !bytes.Equal(small, fr[:20]) {
		t.Errorf("Receive(20-byte buffer) = %d, %v; want the first 20 bytes", n, st)
	}
	if _, st := d.Peek(); st != ErrAgain {
		t.Errorf("Peek after a truncated Receive = %v, want ErrAgain (rest discarded)", st)
	}
}

func TestReceiveWrapsIndices(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	nic.noNotify = true
	f, dma := newFakeCSS(t, nic)
	f.logging = false
	d := initNet(t, f, dma, IPLDevice{})
	buf := make([]byte, 2048)
	const total = 70000 // crosses 2^16 on both rings' indices
	for i := 0; i < total; i++ {
		fr := frame(60+i%1000, byte(i))
		if !f.deliver(nic, fr, 0) {
			t.Fatalf("frame %d: driver has no RX buffer posted", i)
		}
		if i%3 == 0 {
			continue // let a few queue up
		}
		for {
			n, st := d.Receive(buf)
			if st == ErrAgain {
				break
			}
			if st != OK || n < 60 {
				t.Fatalf("frame %d: Receive = %d, %v", i, n, st)
			}
		}
	}
	for {
		if _, st := d.Receive(buf); st != OK {
			break
		}
	}
	if s := d.Stats(); s.RxFrames != total || s.RxBadID != 0 {
		t.Errorf("after %d frames: RxFrames=%d RxBadID=%d", total, s.RxFrames, s.RxBadID)
	}
	if nic.kicks[queueRX] > 2 {
		t.Errorf("RX kicks = %d although the device set VIRTQ_USED_F_NO_NOTIFY", nic.kicks[queueRX])
	}
}

// TestReceiveBatchesRefillNotifications floods a device that behaves like QEMU's virtio-net (it
// asks for RX notifications only after it ran out of buffers and queues frames meanwhile): every
// frame must arrive, in order, and the driver must announce returned buffers in batches — about
// one notification per RxKickBatch frames, not one per frame — and never leave the device
// starved once the reader found the ring empty.
func TestReceiveBatchesRefillNotifications(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	f.logging = false
	d := initNet(t, f, dma, IPLDevice{})
	const total = 5000
	for i := 0; i < total; i++ {
		f.offer(nic, frame(60+i%900, byte(i)))
	}
	if len(nic.backlog) != total-int(d.rx.Num()) {
		t.Fatalf("backlog %d, want %d (the ring holds %d)", len(nic.backlog), total-int(d.rx.Num()), d.rx.Num())
	}
	kicks0 := nic.kicks[queueRX]
	buf := make([]byte, 2048)
	for i := 0; i < total; i++ {
		n, st := d.Receive(buf)
		if st == ErrAgain {
			t.Fatalf("frame %d: ring empty with %d frames queued at the device (driver left it starved)", i, len(nic.backlog))
		}
		want := frame(60+i%900, byte(i))
		if st != OK || !bytes.Equal(buf[:n], want) {
			t.Fatalf("frame %d: Receive = %d, %v", i, n, st)
		}
	}
	if _, st := d.Receive(buf); st != ErrAgain {
		t.Errorf("Receive after the flood = %v, want ErrAgain", st)
	}
	kicks := nic.kicks[queueRX] - kicks0
	if max := (total - int(d.rx.Num())) / 16; kicks > max || kicks == 0 {
		t.Errorf("%d RX notifications for %d queued frames, want 1..%d (batches, not one per frame)", kicks, total-int(d.rx.Num()), max)
	}
	if d.Stats().RxKicks != uint64(nic.kicks[queueRX]) {
		t.Errorf("RxKicks = %d, device saw %d", d.Stats().RxKicks, nic.kicks[queueRX])
	}
}

// TestReceiveEmptyRingAnnouncesBuffers uses a ring smaller than RxKickBatch, so only the reader
// finding the ring empty can tell the starved device of the buffers it gave back.
func TestReceiveEmptyRingAnnouncesBuffers(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	nic.maxQueue[queueRX] = 16
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	const total = 100
	for i := 0; i < total; i++ {
		f.offer(nic, frame(80, byte(i)))
	}
	buf := make([]byte, 2048)
	for i := 0; i < total; i++ {
		if n, st := d.Receive(buf); st != OK || !bytes.Equal(buf[:n], frame(80, byte(i))) {
			t.Fatalf("frame %d: Receive = %d, %v with %d frames queued at the device", i, n, st, len(nic.backlog))
		}
	}
	if len(nic.backlog) != 0 {
		t.Errorf("%d frames left queued at the device", len(nic.backlog))
	}
}

func TestTransmit(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	sent := [][]byte{frame(42, 1), frame(1514, 2), frame(MaxFrame, 3)}
	for _, fr := range sent {
		if st := d.Transmit(fr); st != OK {
			t.Fatalf("Transmit(%d bytes) = %v", len(fr), st)
		}
	}
	for _, bad := range []struct {
		n    int
		want Status
	}{{0, ErrRuntFrame}, {MinFrame - 1, ErrRuntFrame}, {MaxFrame + 1, ErrOversizeFrame}, {65536, ErrOversizeFrame}} {
		if st := d.Transmit(make([]byte, bad.n)); st != bad.want {
			t.Errorf("Transmit(%d bytes) = %v, want %v", bad.n, st, bad.want)
		}
	}
	if len(nic.sent) != len(sent) {
		t.Fatalf("device received %d frames, want %d", len(nic.sent), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(nic.sent[i], sent[i]) {
			t.Errorf("frame %d differs on the wire", i)
		}
	}
	if nic.badHeader != 0 {
		t.Errorf("%d non-zero virtio-net header bytes", nic.badHeader)
	}
	s := d.Stats()
	if s.TxFrames != 3 || s.TxRejected != 4 || s.TxKicks != 3 || s.TxBytes != 42+1514+MaxFrame {
		t.Errorf("stats tx=%d rejected=%d kicks=%d bytes=%d; want 3 4 3 %d", s.TxFrames, s.TxRejected, s.TxKicks, s.TxBytes, 42+1514+MaxFrame)
	}
	if nic.irqs != 0 {
		t.Errorf("TX completions raised %d interruptions while the ring had room (want suppressed)", nic.irqs)
	}
}

func TestTransmitRingFull(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	nic.holdTX = true
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	fr := frame(60, 9)
	for i := 0; i < 256; i++ {
		if st := d.Transmit(fr); st != OK {
			t.Fatalf("Transmit #%d = %v", i, st)
		}
	}
	if d.Writable() {
		t.Error("Writable() with all 256 TX buffers at the device")
	}
	if st := d.Transmit(fr); st != ErrAgain {
		t.Fatalf("Transmit on a full ring = %v, want ErrAgain", st)
	}
	if got := f.availFlags(&nic.queues[queueTX]); got&availFNoInterrupt != 0 {
		t.Error("TX interrupts still suppressed while a writer waits")
	}
	f.releaseTX(nic, 10)
	if nic.irqs != 1 {
		t.Fatalf("device raised %d interruptions on TX completion, want 1", nic.irqs)
	}
	if ev := d.Interrupt(); ev != EventWritable {
		t.Errorf("Interrupt() = %v, want EventWritable", ev)
	}
	if got := f.availFlags(&nic.queues[queueTX]); got&availFNoInterrupt == 0 {
		t.Error("TX interrupts not suppressed again after the writer was woken")
	}
	for i := 0; i < 10; i++ {
		if st := d.Transmit(fr); st != OK {
			t.Fatalf("Transmit after completion #%d = %v", i, st)
		}
	}
	s := d.Stats()
	if s.TxRingFull < 1 || s.TxCompleted != 10 || s.TxFrames != 266 {
		t.Errorf("stats ringFull=%d completed=%d frames=%d; want ≥1 10 266", s.TxRingFull, s.TxCompleted, s.TxFrames)
	}
}

func TestTransmitBadUsedIDs(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	nic.holdTX = true
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	for i := 0; i < 3; i++ {
		d.Transmit(frame(60, 1)) // descriptors 0, 1, 2
	}
	q := &nic.queues[queueTX]
	f.pushUsed(q, 200, 0) // never sent
	f.pushUsed(q, 999, 0) // out of range
	f.pushUsed(q, 0, 0)   // genuine
	f.pushUsed(q, 0, 0)   // duplicate, beyond what is in flight: not even looked at
	if !d.Writable() {
		t.Fatal("Writable() = false")
	}
	if s := d.Stats(); s.TxBadID != 2 || s.TxCompleted != 1 {
		t.Errorf("TxBadID=%d TxCompleted=%d, want 2 1", s.TxBadID, s.TxCompleted)
	}
}

func TestReset(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	f.deliver(nic, frame(60, 1), 0) // leaves an unsolicited interruption pending
	if st := d.Reset(); st != OK {
		t.Fatalf("Reset() = %v", st)
	}
	if nic.status != 0 || nic.queues[0].num != 0 || nic.enabled {
		t.Errorf("after Reset: device status %#x, RX queue %d, enabled %v; want 0 0 false", nic.status, nic.queues[0].num, nic.enabled)
	}
	if st := d.Transmit(frame(60, 1)); st != ErrNotReady {
		t.Errorf("Transmit after Reset = %v, want ErrNotReady", st)
	}
	if ev := d.Interrupt(); ev != 0 {
		t.Errorf("Interrupt after Reset = %v, want 0", ev)
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	f.logging = false
	d := initNet(t, f, dma, IPLDevice{})
	fr := frame(200, 1)
	buf := make([]byte, 2048)
	var reason [128]byte
	allocs := testing.AllocsPerRun(100, func() {
		d.Transmit(fr)
		f.deliver(nic, fr, 0)
		d.Interrupt()
		d.Receive(buf)
		d.Writable()
		d.Reason(reason[:], ErrNoNICAtIPLDevice)
	})
	if allocs != 0 {
		t.Errorf("steady-state TX/RX/interrupt allocates %.1f times per frame, want 0", allocs)
	}
}

func TestRXInterruptSuppression(t *testing.T) {
	nic, f, d := interruptedNet(t)
	for i := 0; i < 10; i++ {
		f.deliver(nic, frame(60, byte(i)), 0)
	}
	if nic.irqs != 1 {
		t.Errorf("frames arriving before the reader drained raised %d more interruptions, want 0", nic.irqs-1)
	}
	buf := make([]byte, 2048)
	n := 0
	for {
		if _, st := d.Receive(buf); st != OK {
			break
		}
		n++
	}
	if n != 11 {
		t.Fatalf("read %d frames, want 11", n)
	}
	// The CPU is still busy: a frame after the reader drained raises nothing, but is counted.
	before := d.RxArrivals()
	f.deliver(nic, frame(60, 99), 0)
	if nic.irqs != 1 {
		t.Errorf("a frame after the reader drained, CPU busy, raised %d interruptions, want 0", nic.irqs-1)
	}
	if d.RxArrivals() == before {
		t.Errorf("RxArrivals did not change with a frame")
	}
	// Before it waits, the CPU arms RX interruptions: the frame that came meanwhile is reported
	// instead; metal woke its reader and switches them off again (QuietRX).
	if !d.ArmRX() {
		t.Fatal("ArmRX() = false with a frame waiting, want true")
	}
	d.QuietRX()
	if _, st := d.Receive(buf); st != OK {
		t.Fatalf("Receive after ArmRX: %v", st)
	}
	f.deliver(nic, frame(60, 100), 0)
	if nic.irqs != 1 {
		t.Errorf("a frame after ArmRX reported one raised %d interruptions, want 0", nic.irqs-1)
	}
	if _, st := d.Receive(buf); st != OK {
		t.Fatalf("Receive: %v", st)
	}
	// Nothing waiting: ArmRX switches interruptions on and the next frame raises one.
	if d.ArmRX() {
		t.Fatal("ArmRX() = true with an empty ring")
	}
	f.deliver(nic, frame(60, 101), 0)
	if nic.irqs != 2 {
		t.Errorf("a frame after ArmRX armed raised %d interruptions, want 1", nic.irqs-1)
	}
	if got := d.Stats().Interrupts; got != 1 {
		t.Errorf("Stats().Interrupts = %d, want 1", got)
	}
}

// TestArmRXRuntOnly: frames that Peek drops (runts, oversized) are nothing a reader gets. If
// ArmRX reported them, metal would wake no reader, wait with RX interruptions off, and a reader
// blocked in the tap would never hear of the next good frame.
func TestArmRXRuntOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  []byte
	}{
		{"runt", frame(MinFrame-1, 7)},
		{"oversized", frame(MaxFrame+1, 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nic, f, d := interruptedNet(t)
			buf := make([]byte, 2048)
			if _, st := d.Receive(buf); st != OK {
				t.Fatalf("Receive: %v", st)
			}
			if _, st := d.Receive(buf); st != ErrAgain {
				t.Fatalf("Receive on a drained ring: %v, want ErrAgain", st)
			}
			// RX interruptions are off (CPU busy); the bad frame comes meanwhile.
			f.deliver(nic, tc.bad, 0)
			if d.ArmRX() {
				t.Error("ArmRX() = true with only a dropped frame in the ring, want false (nothing to read)")
			}
			if _, st := d.Receive(buf); st != ErrAgain {
				t.Fatalf("Receive after ArmRX: %v, want ErrAgain", st)
			}
			irqs := nic.irqs
			f.deliver(nic, frame(60, 2), 0)
			if nic.irqs != irqs+1 {
				t.Errorf("the good frame after a dropped one raised %d interruptions, want 1 (the CPU waits: nobody else tells the reader)", nic.irqs-irqs)
			}
		})
	}
}

// TestArmRXNobodyReads: ArmRX reports a waiting frame but leaves RX interruptions on: when
// nobody reads it (metal found no reader to wake and waits), the next frame must raise an
// interruption (an edge-triggered epoll waiter gets an edge for it).
func TestArmRXNobodyReads(t *testing.T) {
	nic, f, d := interruptedNet(t)
	f.deliver(nic, frame(60, 2), 0) // CPU busy: no interruption
	if nic.irqs != 1 {
		t.Fatalf("%d interruptions before ArmRX, want 1", nic.irqs)
	}
	if !d.ArmRX() {
		t.Fatal("ArmRX() = false with two frames waiting, want true")
	}
	f.deliver(nic, frame(60, 3), 0)
	if nic.irqs != 2 {
		t.Errorf("a frame after ArmRX reported unread frames (nobody read them) raised %d interruptions, want 1", nic.irqs-1)
	}
	if ev := d.Interrupt(); ev != EventReadable {
		t.Fatalf("Interrupt() = %v, want EventReadable", ev)
	}
	// Interrupt switched them off again until the next ArmRX.
	f.deliver(nic, frame(60, 4), 0)
	if nic.irqs != 2 {
		t.Errorf("a frame after the second interruption raised %d more, want 0", nic.irqs-2)
	}
	buf := make([]byte, 2048)
	for i := 1; i <= 4; i++ {
		n, st := d.Receive(buf)
		if st != OK || n != 60 || buf[20] != byte(i)+20 {
			t.Fatalf("frame %d: %d bytes, %v, seq byte %d", i, n, st, buf[20])
		}
	}
}

// TestRxArrivalsNoWrap: metal compares RxArrivals with the value it last reported to epoll; a
// count that wrapped at 65536 (the used ring's 16-bit index) would read as "no new frame".
func TestRxArrivalsNoWrap(t *testing.T) {
	nic := newFakeNet(0, 0, 1)
	f, dma := newFakeCSS(t, nic)
	d := initNet(t, f, dma, IPLDevice{})
	buf := make([]byte, 2048)
	before := d.RxArrivals()
	const total = 1 << 16
	for i := 0; i < total; i++ {
		if !f.deliver(nic, frame(60, byte(i)), 0) {
			t.Fatalf("frame %d: no RX buffer", i)
		}
		if _, st := d.Receive(buf); st != OK {
			t.Fatalf("frame %d: Receive: %v", i, st)
		}
	}
	f.deliver(nic, frame(60, 0), 0) // left unread
	if got := d.RxArrivals() - before; got != total+1 {
		t.Errorf("RxArrivals advanced by %d over %d frames, want %d", got, total+1, total+1)
	}
}
