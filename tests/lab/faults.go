package lab

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"sync"
	"time"
)

// Direction says which way a frame travels on the link.
type Direction uint8

// Directions. Both is only meaningful in Faults.Dir.
const (
	ToGuest   Direction = 1 << iota // lab → firmware
	FromGuest                       // firmware → lab
	Both      = ToGuest | FromGuest
)

func (d Direction) String() string {
	switch d {
	case ToGuest:
		return "to-guest"
	case FromGuest:
		return "from-guest"
	case Both:
		return "both"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Scope selects the frames a fault applies to.
type Scope uint8

// Scopes: every frame, only TFTP (UDP port 69 or the windowed server's port on either side), only
// DHCP (UDP ports 67/68).
const (
	ScopeAll Scope = iota
	ScopeTFTP
	ScopeDHCP
)

// Faults describes frame-level impairments. The zero value injects nothing.
type Faults struct {
	Loss, Dup, Reorder, Corrupt float64       // per-frame probability in percent (0..100)
	Delay, Jitter               time.Duration // every affected frame waits Delay + rand[0, Jitter)
	SilenceAfter                int           // > 0: after this many in-scope frames to the guest, drop all further ones
	Scope                       Scope
	Dir                         Direction // 0 means Both
	Seed                        int64
}

// Active reports whether f changes anything.
func (f Faults) Active() bool {
	return f.Loss > 0 || f.Dup > 0 || f.Reorder > 0 || f.Corrupt > 0 || f.Delay > 0 || f.Jitter > 0 || f.SilenceAfter > 0
}

// FaultStats counts what the injector did.
type FaultStats struct {
	Frames, InScope, Dropped, Duplicated, Reordered, Corrupted, Delayed, Silenced int
}

func (s FaultStats) String() string {
	return fmt.Sprintf("frames=%d in-scope=%d dropped=%d duplicated=%d reordered=%d corrupted=%d delayed=%d silenced=%d",
		s.Frames, s.InScope, s.Dropped, s.Duplicated, s.Reordered, s.Corrupted, s.Delayed, s.Silenced)
}

// Delivery is one frame to deliver After the decision (0 = now).
type Delivery struct {
	Frame []byte
	After time.Duration
}

// reorderHold is how long a frame picked for reordering waits when no later frame overtakes it.
const reorderHold = 30 * time.Millisecond

// Injector decides, frame by frame, what the link does. It is deterministic for a given Seed and
// frame sequence; time is applied by the caller (the pump).
type Injector struct {
	f        Faults
	tftpPort uint16 // extra UDP port that counts as TFTP (the windowed server's data port); 0 = none

	mu     sync.Mutex
	rng    *rand.Rand
	sentTo int // in-scope frames already passed to the guest (for SilenceAfter)
	stats  FaultStats
}

// NewInjector returns an injector for f.
func NewInjector(f Faults) *Injector {
	if f.Dir == 0 {
		f.Dir = Both
	}
	return &Injector{f: f, rng: rand.New(rand.NewSource(f.Seed))}
}

// Stats returns a snapshot of the counters.
func (in *Injector) Stats() FaultStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}

// Apply decides the fate of one frame travelling in dir and returns what to deliver: nothing
// (lost or silenced), the frame, or the frame twice; each possibly corrupted or delayed. Frames
// picked for reordering come back with After = reorderHold plus the delay, so later frames overtake them.
// The returned frames never alias frame.
func (in *Injector) Apply(frame []byte, dir Direction) []Delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stats.Frames++
	if in.f.Dir&dir == 0 || !in.inScope(frame) {
		return []Delivery{{Frame: clone(frame)}}
	}
	in.stats.InScope++
	if dir == ToGuest && in.f.SilenceAfter > 0 {
		if in.sentTo >= in.f.SilenceAfter {
			in.stats.Silenced++
			return nil
		}
		in.sentTo++
	}
	if in.hit(in.f.Loss) {
		in.stats.Dropped++
		return nil
	}
	copies := 1
	if in.hit(in.f.Dup) {
		in.stats.Duplicated++
		copies = 2
	}
	var out []Delivery
	for i := 0; i < copies; i++ {
		d := Delivery{Frame: clone(frame)}
		if in.hit(in.f.Corrupt) {
			in.stats.Corrupted++
			corrupt(d.Frame, in.rng)
		}
		if in.f.Delay > 0 || in.f.Jitter > 0 {
			in.stats.Delayed++
			d.After = in.f.Delay
			if in.f.Jitter > 0 {
				d.After += time.Duration(in.rng.Int63n(int64(in.f.Jitter)))
			}
		}
		if i == 0 && in.hit(in.f.Reorder) {
			in.stats.Reordered++
			d.After += reorderHold
		}
		out = append(out, d)
	}
	return out
}

func (in *Injector) hit(pct float64) bool {
	return pct > 0 && in.rng.Float64()*100 < pct
}

// inScope classifies frame by its UDP ports (Ethernet II + IPv4 + UDP only).
func (in *Injector) inScope(frame []byte) bool {
	if in.f.Scope == ScopeAll {
		return true
	}
	src, dst, ok := udpPorts(frame)
	if !ok {
		return false
	}
	switch in.f.Scope {
	case ScopeTFTP:
		t := in.tftpPort
		return src == 69 || dst == 69 || (t != 0 && (src == t || dst == t))
	case ScopeDHCP:
		return src == 67 || dst == 67 || src == 68 || dst == 68
	}
	return false
}

// udpPorts returns the UDP ports of an Ethernet II / IPv4 / UDP frame.
func udpPorts(frame []byte) (src, dst uint16, ok bool) {
	const ethLen = 14
	if len(frame) < ethLen+20+8 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return 0, 0, false
	}
	ip := frame[ethLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || ip[9] != 17 || len(ip) < ihl+8 {
		return 0, 0, false
	}
	udp := ip[ihl:]
	return binary.BigEndian.Uint16(udp[0:2]), binary.BigEndian.Uint16(udp[2:4]), true
}

// corrupt flips one random bit beyond the Ethernet header, so the frame still reaches the IP
// layer and the checksums have to catch it.
func corrupt(frame []byte, rng *rand.Rand) {
	if len(frame) <= 14 {
		return
	}
	i := 14 + rng.Intn(len(frame)-14)
	frame[i] ^= 1 << uint(rng.Intn(8))
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
