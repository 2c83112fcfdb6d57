package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// QEMUNetbootImage is QEMU's own s390-netboot.img (package qemu-system-data).
const QEMUNetbootImage = "/usr/share/qemu/s390-netboot.img"

// Outcome is the verdict on one scenario run.
type Outcome string

// Outcomes. XFail and XPass apply when the scenario marks the firmware as expected to fail.
const (
	Pass  Outcome = "PASS"
	Fail  Outcome = "FAIL"
	Hang  Outcome = "HANG" // killed at the scenario's time bound without meeting its wants
	XFail Outcome = "XFAIL"
	XPass Outcome = "XPASS"
	Error Outcome = "ERROR" // the lab or QEMU could not run the scenario
)

// OK reports whether the outcome is expected (PASS or XFAIL).
func (o Outcome) OK() bool { return o == Pass || o == XFail }

// RunOptions configures Run.
type RunOptions struct {
	FirmwareName string // the key for xfail and expect lines: "qemu" for QEMU's image, "netipl" for any other
	Firmware     string // path of the netboot image given to -global s390-ipl.netboot_fw
	QEMU         string // qemu-system-s390x binary; "" = from PATH
	Fixtures     string // directory with vmlinuz and initrd.gz
	OutDir       string // per-scenario console, lab log and pcap; "" = none kept
	Memory       string // guest RAM; "" = 512
	Link         string // "stream" (default: -netdev stream over TCP) or "dgram" (-netdev dgram over UDP)
	// KernelMode starts the firmware with -kernel and a NIC without bootindex (design §1
	// "standalone", the only way on QEMU >= 9.2) instead of -global s390-ipl.netboot_fw.
	KernelMode bool
	Console    io.Writer
}

// Result is the outcome of one scenario.
type Result struct {
	Scenario *Scenario
	Outcome  Outcome
	Elapsed  time.Duration
	Reason   string // why it failed, or the xfail reason
	Console  string // rendered console text
	LabLog   string
	Faults   FaultStats
}

// BuildConfig turns the scenario's file specs into a lab Config; fixtures is the directory
// holding vmlinuz and initrd.gz.
func (sc *Scenario) BuildConfig(fixtures string) (Config, error) {
	cfg := Config{DHCP: sc.DHCP, DNS: sc.DNS, Faults: sc.Faults, PinTFTP: sc.PinTFTP, IPv6: sc.IPv6, Files: map[string]*File{}}
	rng := rand.New(rand.NewSource(1))
	for _, fs := range sc.Files {
		var data []byte
		switch fs.Kind {
		case "kernel", "initrd":
			name := map[string]string{"kernel": "vmlinuz", "initrd": "initrd.gz"}[fs.Kind]
			b, err := os.ReadFile(filepath.Join(fixtures, name))
			if err != nil {
				return Config{}, fmt.Errorf("scenario %s: file %s: %w (run tests/fixtures/fetch.sh)", sc.Name, fs.Name, err)
			}
			data = b
		case "zeros":
			data = make([]byte, fs.N)
		case "random":
			data = make([]byte, fs.N)
			rng.Read(data)
		case "text":
			sep := "\n"
			if fs.CRLF {
				sep = "\r\n"
			}
			data = []byte(strings.Join(fs.Text, sep) + sep)
		case "u64", "sha256":
			continue // second pass: may refer to other files
		}
		cfg.Files[fs.Name] = &File{Data: data, ErrorAfter: fs.ErrorAfter, Truncate: fs.Truncate}
	}
	for _, fs := range sc.Files {
		if fs.Kind == "sha256" {
			sum := sha256.Sum256(cfg.Files[fs.SizeOf].Data)
			data := fmt.Appendf(nil, "%x  %s\n", sum, path.Base(fs.SizeOf))
			cfg.Files[fs.Name] = &File{Data: data, ErrorAfter: fs.ErrorAfter, Truncate: fs.Truncate}
			continue
		}
		if fs.Kind != "u64" {
			continue
		}
		v := uint64(fs.N)
		if fs.SizeOf != "" {
			v = uint64(len(cfg.Files[fs.SizeOf].served()))
		}
		cfg.Files[fs.Name] = &File{Data: binary.BigEndian.AppendUint64(nil, v), ErrorAfter: fs.ErrorAfter, Truncate: fs.Truncate}
	}
	return cfg, nil
}

// RenderConsole turns raw console bytes into text: CR dropped, BS deletes the previous character
// of the line.
func RenderConsole(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for _, c := range raw {
		switch c {
		case '\r':
		case '\b':
			if n := len(out); n > 0 && out[n-1] != '\n' {
				out = out[:n-1]
			}
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// matchInOrder finds each want in text after the previous match; it returns the first missing one.
func matchInOrder(text string, wants []string) (missing string, ok bool) {
	pos := 0
	for _, w := range wants {
		i := strings.Index(text[pos:], w)
		if i < 0 {
			return w, false
		}
		pos += i + len(w)
	}
	return "", true
}

// Judge decides the outcome for firmware from the console, the lab log and whether QEMU was
// killed at the time bound, before xfail marks are applied.
func (sc *Scenario) Judge(firmware, console, labLog string, timedOut bool) (Outcome, string) {
	e := sc.Expect(firmware)
	for _, w := range e.WantNot {
		if strings.Contains(console, w) {
			return Fail, fmt.Sprintf("console has %q", w)
		}
	}
	for _, w := range e.NoLog {
		if strings.Contains(labLog, w) {
			return Fail, fmt.Sprintf("lab log has %q", w)
		}
	}
	if m, ok := matchInOrder(console, e.Want); !ok {
		if timedOut {
			return Hang, fmt.Sprintf("killed at %v waiting for %q", sc.Timeout, m)
		}
		return Fail, fmt.Sprintf("console lacks %q", m)
	}
	if m, ok := matchInOrder(labLog, e.Log); !ok {
		return Fail, fmt.Sprintf("lab log lacks %q", m)
	}
	return Pass, ""
}

// applyXFail maps an outcome through the scenario's expected-failure mark for firmware.
func (sc *Scenario) applyXFail(firmware string, o Outcome, reason string) (Outcome, string) {
	why, ok := sc.XFail[firmware]
	if !ok || o == Error {
		return o, reason
	}
	if o == Pass {
		return XPass, "expected to fail: " + why
	}
	return XFail, fmt.Sprintf("%s (%s: %s)", why, o, reason)
}

// consoleBuf collects QEMU's output and signals when the wants are met.
type consoleBuf struct {
	mu    sync.Mutex
	raw   bytes.Buffer
	wants []string
	met   chan struct{}
	once  sync.Once
	tee   io.Writer
}

func (c *consoleBuf) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.raw.Write(p)
	text := RenderConsole(c.raw.Bytes())
	c.mu.Unlock()
	if c.tee != nil {
		c.tee.Write(p)
	}
	if _, ok := matchInOrder(text, c.wants); ok {
		c.once.Do(func() { close(c.met) })
	}
	return len(p), nil
}

func (c *consoleBuf) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.raw.Bytes()...)
}

// wantGrace is how long Run keeps QEMU alive after the wants are met, so wantnot lines printed
// right after still count.
const wantGrace = 300 * time.Millisecond

// Run runs one scenario: lab up, QEMU started with the firmware and connected to the lab, judged
// when QEMU exits, the wants are met, or the time bound passes (then QEMU is killed: a hang).
func Run(ctx context.Context, sc *Scenario, opt RunOptions) Result {
	start := time.Now()
	res := Result{Scenario: sc}
	fail := func(format string, args ...any) Result {
		res.Outcome, res.Reason, res.Elapsed = Error, fmt.Sprintf(format, args...), time.Since(start)
		return res
	}
	cfg, err := sc.BuildConfig(opt.Fixtures)
	if err != nil {
		return fail("%v", err)
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if opt.OutDir != "" {
		if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
			return fail("make output dir: %v", err)
		}
		pc, err1 := os.Create(filepath.Join(opt.OutDir, sc.Name+".pcap"))
		lg, err2 := os.Create(filepath.Join(opt.OutDir, sc.Name+".lab.log"))
		if err := errors.Join(err1, err2); err != nil {
			return fail("create output files: %v", err)
		}
		files = append(files, pc, lg)
		pcapBuf := bufio.NewWriterSize(pc, 1<<20) // one syscall per MiB, not two per frame
		defer pcapBuf.Flush()                     // runs after lab.Close (deferred later)
		cfg.Pcap, cfg.Log = pcapBuf, lg
	}
	lab, err := New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	defer lab.Close()

	qemu := opt.QEMU
	if qemu == "" {
		qemu = "qemu-system-s390x"
	}
	mem := opt.Memory
	if mem == "" {
		mem = "512"
	}
	mac := sc.MAC
	if mac == "" {
		mac = DefaultMAC
	}
	netdev, attach, closeLink, err := listenLink(opt.Link)
	if err != nil {
		return fail("%v", err)
	}
	defer closeLink()
	args := []string{"-M", "s390-ccw-virtio", "-m", mem, "-nographic", "-no-reboot", "-nodefaults",
		"-serial", "none", "-chardev", "stdio,id=con0,signal=off", "-device", "sclpconsole,chardev=con0",
		"-netdev", netdev}
	if opt.KernelMode {
		args = append(args, "-kernel", opt.Firmware, "-device", "virtio-net-ccw,netdev=n0,mac="+mac)
	} else {
		args = append(args, "-global", "s390-ipl.netboot_fw="+opt.Firmware, "-device", "virtio-net-ccw,netdev=n0,bootindex=1,mac="+mac)
	}
	args = append(args, sc.QEMU...)
	runCtx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	cmd := exec.Command(qemu, args...)
	con := &consoleBuf{wants: sc.Expect(opt.FirmwareName).Want, met: make(chan struct{}), tee: opt.Console}
	cmd.Stdout, cmd.Stderr, cmd.Stdin = con, con, nil
	if err := cmd.Start(); err != nil {
		return fail("start %s: %v", qemu, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	go attach(lab)

	timedOut := false
	select {
	case <-exited:
	case <-con.met:
		select {
		case <-exited:
		case <-time.After(wantGrace):
			cmd.Process.Kill()
			<-exited
		}
	case <-runCtx.Done():
		timedOut = ctx.Err() == nil
		cmd.Process.Kill()
		<-exited
	}
	res.Elapsed = time.Since(start)
	raw := con.bytes()
	res.Console = RenderConsole(raw)
	res.LabLog = lab.EventText()
	res.Faults = lab.FaultStats()
	if opt.OutDir != "" {
		os.WriteFile(filepath.Join(opt.OutDir, sc.Name+".console"), raw, 0o644)
	}
	if ctx.Err() != nil {
		return fail("interrupted: %v", ctx.Err())
	}
	o, why := sc.Judge(opt.FirmwareName, res.Console, res.LabLog, timedOut)
	res.Outcome, res.Reason = sc.applyXFail(opt.FirmwareName, o, why)
	return res
}

// listenLink prepares the host end of QEMU's NIC backend and returns the -netdev value, a
// function that attaches the lab once QEMU is up, and a cleanup.
func listenLink(kind string) (netdev string, attach func(*Lab), closeLink func(), err error) {
	switch kind {
	case "", "stream":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, nil, fmt.Errorf("listen for QEMU: %w", err)
		}
		netdev = "stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=" +
			strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		attach = func(l *Lab) {
			if c, err := ln.Accept(); err == nil {
				l.Attach(c)
			}
		}
		return netdev, attach, func() { ln.Close() }, nil
	case "dgram":
		// QEMU's end needs a free port: take one and release it just before QEMU binds it.
		probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return "", nil, nil, fmt.Errorf("pick a port for QEMU: %w", err)
		}
		qemuAddr := probe.LocalAddr().(*net.UDPAddr)
		probe.Close()
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, qemuAddr)
		if err != nil {
			return "", nil, nil, fmt.Errorf("open the lab's datagram link: %w", err)
		}
		mine := c.LocalAddr().(*net.UDPAddr)
		netdev = fmt.Sprintf("dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=%d,"+
			"remote.type=inet,remote.host=127.0.0.1,remote.port=%d", qemuAddr.Port, mine.Port)
		return netdev, func(l *Lab) { l.Attach(newDatagramLink(c)) }, func() { c.Close() }, nil
	}
	return "", nil, nil, fmt.Errorf("link %q: want stream or dgram", kind)
}
