// Command kexecprobe is the guest program of tests/nic's handoff test: on metal it checks the
// /dev/mem, /proc/iomem and kexec_load rules of docs/abi.md ("handoff contract"), then fetches
// a kernel and an initrd over HTTP through slirp, streams them to their final guest-physical
// addresses through /dev/mem (the kernel's first 8 KiB, which overlay the lowcore, stay in
// loader memory as a buffered segment), writes the parmarea (INITRD_START/SIZE at 0x10408/0x10410,
// COMMAND_LINE at 0x10480), and starts the kernel with kexec_load + reboot(LINUX_REBOOT_CMD_KEXEC).
//
//	kexecprobe -url http://10.0.2.2:PORT -cmdline 'console=ttysclp0 quiet marker=…'
//	kexecprobe -ipl-psw
//
// -ipl-psw starts miniKernel through entry 0 instead (a Linux kernel's own IPL PSW leads to
// its IPL-device reader, which a network boot cannot serve): segments that are buffered, in
// place with a zero-filled tail, and one whose destination is metal's own image at 64 MiB.
// The mini kernel checks them and stops the CPU (QEMU exits 0) or enters a disabled wait.
//
// It prints kvm-unit-tests style lines; the kernel's initrd then prints NETIPL-INITRD-OK and
// CMDLINE: … and powers off.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"netipl/netstack"
	"netipl/netstack/httpfetch"
)

const (
	lowcore      = 0x2000  // the kernel's first 8 KiB overlay the lowcore: metal refuses to map it
	initrdStart  = 0x10408 // Linux s390 parmarea
	initrdSize   = 0x10410
	maxCmdline   = 0x10430
	commandLine  = 0x10480
	legacyCmdMax = 896
	pageSize     = 4096
)

var (
	failures  int
	breakMini bool
)

func report(ok bool, format string, args ...any) {
	if ok {
		fmt.Printf("PASS: kexec: "+format+"\n", args...)
		return
	}
	failures++
	fmt.Printf("FAIL: kexec: "+format+"\n", args...)
}

func main() {
	base := flag.String("url", "http://10.0.2.2:8080", "HTTP server with vmlinuz and initrd.gz")
	cmdline := flag.String("cmdline", "console=ttysclp0 quiet", "kernel command line")
	ipl := flag.Bool("ipl-psw", false, "no network: start a built-in mini kernel through its IPL PSW at 0 (entry 0)")
	flag.BoolVar(&breakMini, "break", false, "with -ipl-psw: give the mini kernel a wrong pattern (it must then fail)")
	flag.Parse()
	var err error
	if *ipl {
		err = runIPLPSW()
	} else {
		err = run(*base, *cmdline)
	}
	if err != nil {
		fmt.Println(err)
		failures++
	}
	fmt.Printf("SUMMARY: kexec: %d failures\n", failures)
	os.Exit(1) // only a failed handoff returns here
}

type segment struct {
	buf   uintptr
	bufsz uint64
	mem   uint64
	memsz uint64
}

func kexecLoad(entry uint64, segs []segment, flags uint64) error {
	var p unsafe.Pointer
	if len(segs) > 0 {
		p = unsafe.Pointer(&segs[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, uintptr(entry), uintptr(len(segs)), uintptr(p), uintptr(flags), 0, 0)
	runtime.KeepAlive(segs)
	if e != 0 {
		return e
	}
	return nil
}

func pageUp(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }

func memTotal() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("kexecprobe: /proc/meminfo has no MemTotal")
}

// physWriter writes guest-physical offsets [0, lowcore) into low and the rest into a /dev/mem
// mapping of [lowcore, …) (the kernel), or everything into a mapping at base (an initrd).
type physWriter struct {
	base uint64
	low  []byte // nil: no lowcore part
	m    []byte
}

func (w *physWriter) WriteAt(b []byte, off int64) (int, error) {
	n := 0
	for len(b) > 0 {
		a := w.base + uint64(off) + uint64(n)
		var dst []byte
		switch {
		case w.low != nil && a < lowcore:
			dst = w.low[a:]
		case a-w.base-uint64(len(w.low)) < uint64(len(w.m)):
			dst = w.m[a-w.base-uint64(len(w.low)):]
		default:
			return n, fmt.Errorf("kexecprobe: write at 0x%x: beyond the mapping", a)
		}
		k := copy(dst, b)
		b = b[k:]
		n += k
	}
	return n, nil
}

func checkRules(mem *os.File, ram uint64) {
	fd := int(mem.Fd())
	try := func(off, n int64) error {
		b, err := unix.Mmap(fd, off, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err == nil {
			unix.Munmap(b)
		}
		return err
	}
	err := try(0, pageSize)
	report(errors.Is(err, syscall.EBUSY), "mmap /dev/mem of the lowcore: %v", err)
	err = try(0x4000000, pageSize)
	report(errors.Is(err, syscall.EBUSY), "mmap /dev/mem of metal's image at 64 MiB: %v", err)
	err = try(0x2000+1, pageSize)
	report(errors.Is(err, syscall.EINVAL), "mmap /dev/mem at an unaligned offset: %v", err)
	err = try(int64(ram), pageSize)
	report(errors.Is(err, syscall.EINVAL), "mmap /dev/mem beyond RAM: %v", err)
	b, err := unix.Mmap(fd, 60<<20, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		report(false, "mmap /dev/mem of 1 MiB at 60 MiB: %v", err)
		return
	}
	b[0], b[len(b)-1] = 0x5a, 0xa5
	err = try(60<<20+pageSize, pageSize)
	report(errors.Is(err, syscall.EBUSY), "mmap of a range that is already mapped: %v", err)
	iomem, _ := os.ReadFile("/proc/iomem")
	report(bytes.Contains(iomem, []byte(fmt.Sprintf("  %08x-%08x : Reserved\n", 60<<20, 61<<20-1))),
		"/proc/iomem lists the mapped 1 MiB as Reserved")
	unix.Munmap(b)
	b, err = unix.Mmap(fd, 60<<20, 1<<20, unix.PROT_READ, unix.MAP_SHARED)
	report(err == nil && b[0] == 0x5a && b[len(b)-1] == 0xa5, "remap after munmap sees the same memory: %v", err)
	if err == nil {
		unix.Munmap(b)
	}

	buf := make([]byte, pageSize)
	one := func(mem, memsz uint64) segment {
		return segment{buf: uintptr(unsafe.Pointer(&buf[0])), bufsz: uint64(len(buf)), mem: mem, memsz: memsz}
	}
	err = unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
	report(errors.Is(err, syscall.EINVAL), "reboot(KEXEC) with nothing loaded: %v", err)
	err = kexecLoad(0x12345, []segment{one(0x100000, pageSize)}, unix.KEXEC_ARCH_S390)
	report(errors.Is(err, syscall.EINVAL), "kexec_load with entry 0x12345: %v", err)
	err = kexecLoad(0x10000, []segment{one(0x100000, 2*pageSize), one(0x101000, pageSize)}, unix.KEXEC_ARCH_S390)
	report(errors.Is(err, syscall.EINVAL), "kexec_load with overlapping segments: %v", err)
	err = kexecLoad(0x10000, []segment{one(0x100800, pageSize)}, unix.KEXEC_ARCH_S390)
	report(errors.Is(err, syscall.EINVAL), "kexec_load with an unaligned destination: %v", err)
	err = kexecLoad(0x10000, []segment{one(ram, pageSize)}, unix.KEXEC_ARCH_S390)
	report(errors.Is(err, syscall.EADDRNOTAVAIL), "kexec_load beyond RAM: %v", err)
	err = kexecLoad(0x10000, []segment{one(0x100000, pageSize)}, 1) // KEXEC_ON_CRASH
	report(errors.Is(err, syscall.EINVAL), "kexec_load with KEXEC_ON_CRASH: %v", err)
	err = kexecLoad(0x10000, nil, unix.KEXEC_ARCH_S390)
	report(err == nil, "kexec_load with no segments unloads: %v", err)
	runtime.KeepAlive(buf)
}

func run(base, cmdline string) error {
	ram, err := memTotal()
	if err != nil {
		return err
	}
	mem, err := os.OpenFile("/dev/mem", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("kexecprobe: open /dev/mem: %w", err)
	}
	iomem, err := os.ReadFile("/proc/iomem")
	report(err == nil && bytes.HasPrefix(iomem, []byte(fmt.Sprintf("00000000-%08x : System RAM\n", ram-1))) &&
		bytes.Contains(iomem, []byte(" : Kernel code\n")) && bytes.Contains(iomem, []byte(" : Kernel data\n")),
		"/proc/iomem: System RAM, Kernel code, Kernel data (%v)", err)
	s := bufio.NewScanner(bytes.NewReader(iomem))
	for s.Scan() {
		fmt.Println("IOMEM:", s.Text())
	}
	checkRules(mem, ram)

	macText, err := os.ReadFile("/sys/class/net/eth0/address")
	if err != nil {
		return fmt.Errorf("kexecprobe: read MAC: %w", err)
	}
	mac, err := net.ParseMAC(strings.TrimSpace(string(macText)))
	if err != nil {
		return fmt.Errorf("kexecprobe: parse MAC: %w", err)
	}
	st, err := netstack.New(netstack.Config{TapName: "eth0", MAC: mac})
	if err != nil {
		return fmt.Errorf("kexecprobe: %w", err)
	}
	st.SetAddress(netip.MustParsePrefix("10.0.2.15/24"))
	st.SetGateway(netip.MustParseAddr("10.0.2.2"))
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, err
		}
		return st.DialTCP(ctx, ap)
	}
	fd := int(mem.Fd())

	// The kernel goes to 0: its first 8 KiB into loader memory, the rest straight into /dev/mem.
	kernel := &physWriter{low: make([]byte, lowcore)}
	var kernelMap []byte
	c := &httpfetch.Client{Dial: dial, OnSize: func(size int64) error {
		if size <= lowcore {
			return fmt.Errorf("kernel of %d bytes: too small", size)
		}
		if kernelMap != nil {
			return nil // a restarted download reuses the mapping
		}
		m, err := unix.Mmap(fd, lowcore, int(pageUp(uint64(size))-lowcore), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("mmap /dev/mem for the kernel: %w", err)
		}
		kernelMap, kernel.m = m, m
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kres, err := c.Get(ctx, base+"/vmlinuz", kernel)
	if err != nil {
		return fmt.Errorf("kexecprobe: %w", err)
	}
	ksize := uint64(kres.Size)
	fmt.Printf("  kernel: %d bytes\n", ksize)

	istart := pageUp(ksize)
	initrd := &physWriter{base: istart}
	c.OnSize = func(size int64) error {
		if initrd.m != nil {
			return nil
		}
		m, err := unix.Mmap(fd, int64(istart), int(pageUp(uint64(size))), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("mmap /dev/mem for the initrd: %w", err)
		}
		initrd.m = m
		return nil
	}
	ires, err := c.Get(ctx, base+"/initrd.gz", initrd)
	if err != nil {
		return fmt.Errorf("kexecprobe: %w", err)
	}
	isize := uint64(ires.Size)
	fmt.Printf("  initrd: %d bytes at 0x%x\n", isize, istart)

	// The parmarea lies in the mapped part of the kernel (offset 0x10400 - lowcore).
	pa := kernelMap[0x10400-lowcore:]
	be := func(off int) uint64 {
		var v uint64
		for _, c := range pa[off-0x10400 : off-0x10400+8] {
			v = v<<8 | uint64(c)
		}
		return v
	}
	put := func(off int, v uint64) {
		for i := 7; i >= 0; i-- {
			pa[off-0x10400+i] = byte(v)
			v >>= 8
		}
	}
	limit := be(maxCmdline)
	if limit == 0 {
		limit = legacyCmdMax
	}
	if uint64(len(cmdline)) >= limit {
		return fmt.Errorf("kexecprobe: command line of %d bytes: the kernel takes %d", len(cmdline), limit-1)
	}
	put(initrdStart, istart)
	put(initrdSize, isize)
	n := copy(pa[commandLine-0x10400:], cmdline)
	pa[commandLine-0x10400+n] = 0

	entry := uint64(0x10000)
	if string(kernelMap[0x10008-lowcore:0x10008-lowcore+6]) != "S390EP" {
		return errors.New("kexecprobe: no S390EP at 0x10008")
	}
	segs := []segment{
		{buf: uintptr(unsafe.Pointer(&kernel.low[0])), bufsz: lowcore, mem: 0, memsz: lowcore},
		{buf: uintptr(unsafe.Pointer(&kernelMap[0])), bufsz: uint64(len(kernelMap)), mem: lowcore, memsz: uint64(len(kernelMap))},
		{buf: uintptr(unsafe.Pointer(&initrd.m[0])), bufsz: uint64(len(initrd.m)), mem: istart, memsz: uint64(len(initrd.m))},
	}
	err = kexecLoad(entry, segs, unix.KEXEC_ARCH_S390)
	report(err == nil, "kexec_load of kernel (0x%x bytes, first 0x%x buffered) and initrd at 0x%x: %v", ksize, lowcore, istart, err)
	if err != nil {
		return nil
	}
	fmt.Println("Network loading done, starting kernel...")
	err = unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
	runtime.KeepAlive(kernel.low)
	return fmt.Errorf("kexecprobe: reboot(LINUX_REBOOT_CMD_KEXEC) returned: %v", err)
}

// miniKernel runs at 0x2000 in 64-bit mode. It checks the pattern words at 0x3000/0x3ff8 (an
// in-place segment) and 0x4000000/0x400fff8 (a buffered segment over metal's image), that
// [0x4000, 0x5000) (the in-place segment's memsz tail, filled with 0xff beforehand) reads zero,
// then SIGP-stops CPU 0; on any mismatch it loads a disabled-wait PSW (address 0x0badc0de).
// Assembled with GNU as from:
//
//	start:	lghi	%r3,0x3000
//		larl	%r2,want
//		clc	0(8,%r3),0(%r2)
//		jne	fail
//		clc	0xff8(8,%r3),8(%r2)
//		jne	fail
//		llilh	%r3,0x400
//		clc	0(8,%r3),0(%r2)
//		jne	fail
//		llilf	%r3,0x400f000
//		clc	0xff8(8,%r3),8(%r2)
//		jne	fail
//		lghi	%r3,0x4000
//		lghi	%r4,512
//	zero:	lg	%r5,0(%r3)
//		ltgr	%r5,%r5
//		jnz	fail
//		la	%r3,8(%r3)
//		brctg	%r4,zero
//		lghi	%r2,0
//		lghi	%r3,0
//		sigp	%r2,%r3,5
//		larl	%r2,done          // until the stop takes effect: a quiesce wait (QEMU exits 0 too)
//		lpswe	0(%r2)
//	fail:	larl	%r2,stop
//		lpswe	0(%r2)
//		.align	8
//	stop:	.quad	0x0002000180000000, 0x0badc0de
//	done:	.quad	0x0002000180000000, 0xfff
//	want:	.quad	0x4e455449504c2d31, 0x4e455449504c2d32
var miniKernel = []byte{
	0xa7, 0x39, 0x30, 0x00, 0xc0, 0x20, 0x00, 0x00, 0x00, 0x4e, 0xd5, 0x07,
	0x30, 0x00, 0x20, 0x00, 0xa7, 0x74, 0x00, 0x30, 0xd5, 0x07, 0x3f, 0xf8,
	0x20, 0x08, 0xa7, 0x74, 0x00, 0x2b, 0xa5, 0x3e, 0x04, 0x00, 0xd5, 0x07,
	0x30, 0x00, 0x20, 0x00, 0xa7, 0x74, 0x00, 0x24, 0xc0, 0x3f, 0x04, 0x00,
	0xf0, 0x00, 0xd5, 0x07, 0x3f, 0xf8, 0x20, 0x08, 0xa7, 0x74, 0x00, 0x1c,
	0xa7, 0x39, 0x40, 0x00, 0xa7, 0x49, 0x02, 0x00, 0xe3, 0x50, 0x30, 0x00,
	0x00, 0x04, 0xb9, 0x02, 0x00, 0x55, 0xa7, 0x74, 0x00, 0x11, 0x41, 0x30,
	0x30, 0x08, 0xa7, 0x47, 0xff, 0xf7, 0xa7, 0x29, 0x00, 0x00, 0xa7, 0x39,
	0x00, 0x00, 0xae, 0x23, 0x00, 0x05, 0xc0, 0x20, 0x00, 0x00, 0x00, 0x15,
	0xb2, 0xb2, 0x20, 0x00, 0xc0, 0x20, 0x00, 0x00, 0x00, 0x08, 0xb2, 0xb2,
	0x20, 0x00, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x00, 0x02, 0x00, 0x01,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0xad, 0xc0, 0xde,
	0x00, 0x02, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x0f, 0xff, 0x4e, 0x45, 0x54, 0x49, 0x50, 0x4c, 0x2d, 0x31,
	0x4e, 0x45, 0x54, 0x49, 0x50, 0x4c, 0x2d, 0x32,
}

var want1, want2 = []byte("NETIPL-1"), []byte("NETIPL-2")

func runIPLPSW() error {
	mem, err := os.OpenFile("/dev/mem", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("kexecprobe: open /dev/mem: %w", err)
	}
	fd := int(mem.Fd())
	dirty, err := unix.Mmap(fd, 0x4000, pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("kexecprobe: mmap /dev/mem at 0x4000: %w", err)
	}
	for i := range dirty {
		dirty[i] = 0xff // the zero fill of the next segment's tail must clear this
	}
	unix.Munmap(dirty)
	inPlace, err := unix.Mmap(fd, 0x3000, pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("kexecprobe: mmap /dev/mem at 0x3000: %w", err)
	}
	copy(inPlace, want1)
	copy(inPlace[pageSize-8:], want2)
	if breakMini {
		inPlace[pageSize-1] ^= 1
	}
	low := make([]byte, lowcore)
	copy(low, []byte{0x00, 0x08, 0x00, 0x01, 0x80, 0x00, 0x20, 0x00}) // short PSW: 64-bit, address 0x2000
	code := make([]byte, pageSize)
	copy(code, miniKernel)
	over := make([]byte, 0x10000)
	copy(over, want1)
	copy(over[len(over)-8:], want2)
	segs := []segment{
		{buf: uintptr(unsafe.Pointer(&low[0])), bufsz: lowcore, mem: 0, memsz: lowcore},
		{buf: uintptr(unsafe.Pointer(&code[0])), bufsz: pageSize, mem: 0x2000, memsz: pageSize},
		{buf: uintptr(unsafe.Pointer(&inPlace[0])), bufsz: pageSize, mem: 0x3000, memsz: 2 * pageSize},
		{buf: uintptr(unsafe.Pointer(&over[0])), bufsz: uint64(len(over)), mem: 0x4000000, memsz: uint64(len(over))},
	}
	err = kexecLoad(0, segs, unix.KEXEC_ARCH_S390)
	report(err == nil, "kexec_load of the mini kernel with entry 0: %v", err)
	if err != nil {
		return nil
	}
	fmt.Println("Network loading done, starting kernel...")
	err = unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
	runtime.KeepAlive(low)
	runtime.KeepAlive(code)
	runtime.KeepAlive(over)
	return fmt.Errorf("kexecprobe: reboot(LINUX_REBOOT_CMD_KEXEC) returned: %v", err)
}
