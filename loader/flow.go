package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"netipl/boot"
	"netipl/netstack"
	"netipl/netstack/dhcpv4"
	"netipl/netstack/dns"
	"netipl/pxecfg"
)

// offerWait is how long DHCP offers are collected after the first one while none carries a boot
// file; an offer with a boot file is taken at once (dhcpv4 package doc).
const offerWait = 100 * time.Millisecond

// bufferReserve is loader memory kept free when payload parts must be buffered: the loader's own
// heap, gVisor's socket buffers and the kexec bookkeeping.
const bufferReserve = 32 << 20

// gcTuneMinRAM is the guest RAM from which the loader collects garbage less often: GOGC 800
// instead of 100 (the heap may grow to 9x its live size between collections), under a soft
// memory limit of RAM/8 that brings collections back if the heap ever gets large. Measured
// 2026-11-22 on commit 51acc4f (the UDP send fast path) with and without this setting, 20 MB
// initrd over slirp, -m 512, 10 interleaved pairs, load ~2: TFTP median 31.8 -> 34.8 MB/s
// (+9 %), faster in 7 of 10 pairs. The loader allocates only ~6 MiB in such a boot (one
// collection at GOGC 100, none at 800; heap 7-11 MiB at the end). Smaller guests keep the
// default: the smallest-RAM boot (bench/boot.sh, 128 MiB and below) must not spend RAM on garbage.
// Costs: garbage may hold up to RAM/8 (64 MiB at 512 MiB) where GOGC 100 keeps ~2x the live heap,
// so a payload that fits within ~40 MiB of the RAM left could fail to fit where the default would
// not; with 40 MiB or more of payload buffered in loader memory (pieces over netipl's own pages)
// the limit brings ~5x the collections and ~4x their CPU of GOGC 100 (bench/gclimit.sh: 0.06 ->
// 0.26 s per 200 MiB of garbage under qemu-s390x), bounded by the GC CPU limiter.
const gcTuneMinRAM = 512 << 20

// tuneGC applies gcTuneMinRAM's setting in a guest with at least that much RAM.
func tuneGC(ram uint64, guest bool) {
	if !guest || ram < gcTuneMinRAM {
		return
	}
	debug.SetGCPercent(800)
	debug.SetMemoryLimit(int64(ram / 8))
}

// netboot runs the whole flow; an error is the reason line.
func netboot(ctx context.Context, o options, con *console) error {
	con.start()
	guest := !o.DryRun
	m, err := machineFacts(o, guest)
	if err != nil {
		return err
	}
	con.mac(m.MAC)
	tuneGC(m.RAM, guest)
	st, err := netstack.New(netstack.Config{TapName: o.Tap, MAC: m.MAC})
	if err != nil {
		return err
	}
	// The stack is never closed: the loader ends in kexec (metal resets the NIC) or exit, so
	// there is nothing to tear down. (netstack.Close is safe now: its tap link joins the reader
	// only after gVisor's Stack.Wait has released the stack lock.)

	an, err := acquire(ctx, st, m, o, con)
	if err != nil {
		return err
	}
	lease := an.v4
	local := netip.IPv4Unspecified()
	if an.v6 != nil {
		local = netip.IPv6Unspecified()
	} else {
		if err := st.SetAddress(lease.Addr); err != nil {
			return fmt.Errorf("set address %s: %w", lease.Addr, err)
		}
		if lease.Router.IsValid() {
			if err := st.SetGateway(lease.Router); err != nil {
				return fmt.Errorf("set gateway %s: %w", lease.Router, err)
			}
		}
	}
	listen := func() (net.PacketConn, error) {
		return st.ListenUDP(netip.AddrPortFrom(local, 0))
	}
	resolver := &dns.Resolver{Listen: listen}
	if an.v6 != nil {
		resolver.Servers, resolver.Search = an.v6.Lease.DNS, an.v6.Lease.DomainSearch
	} else {
		resolver.Servers = lease.DNS
		if lease.DomainName != "" {
			resolver.Search = []string{lease.DomainName}
		}
	}
	fe := &netFetcher{listenUDP: listen, resolver: resolver, window: o.Window, stall: o.Stall}
	fe.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("dial %s: bad port", addr)
		}
		a, err := fe.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		return st.DialTCP(ctx, netip.AddrPortFrom(a, uint16(p)))
	}

	var facts pxecfg.Facts
	if an.v6 != nil {
		con.address(an.v6.Addr)
		server, bootfile, err := v6Facts(an.v6.Lease.BootURL)
		if err != nil {
			return err
		}
		con.server(server)
		con.bootfile(bootfile)
		facts = pxecfg.Facts{Server: server, Bootfile: bootfile, MAC: m.MAC, IP: an.v6.Addr, UUID: m.UUID}
	} else {
		con.address(lease.Addr.Addr())
		server := ""
		if bs, err := lease.BootServer(ctx, resolver.LookupHost); err == nil {
			server = bs.Addr.String()
			con.server(server)
		} else if !strings.Contains(lease.BootFile, "://") {
			return fmt.Errorf("dhcp: %w", err)
		}
		con.bootfile(lease.BootFile)
		facts = pxecfg.Facts{
			Server: server, Bootfile: lease.BootFile, ConfigFile: lease.ConfigFile, PathPrefix: lease.PathPrefix,
			MAC: m.MAC, IP: lease.Addr.Addr(), Mask: maskOf(lease.Addr), Gateway: lease.Router, UUID: m.UUID,
		}
	}
	server := facts.Server

	res, err := pxecfg.Discover(ctx, fe, facts, pxecfg.Options{
		Loadparm: m.Loadparm,
		Report:   func(s pxecfg.Step) { con.step(s, server) },
	})
	if err != nil {
		return err
	}
	b := res.Boot
	if res.Config != nil {
		for _, s := range res.Config.Say {
			con.say(s)
		}
		for _, n := range res.Config.Notes {
			con.note(n)
		}
		if res.Selection.Why != "" {
			con.selectedBy(res.Selection.Why)
		}
	}
	if res.INS != nil {
		con.ins(res.INS.Title)
	}
	if b.LocalBoot {
		return fmt.Errorf("the config chose LOCALBOOT %d: nothing to boot from the network", b.LocalBootType)
	}
	if b.Label != "" && res.INS == nil {
		con.entry(b.Label)
	}

	mem, closeMem, err := payloadMemory(o, m)
	if err != nil {
		return err
	}
	defer closeMem()
	ld := &loading{fe: fe, mem: mem, con: con, server: server, layout: boot.Layout{RAM: m.RAM}}
	plan, err := ld.load(ctx, b)
	if err != nil {
		return err
	}
	for _, p := range plan.Patches() {
		if _, err := mem.WriteAt(p.Data, int64(p.Addr)); err != nil {
			return fmt.Errorf("write %s: %w", p.What, err)
		}
	}
	if an.v4 != nil {
		if err := an.d4.Release(lease); err != nil {
			return fmt.Errorf("dhcp release: %w", err)
		}
	}
	if o.DryRun {
		con.dryRun()
		for _, l := range plan.Lines() {
			con.planLine(l)
		}
		segs := mem.Segments()
		var inPlace int
		for _, s := range segs {
			if s.InPlace {
				inPlace++
			}
		}
		st := mem.Stats()
		con.planLine(fmt.Sprintf("kexec: entry %#x, %d segments (%d in place), %d bytes mapped, %d bytes buffered",
			plan.Entry(), len(segs), inPlace, st.Mapped, st.Buffered))
		return nil
	}
	con.done()
	return boot.Exec(plan, mem)
}

// address is how the NIC got its address: a DHCPv4 lease (v4, d4) or the IPv6 fallback (v6).
type address struct {
	v4 *dhcpv4.Lease
	d4 *dhcpv4.Client
	v6 *ipv6Lease
}

// acquire gets a DHCPv4 lease, drawing QEMU's countdown. After the first DHCPv4 round without an
// answer the IPv6 fallback runs beside it, as QEMU's image tries IPv6 in every round; the first
// to succeed wins (DHCPv4 answers first on a dual-stack network). The countdown and DHCPv4's
// bound end both: when DHCPv4 gives up, the reason names what IPv6 got to.
func acquire(ctx context.Context, st *netstack.Stack, m machine, o options, con *console) (address, error) {
	c4, err := st.ListenUDP(netip.MustParseAddrPort("0.0.0.0:68"))
	if err != nil {
		return address{}, fmt.Errorf("dhcp: listen on port 68: %w", err)
	}
	// The first offer with a boot file ends the collection; without one, offers are collected for
	// offerWait after the first (a server with a boot file beats one without); the client's
	// 300 ms default is a third of QEMU's whole time to kernel.
	d := &dhcpv4.Client{Conn: c4, HWAddr: m.MAC, Total: o.DHCPTime, OfferWait: offerWait}
	if m.UUID != ([16]byte{}) {
		d.UUID = m.UUID[:]
	}
	ctx4, cancel4 := context.WithCancel(ctx)
	defer cancel4()
	ctx6, cancel6 := context.WithCancel(ctx)
	defer cancel6()
	startV6 := make(chan struct{})
	started := false
	rounds := dhcpv4.DefaultMaxRounds
	sent := 0 // DISCOVER rounds run; read after done4 (the channel orders it)
	d.Progress = func(e dhcpv4.Event) {
		switch {
		case e.Type == dhcpv4.EventDiscover:
			sent = max(sent, e.Round)
			con.dhcpRound(rounds - e.Round + 1)
		case e.Type == dhcpv4.EventTimeout && !started && !o.NoIPv6:
			started = true
			close(startV6)
		}
	}
	type result4 struct {
		lease *dhcpv4.Lease
		err   error
	}
	type result6 struct {
		lease *ipv6Lease
		err   error
	}
	done4 := make(chan result4, 1)
	done6 := make(chan result6, 1)
	con.dhcpStart()
	go func() {
		l, err := d.Acquire(ctx4)
		done4 <- result4{l, err}
	}()
	go func() {
		select {
		case <-startV6:
		case <-ctx6.Done():
			done6 <- result6{nil, errors.New("not tried")}
			return
		}
		l, err := acquireIPv6(ctx6, st, m)
		done6 <- result6{l, err}
	}()
	var r4 *result4
	var r6 *result6
	for r4 == nil || r6 == nil {
		select {
		case r := <-done4:
			r4 = &r
			if r.err == nil || r6 == nil {
				cancel6() // a lease, or DHCPv4 gave up: IPv6 stops too
			}
		case r := <-done6:
			r6 = &r
			if r.err == nil {
				cancel4()
			}
		}
	}
	switch {
	case r4.err == nil:
		con.dhcpDone()
		return address{v4: r4.lease, d4: d}, nil
	case r6.err == nil:
		con.dhcpDone()
		return address{v6: r6.lease}, nil
	}
	con.dhcpFailed(sent)
	if !started {
		return address{}, r4.err
	}
	return address{}, fmt.Errorf("%w; ipv6: %v", r4.err, r6.err)
}

// maskOf is the netmask of an IPv4 prefix (invalid for IPv6).
func maskOf(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() {
		return netip.Addr{}
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		b = [4]byte{}
	}
	return netip.AddrFrom4(b)
}

// payloadMemory opens where kernel and initrds go: /dev/mem in the guest; a file or loader
// memory in a dry run.
func payloadMemory(o options, m machine) (*boot.Mem, func(), error) {
	switch {
	case o.DryRun && o.MemFile == "":
		mem := boot.NewMem(nil, m.RAM, nil, m.RAM)
		return mem, func() {}, nil
	case o.DryRun:
		f, err := os.OpenFile(o.MemFile, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("-mem: %w", err)
		}
		err = f.Truncate(int64(m.RAM))
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("-mem: %w", err)
		}
		dm, err := boot.OpenDevMem(o.MemFile)
		if err != nil {
			return nil, nil, err
		}
		mem := boot.NewMem(dm, m.RAM, nil, 64<<20)
		return mem, func() { mem.Close(); dm.Close() }, nil
	}
	dm, err := boot.OpenDevMem("/dev/mem")
	if err != nil {
		return nil, nil, err
	}
	budget := uint64(0)
	if m.Free > bufferReserve {
		budget = m.Free - bufferReserve
	}
	return boot.NewMem(dm, m.RAM, m.Used, budget), func() {}, nil
}

// loading fetches the kernel and initrds into payload memory and builds the plan.
type loading struct {
	fe     *netFetcher
	mem    *boot.Mem
	con    *console
	server string
	layout boot.Layout
}

// load fetches b's kernel and initrds and returns the checked plan.
func (ld *loading) load(ctx context.Context, b pxecfg.Boot) (*boot.Plan, error) {
	if b.Kernel.URL == "" {
		return nil, pxecfg.ErrNoKernel
	}
	ksize, kurl, err := ld.fetch(ctx, b.Kernel, 0, ld.layout.RAM)
	if err != nil {
		return nil, err
	}
	if _, err := ld.layout.PlaceKernel(uint64(ksize)); err != nil {
		return nil, err
	}
	head := make([]byte, min(uint64(ksize), boot.HeaderSize))
	if _, err := ld.mem.ReadAt(head, 0); err != nil {
		return nil, err
	}
	k, err := boot.ParseKernel(head, uint64(ksize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", displayName(kurl, ld.server), err)
	}
	// Check the command line against this kernel before any initrd is downloaded.
	if _, err := boot.NewPlan(k, ld.layout, b.Cmdline, b.HasCmdline); err != nil {
		return nil, err
	}
	if err := ld.verify(ctx, kurl, boot.Range{Start: 0, Size: uint64(ksize)}); err != nil {
		return nil, err
	}
	for i, src := range b.Initrds {
		start := ld.layout.NextInitrd()
		if i > 0 {
			prev := ld.layout.Initrds[i-1]
			if err := ld.mem.Zero(boot.Range{Start: prev.End(), Size: start - prev.End()}); err != nil {
				return nil, err
			}
		}
		n, url, err := ld.fetch(ctx, src, start, ld.layout.Room())
		if err != nil {
			return nil, err
		}
		r, err := ld.layout.PlaceInitrd(displayName(url, ld.server), uint64(n))
		if err != nil {
			return nil, err
		}
		if err := ld.verify(ctx, url, r); err != nil {
			return nil, err
		}
	}
	if b.InitrdSize != 0 {
		if err := ld.layout.DeclareInitrdSize(b.InitrdSize); err != nil {
			return nil, err
		}
	}
	return boot.NewPlan(k, ld.layout, b.Cmdline, b.HasCmdline)
}

// fetch streams src to physical address base, at most limit bytes; on "not found" it tries
// QEMU's reading (src.Alt). It returns the size and the URL that worked. When both fail, the
// error names both URLs, so the reason line shows every name tried.
func (ld *loading) fetch(ctx context.Context, src pxecfg.Source, base, limit uint64) (int64, string, error) {
	n, err := ld.fetchURL(ctx, src.URL, base, limit)
	if err == nil || src.Alt == "" || !isNotFound(err) {
		return n, src.URL, err
	}
	n, err2 := ld.fetchURL(ctx, src.Alt, base, limit)
	if err2 == nil {
		return n, src.Alt, nil
	}
	first, alt := displayName(src.URL, ld.server), displayName(src.Alt, ld.server)
	if isNotFound(err2) {
		return 0, src.URL, fmt.Errorf("%s not found (tried %s, then %s): %w", src.Name, first, alt, err2)
	}
	return 0, src.URL, fmt.Errorf("%s not found, then %w", first, err2)
}

// fetchURL streams one URL to base, printing progress for big files and the result line.
func (ld *loading) fetchURL(ctx context.Context, url string, base, limit uint64) (int64, error) {
	name := displayName(url, ld.server)
	start := time.Now()
	var size int64 = -1
	onSize := func(n int64) error {
		size = n
		r := boot.Range{Start: base, Size: uint64(n)}
		if uint64(n) > limit {
			return fmt.Errorf("%s: %d bytes at %#x do not fit in %d MiB of RAM", name, n, base, ld.layout.RAM>>20)
		}
		if need, have := ld.mem.BufferEstimate(r), ld.mem.Budget(); need > have {
			return fmt.Errorf("%s: %s overlaps %d MiB that netipl uses, more than the %d MiB it can buffer", name, r, need>>20, have>>20)
		}
		return nil
	}
	next := int64(0)
	progress := func(got, total int64) {
		if total < 32<<20 || got < next || got >= total {
			return
		}
		ld.con.progress(name, got, total, time.Since(start))
		next = got + total/10
	}
	var n int64
	var err error
	if file, ok := ld.fe.takeFetched(url); ok {
		// the boot file pxecfg already downloaded to sniff it: its bytes, and its time for the rate
		start = start.Add(-file.took)
		n, err = replay(file, offsetWriter{ld.mem, int64(base)}, int64(limit), onSize)
	} else {
		n, err = ld.fe.Stream(ctx, url, offsetWriter{ld.mem, int64(base)}, int64(limit), onSize, progress)
	}
	if errors.Is(err, pxecfg.ErrTooLarge) {
		return 0, fmt.Errorf("%s does not fit in RAM: %d MiB free at %#x (%w)", name, limit>>20, base, err)
	}
	if err != nil {
		return 0, err
	}
	if size >= 0 && n != size {
		return 0, fmt.Errorf("%s: received %d bytes, the server announced %d", name, n, size)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: the file is empty", name)
	}
	ld.con.received(url, name, n, time.Since(start))
	return n, nil
}

// verify checks r against url's .sha256 sidecar when the server has one.
func (ld *loading) verify(ctx context.Context, url string, r boot.Range) error {
	side, err := ld.fe.Fetch(ctx, url+".sha256", 4096)
	if isNotFound(err) {
		return nil
	}
	name := displayName(url, ld.server)
	if err != nil {
		return fmt.Errorf("%s.sha256: %w", name, err)
	}
	want, err := parseSidecar(side)
	if err != nil {
		return fmt.Errorf("%s.sha256: %w", name, err)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for a := r.Start; a < r.End(); {
		k := min(uint64(len(buf)), r.End()-a)
		if _, err := ld.mem.ReadAt(buf[:k], int64(a)); err != nil {
			return err
		}
		h.Write(buf[:k])
		a += k
	}
	got := h.Sum(nil)
	if string(got) != string(want) {
		return fmt.Errorf("SHA256 mismatch: %s is %x, %s.sha256 says %x", name, got, name, want)
	}
	ld.con.verified(name)
	return nil
}

// parseSidecar reads a sha256sum line: 64 hex digits first, then anything (the file name).
func parseSidecar(b []byte) ([]byte, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return nil, errors.New("empty checksum file")
	}
	if len(f[0]) != 64 {
		return nil, fmt.Errorf("%q is not a SHA256 digest (64 hex digits)", truncate(f[0], 80))
	}
	d, err := hex.DecodeString(f[0])
	if err != nil {
		return nil, fmt.Errorf("%q is not a SHA256 digest (64 hex digits)", truncate(f[0], 80))
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
