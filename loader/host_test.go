package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"netipl/boot"
	"netipl/internal/testnet"
	"netipl/netstack/dhcpv4"
)

// The host-mode tests run the whole loader flow (design §6 tier 3) over a tap device in a
// private network namespace against dnsmasq (DHCP + TFTP) and an HTTP server, with -dry-run and
// -mem: the plan's bytes land in a file standing in for guest RAM, which the tests read back.
// They need root, iproute2, /dev/net/tun and dnsmasq; otherwise they skip (fail under CI=true).

const testMAC = "52:54:00:12:34:56"

// lab is a namespace with a tap (10.0.2.2/24 on the host side), dnsmasq serving root over
// DHCP+TFTP, and an HTTP server on 10.0.2.2:8080 serving the same tree.
type lab struct {
	ns, root string
	dnsmasq  *testnet.LockedBuffer
}

var labSeq int

func newLab(t *testing.T, bootfile string, files map[string][]byte, dnsmasqArgs ...string) *lab {
	t.Helper()
	return newLabWith(t, false, bootfile, files, dnsmasqArgs...)
}

// newLab6 is an IPv6-only lab: no DHCPv4; fd00::2/64 on the tap, dnsmasq sending RAs for
// SLAAC (O flag) and answering DHCPv6 Information-Requests with bootURL (option 59; "" = none).
func newLab6(t *testing.T, bootURL string, files map[string][]byte) *lab {
	t.Helper()
	args := []string{"--enable-ra", "--dhcp-range=::,constructor:tap0,ra-stateless,64,1h"}
	if bootURL != "" {
		args = append(args, "--dhcp-option=option6:bootfile-url,"+bootURL)
	}
	return newLabWith(t, true, "", files, args...)
}

func newLabWith(t *testing.T, v6only bool, bootfile string, files map[string][]byte, dnsmasqArgs ...string) *lab {
	t.Helper()
	testnet.NeedRoot(t, "the host-mode test (network namespace and tap)")
	testnet.LookPath(t, "ip")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testnet.SkipOrFail(t, "no /dev/net/tun: %v", err)
	}
	labSeq++
	l := &lab{ns: fmt.Sprintf("nipl-loader-%d-%d", os.Getpid(), labSeq), root: t.TempDir()}
	for name, data := range files {
		p := filepath.Join(l.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testnet.AddNetns(t, l.ns)
	testnet.Run(t, "ip", "-n", l.ns, "link", "set", "lo", "up")
	testnet.Run(t, "ip", "-n", l.ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	testnet.Run(t, "ip", "-n", l.ns, "addr", "add", "10.0.2.2/24", "dev", "tap0")
	if v6only {
		testnet.Run(t, "ip", "-n", l.ns, "addr", "add", "fd00::2/64", "dev", "tap0", "nodad")
	}
	testnet.Run(t, "ip", "-n", l.ns, "link", "set", "tap0", "up")
	args := []string{"--enable-tftp", "--tftp-root=" + l.root, "--no-ping"}
	if !v6only {
		args = append(args, "--dhcp-range=10.0.2.15,10.0.2.15,255.255.255.0,1h", "--dhcp-option=3,10.0.2.2",
			"--dhcp-boot="+bootfile+",,10.0.2.2")
	}
	l.dnsmasq = testnet.StartDnsmasq(t, l.ns, "tap0", "TFTP root is", append(args, dnsmasqArgs...)...)
	err := testnet.InNetns(l.ns, func() error {
		addr := "10.0.2.2:8080"
		if v6only {
			addr = "[fd00::2]:8080"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.FileServer(http.Dir(l.root))}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("http server in %s: %v", l.ns, err)
	}
	return l
}

// boot runs the loader in the namespace with -dry-run -mem and returns its status, console and RAM.
func (l *lab) boot(t *testing.T, extra ...string) (int, string, []byte) {
	t.Helper()
	mem := filepath.Join(t.TempDir(), "ram")
	args := append([]string{"-tap", "tap0", "-mac", testMAC, "-dry-run", "-mem", mem, "-ram", "64",
		"-loadparm", "", "-uuid", "", "-dhcp-timeout", "20s", "-timeout", "60s"}, extra...)
	var out, errb bytes.Buffer
	var code int
	if err := testnet.InNetns(l.ns, func() error { code = run(args, &out, &errb); return nil }); err != nil {
		t.Fatal(err)
	}
	if errb.Len() > 0 {
		t.Logf("stderr: %s", errb.String())
	}
	ram, _ := os.ReadFile(mem)
	return code, out.String(), ram
}

// bootOK is boot for a boot that must succeed: it returns the console and RAM.
func (l *lab) bootOK(t *testing.T, extra ...string) (string, []byte) {
	t.Helper()
	code, con, ram := l.boot(t, extra...)
	if code != 0 {
		t.Fatalf("loader exit %d:\n%s\ndnsmasq:\n%s", code, con, l.dnsmasq)
	}
	return con, ram
}

// bootFail is boot for a boot that must fail: exit status 1; it returns the console.
func (l *lab) bootFail(t *testing.T, extra ...string) string {
	t.Helper()
	code, con, _ := l.boot(t, extra...)
	if code != 1 {
		t.Fatalf("loader exit %d, want 1:\n%s", code, con)
	}
	return con
}

// kernelImage is a synthetic s390x image: S390EP, max_command_line_size maxCmd, a pattern.
func kernelImage(size int, maxCmd uint64) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i * 13)
	}
	binary.BigEndian.PutUint64(b, 0x0008000080000200)
	copy(b[0x10008:], "S390EP\x00\x01")
	binary.BigEndian.PutUint64(b[0x10400:], 0)
	binary.BigEndian.PutUint64(b[0x10408:], 0)
	binary.BigEndian.PutUint64(b[0x10410:], 0)
	binary.BigEndian.PutUint64(b[0x10430:], maxCmd)
	return b
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i>>8) ^ seed ^ byte(i)
	}
	return b
}

// wantInOrder checks that the console holds each line (a full line), in order.
func wantInOrder(t *testing.T, console string, lines ...string) {
	t.Helper()
	rest := console
	for _, l := range lines {
		i := strings.Index(rest, l)
		if i < 0 {
			t.Errorf("console lacks %q (in order):\n%s", l, console)
			return
		}
		rest = rest[i+len(l):]
	}
}

// wantFailure checks that the console ends the boot with the one reason line, starting with
// reason, then "Failed to load OS from network".
func wantFailure(t *testing.T, console, reason string) {
	t.Helper()
	wantInOrder(t, console, reason, "Failed to load OS from network\n")
	if n := strings.Count(console, "netipl: "); n != 1 {
		t.Errorf("%d reason lines, want 1:\n%s", n, console)
	}
}

// checkRAM checks the kernel at 0, the initrds after it and the parmarea.
func checkRAM(t *testing.T, ram, kernel []byte, initrds [][]byte, cmdline string) {
	t.Helper()
	if len(ram) != 64<<20 {
		t.Fatalf("RAM file is %d bytes", len(ram))
	}
	// The lowcore part stays in loader memory (handed to kexec as a buffer), so the file has zeros there.
	if !bytes.Equal(ram[boot.LowcoreSize:0x10400], kernel[boot.LowcoreSize:0x10400]) ||
		!bytes.Equal(ram[0x10480+4096:len(kernel)], kernel[0x10480+4096:]) {
		t.Errorf("kernel bytes differ in RAM")
	}
	start := (uint64(len(kernel)) + 4095) &^ 4095
	at := start
	for i, ir := range initrds {
		if !bytes.Equal(ram[at:at+uint64(len(ir))], ir) {
			t.Errorf("initrd %d not at %#x", i+1, at)
		}
		end := at + uint64(len(ir))
		if i < len(initrds)-1 {
			pad := ram[end:((end + 4095) &^ 4095)]
			if !bytes.Equal(pad, make([]byte, len(pad))) {
				t.Errorf("padding after initrd %d is not zero", i+1)
			}
		}
		at = end
		if i < len(initrds)-1 {
			at = (at + 4095) &^ 4095
		}
	}
	if len(initrds) > 0 {
		if s, n := binary.BigEndian.Uint64(ram[0x10408:]), binary.BigEndian.Uint64(ram[0x10410:]); s != start || n != at-start {
			t.Errorf("INITRD_START/SIZE = %#x/%#x, want %#x/%#x", s, n, start, at-start)
		}
	}
	got := ram[0x10480 : 0x10480+4096]
	if i := bytes.IndexByte(got, 0); i < 0 || string(got[:i]) != cmdline {
		t.Errorf("COMMAND_LINE = %q, want %q", got[:min(len(got), 200)], cmdline)
	}
}

func TestHostConfigAsBootfile(t *testing.T) {
	kernel, initrd := kernelImage(300<<10, 4096), pattern(700<<10, 1)
	l := newLab(t, "boot.cfg", map[string][]byte{
		"boot.cfg":  []byte("# pxelinux magic config\nDEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 marker=cfg\n"),
		"vmlinuz":   kernel,
		"initrd.gz": initrd,
	})
	con, ram := l.bootOK(t)
	wantInOrder(t, con,
		"Network boot starting...\n",
		"  Using MAC address: 52:54:00:12:34:56\n",
		"  Requesting information via DHCP:     \b\b\b010",
		"\b\b\b\bdone\n",
		"  Using IPv4 address: 10.0.2.15\n",
		"  Using TFTP server: 10.0.2.2\n",
		"  Bootfile name: 'boot.cfg'\n",
		"  TFTP: Received boot.cfg (",
		"Loading pxelinux.cfg entry 'linux'\n",
		"  TFTP: Received vmlinuz (300 KBytes) in ",
		"  TFTP: Received initrd.gz (700 KBytes) in ",
		"Network loading done, dry run: not starting the kernel\n",
		"  kernel [0x0, 0x4b000) (307200 bytes), entry 0x10000: \"S390EP\" at 0x10008\n",
		"  INITRD_START 0x4b000 INITRD_SIZE 0xaf000\n",
		"  command line (28 of 4096 bytes): console=ttysclp0 marker=cfg\n",
	)
	checkRAM(t, ram, kernel, [][]byte{initrd}, "console=ttysclp0 marker=cfg")
	if !strings.Contains(l.dnsmasq.String(), "DHCPRELEASE") {
		t.Errorf("no DHCPRELEASE at dnsmasq:\n%s", l.dnsmasq)
	}
}

func sha256File(b []byte) []byte {
	s := sha256.Sum256(b)
	return []byte(fmt.Sprintf("%x  file\n", s))
}

func TestHostDirectoryBootfile(t *testing.T) {
	kernel, i1, i2 := kernelImage(200<<10+17, 4096), pattern(5000, 2), pattern(9000, 3)
	cfg := []byte("DEFAULT linux\nLABEL linux\n  KERNEL k/vmlinuz\n  INITRD i1.img,i2.img\n  APPEND console=ttysclp0 marker=mac\n  SYSAPPEND 2\n")
	uuid := "550e8400-e29b-11d4-a716-446655441234"
	files := map[string][]byte{
		"pxelinux.cfg/01-52-54-00-12-34-56": cfg,
		"pxelinux.cfg/default":              []byte("DEFAULT x\nLABEL x\n KERNEL nothing\n"),
		"k/vmlinuz":                         kernel,
		"k/vmlinuz.sha256":                  sha256File(kernel),
		"i1.img":                            i1,
		"i2.img":                            i2,
	}
	t.Run("MAC", func(t *testing.T) {
		l := newLab(t, "/", files)
		con, ram := l.bootOK(t)
		wantInOrder(t, con,
			"  Bootfile name: '/'\n",
			"Trying pxelinux.cfg files...\n",
			"  TFTP: Received /pxelinux.cfg/01-52-54-00-12-34-56 (",
			"Loading pxelinux.cfg entry 'linux'\n",
			"  TFTP: Received /k/vmlinuz (200 KBytes) in ",
			"  SHA256 verified: /k/vmlinuz\n",
			"  TFTP: Received /i1.img (4 KBytes) in ",
			"  TFTP: Received /i2.img (8 KBytes) in ",
			"Network loading done, dry run",
		)
		checkRAM(t, ram, kernel, [][]byte{i1, i2}, "console=ttysclp0 marker=mac BOOTIF=01-52-54-00-12-34-56")
	})
	t.Run("UUID", func(t *testing.T) {
		f := map[string][]byte{"pxelinux.cfg/" + uuid: []byte("LABEL u\n KERNEL k/vmlinuz\n APPEND marker=uuid\n")}
		for k, v := range files {
			f[k] = v
		}
		l := newLab(t, "/", f)
		con, ram := l.bootOK(t, "-uuid", uuid)
		wantInOrder(t, con, "Trying pxelinux.cfg files...\n", "  TFTP: Received /pxelinux.cfg/"+uuid+" (", "Loading pxelinux.cfg entry 'u'\n")
		checkRAM(t, ram, kernel, nil, "marker=uuid")
	})
	t.Run("default after misses", func(t *testing.T) {
		f := map[string][]byte{"pxelinux.cfg/default": []byte("LABEL d\n KERNEL k/vmlinuz\n APPEND marker=default\n"), "k/vmlinuz": kernel}
		l := newLab(t, "/", f)
		con, _ := l.bootOK(t)
		wantInOrder(t, con, "Trying pxelinux.cfg files...\n",
			"  /pxelinux.cfg/01-52-54-00-12-34-56 (MAC): not found\n",
			"  /pxelinux.cfg/0A00020F (IP): not found\n",
			"  /pxelinux.cfg/0 (IP): not found\n",
			"  TFTP: Received /pxelinux.cfg/default (",
			"Loading pxelinux.cfg entry 'd'\n")
	})
	t.Run("loadparm", func(t *testing.T) {
		f := map[string][]byte{"pxelinux.cfg/default": []byte("DEFAULT a\nLABEL a\n KERNEL k/vmlinuz\n APPEND marker=a\nLABEL b\n KERNEL k/vmlinuz\n APPEND marker=b\n"), "k/vmlinuz": kernel}
		l := newLab(t, "/", f)
		con, ram := l.bootOK(t, "-loadparm", "2")
		wantInOrder(t, con, "  Selected by loadparm 2", "Loading pxelinux.cfg entry 'b'\n")
		checkRAM(t, ram, kernel, nil, "marker=b")
	})
}

func TestHostINS(t *testing.T) {
	kernel, initrd := kernelImage(150<<10, 4096), pattern(20000, 5)
	siz := binary.BigEndian.AppendUint64(nil, 12345) // shorter than the file: the kernel sees 12345 bytes
	l := newLab(t, "s390x/generic.ins", map[string][]byte{
		"s390x/generic.ins": []byte("* netipl host INS\nkernel.img 0x00000000\ninitrd.img 0x02000000\nparm.txt 0x00010480\ninitrd.siz 0x00010410\n"),
		"s390x/kernel.img":  kernel,
		"s390x/initrd.img":  initrd,
		"s390x/parm.txt":    []byte("console=ttysclp0\nmarker=ins\n"),
		"s390x/initrd.siz":  siz,
	})
	con, ram := l.bootOK(t)
	wantInOrder(t, con, "  TFTP: Received s390x/generic.ins (", "Parsing .INS file: netipl host INS\n", "  TFTP: Received s390x/initrd.img (19 KBytes)")
	checkRAM(t, ram, kernel, [][]byte{initrd[:12345]}, "console=ttysclp0 marker=ins")
}

func TestHostHTTPBootfile(t *testing.T) {
	kernel, initrd := kernelImage(400<<10, 4096), pattern(3<<20, 4)
	l := newLab(t, "http://10.0.2.2:8080/s390x/boot.cfg", map[string][]byte{
		"s390x/boot.cfg":          []byte("#!ipxe\nkernel vmlinuz console=ttysclp0 marker=http\ninitrd initrd.gz\nboot\n"),
		"s390x/vmlinuz":           kernel,
		"s390x/initrd.gz":         initrd,
		"s390x/initrd.gz.sha256":  sha256File(initrd),
		"s390x/vmlinuz.sha256.sh": []byte("not a sidecar"),
	})
	con, ram := l.bootOK(t)
	wantInOrder(t, con,
		"  Bootfile name: 'http://10.0.2.2:8080/s390x/boot.cfg'\n",
		"  HTTP: Received http://10.0.2.2:8080/s390x/boot.cfg (",
		"  HTTP: Received http://10.0.2.2:8080/s390x/vmlinuz (400 KBytes) in ",
		"  HTTP: Received http://10.0.2.2:8080/s390x/initrd.gz (3072 KBytes) in ",
		"  SHA256 verified: http://10.0.2.2:8080/s390x/initrd.gz\n",
	)
	checkRAM(t, ram, kernel, [][]byte{initrd}, "console=ttysclp0 marker=http")
}

// TestHostNoLease: a DHCP server that ignores the NIC gives QEMU's words and a clean stop.
func TestHostNoLease(t *testing.T) {
	l := newLab(t, "x", map[string][]byte{"x": []byte("y")}, "--dhcp-host="+testMAC+",ignore")
	con := l.bootFail(t, "-dhcp-timeout", "2s")
	wantInOrder(t, con, "  Requesting information via DHCP:     \b\b\b010", "\n",
		"netipl: Could not get IP address (dhcpv4: no DHCP lease after ", "Failed to load OS from network\n")
}

// TestHostFailures: each bad server gives one reason line, QEMU's failure line and exit 1,
// and nothing is started.
func TestHostFailures(t *testing.T) {
	kernel := kernelImage(100<<10, 0) // a legacy kernel: 896-byte command lines
	bad := append([]byte(nil), kernel...)
	bad[5] ^= 0xff
	tests := []struct {
		name     string
		bootfile string
		files    map[string][]byte
		args     []string
		reason   string
		notWant  string
	}{
		{"command line too long", "c.cfg", map[string][]byte{
			"c.cfg":   []byte("# pxelinux\nLABEL l\n KERNEL vmlinuz\n INITRD initrd\n APPEND " + strings.Repeat("a", 1000) + "\n"),
			"vmlinuz": kernel,
			"initrd":  pattern(100, 1),
		}, nil, "netipl: boot: command line of 1000 bytes is longer than the kernel accepts (896 bytes with the NUL, max_command_line_size at 0x10430)\n", "Received initrd"},
		{"not a kernel", "junk.bin", map[string][]byte{"junk.bin": bytes.Repeat([]byte("junk"), 40000)}, nil,
			"netipl: junk.bin: boot: kernel image of 160000 bytes has no \"S390EP\" at 0x10008 and no valid IPL PSW at 0 (0x6a756e6b6a756e6b): not an s390x kernel\n", ""},
		{"checksum mismatch", "c.cfg", map[string][]byte{
			"c.cfg":          []byte("# pxelinux\nLABEL l\n KERNEL vmlinuz\n"),
			"vmlinuz":        kernel,
			"vmlinuz.sha256": sha256File(bad),
		}, nil, "netipl: SHA256 mismatch: vmlinuz is ", ""},
		{"initrd beyond RAM", "c.cfg", map[string][]byte{
			"c.cfg":   []byte("# pxelinux\nLABEL l\n KERNEL vmlinuz\n INITRD big\n"),
			"vmlinuz": kernel,
			"big":     pattern(9<<20, 1),
		}, []string{"-ram", "8"}, "netipl: big does not fit in RAM: 7 MiB free at 0x19000 (tftp RRQ", ""},
		{"missing initrd", "c.cfg", map[string][]byte{
			"c.cfg":   []byte("# pxelinux\nLABEL l\n KERNEL vmlinuz\n INITRD nothere\n"),
			"vmlinuz": kernel,
		}, nil, "nothere", ""},
		// QEMU's reading (the name from the server root) is tried after PXELINUX's (relative to
		// the config's directory): the reason names both.
		{"missing kernel in both readings", "cfg/c.cfg", map[string][]byte{
			"cfg/c.cfg": []byte("# pxelinux\nLABEL l\n KERNEL nosuch.img\n"),
		}, nil, "netipl: nosuch.img not found (tried cfg/nosuch.img, then nosuch.img): tftp RRQ \"nosuch.img\" from 10.0.2.2:69: file ", ""},
		{"no config anywhere", "/", map[string][]byte{"x": []byte("y")}, nil, "netipl: no pxelinux.cfg found (10 names tried)\n", ""},
		{"LOCALBOOT", "c.cfg", map[string][]byte{"c.cfg": []byte("# pxelinux\nDEFAULT local\nLABEL local\n LOCALBOOT 0\n")}, nil,
			"netipl: the config chose LOCALBOOT 0: nothing to boot from the network\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, tt.bootfile, tt.files)
			con := l.bootFail(t, tt.args...)
			wantFailure(t, con, tt.reason)
			if strings.Contains(con, "dry run") || strings.Contains(con, "starting kernel") {
				t.Errorf("the loader went on after the failure:\n%s", con)
			}
			if tt.notWant != "" && strings.Contains(con, tt.notWant) {
				t.Errorf("console has %q:\n%s", tt.notWant, con)
			}
		})
	}
}

// TestHostIPv6Fallback: with no DHCPv4 server, the loader solicits a router, takes the SLAAC
// address (RFC 4291 modified EUI-64 of the MAC), gets the boot URL from a DHCPv6
// Information-Request and boots over TFTP on IPv6, printing QEMU's lines.
func TestHostIPv6Fallback(t *testing.T) {
	kernel, initrd := kernelImage(120<<10, 4096), pattern(50000, 6)
	l := newLab6(t, "tftp://[fd00::2]/boot.cfg", map[string][]byte{
		"boot.cfg":  []byte("# pxelinux\nDEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 marker=v6\n"),
		"vmlinuz":   kernel,
		"initrd.gz": initrd,
	})
	con, ram := l.bootOK(t)
	wantInOrder(t, con,
		"  Requesting information via DHCP:     \b\b\b010",
		"\b\b\b\bdone\n",
		"  Using IPv6 address: fd00::5054:ff:fe12:3456\n",
		"  Using TFTP server: fd00::2\n",
		"  Bootfile name: 'boot.cfg'\n",
		"  TFTP: Received boot.cfg (",
		"Loading pxelinux.cfg entry 'linux'\n",
		"  TFTP: Received vmlinuz (120 KBytes) in ",
		"  TFTP: Received initrd.gz (48 KBytes) in ",
		"Network loading done, dry run: not starting the kernel\n",
	)
	t.Logf("console:\n%s", con)
	checkRAM(t, ram, kernel, [][]byte{initrd}, "console=ttysclp0 marker=v6")
	if strings.Contains(con, "Using IPv4") {
		t.Errorf("an IPv4 address without a DHCPv4 server:\n%s", con)
	}
}

// TestHostIPv6HTTP: an HTTP boot URL over IPv6 (TCP through the stack to an IPv6 literal).
func TestHostIPv6HTTP(t *testing.T) {
	kernel := kernelImage(90<<10, 4096)
	l := newLab6(t, "http://[fd00::2]:8080/s390x/boot.ipxe", map[string][]byte{
		"s390x/boot.ipxe": []byte("#!ipxe\nkernel vmlinuz marker=v6http\nboot\n"),
		"s390x/vmlinuz":   kernel,
	})
	con, ram := l.bootOK(t)
	wantInOrder(t, con,
		"  Using IPv6 address: fd00::5054:ff:fe12:3456\n",
		"  Using TFTP server: fd00::2\n",
		"  Bootfile name: 'http://[fd00::2]:8080/s390x/boot.ipxe'\n",
		"  HTTP: Received http://[fd00::2]:8080/s390x/vmlinuz (90 KBytes) in ",
		"Network loading done, dry run",
	)
	checkRAM(t, ram, kernel, nil, "marker=v6http")
}

// TestHostNoLeaseAnyFamily: neither DHCPv4 nor a router: QEMU's words, and the reason says what
// IPv6 got to.
func TestHostNoLeaseAnyFamily(t *testing.T) {
	l := newLab(t, "x", map[string][]byte{"x": []byte("y")}, "--dhcp-host="+testMAC+",ignore")
	con := l.bootFail(t, "-dhcp-timeout", "6s")
	wantInOrder(t, con, "netipl: Could not get IP address (dhcpv4: no DHCP lease after ",
		"; ipv6: no router advertisement with a SLAAC prefix)\n", "Failed to load OS from network\n")
	checkGivingUp(t, con)
}

// checkGivingUp: a failed DHCP ends the countdown with QEMU's "Giving up after N DHCP requests"
// on its own line, N being the rounds the countdown showed (research/qemu-netboot.md §7.6).
func checkGivingUp(t *testing.T, con string) {
	t.Helper()
	m := regexp.MustCompile("\b\b\b(\\d{3})\nGiving up after (\\d+) DHCP requests\nnetipl: Could not get IP address").FindStringSubmatch(con)
	if m == nil {
		t.Fatalf("no \"Giving up after N DHCP requests\" line between the countdown and the reason:\n%q", con)
	}
	last, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	if want := dhcpv4.DefaultMaxRounds - last + 1; n != want || n < 1 {
		t.Errorf("Giving up after %d DHCP requests, but the countdown ended at %03d (%d rounds)", n, last, want)
	}
}

// TestHostIPv6NoBootURL: a DHCPv6 server that only gives DNS (no option 59) is not an answer to
// boot from: the loader keeps waiting (DHCPv4 could still answer) and the reason says why.
func TestHostIPv6NoBootURL(t *testing.T) {
	l := newLab6(t, "", map[string][]byte{"x": []byte("y")})
	con := l.bootFail(t, "-dhcp-timeout", "4s")
	wantInOrder(t, con, "netipl: Could not get IP address (dhcpv4: no DHCP lease after ",
		"; ipv6: address fd00::5054:ff:fe12:3456 from SLAAC, but dhcpv6: the reply has no boot-file URL (option 59))\n",
		"Failed to load OS from network\n")
	if strings.Contains(con, "Using IPv6 address") {
		t.Errorf("the loader took a reply without a boot URL:\n%s", con)
	}
}
