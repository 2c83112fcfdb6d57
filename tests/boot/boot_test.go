package boot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"netipl/tests/qemu"
)

// scenario is one end-to-end boot.
type scenario struct {
	name string
	mode qemu.Mode
	// files is the server tree; the values "@kernel" and "@initrd" stand for the fixtures.
	files map[string]string
	// bootfile is slirp's bootfile= (DHCP option 67); "{http}" becomes http://10.0.2.2:PORT.
	bootfile string
	memMiB   int
	uuid     string
	loadparm string
	// want are console lines (or line prefixes) that must appear in this order.
	want []string
	// big scenarios run only with NETIPL_BOOT_BIG=1.
	big     bool
	timeout time.Duration
	// prepare may add generated files to the tree before the run.
	prepare func(t *testing.T, root string)
	// netdev are extra -netdev user options (e.g. "ipv4=off,ipv6=on").
	netdev string
}

const pxeMAC = "pxelinux.cfg/01-52-54-00-12-34-56" // QEMU's default MAC

// secondInit is a second initrd that replaces /init (later cpio archives override earlier
// ones): it proves the concatenation reached the kernel and, with netipl.lease on the command
// line, loads virtio_net from the first initrd and asks slirp for a DHCP lease over the same NIC.
var secondInit = newcArchive([]cpioFile{
	{Name: "init", Mode: 0o100755, Data: []byte(`#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo NETIPL-SECOND-INITRD
echo "CMDLINE: $(cat /proc/cmdline)"
case " $(cat /proc/cmdline) " in
*" netipl.lease "*)
  for m in failover net_failover virtio_net; do insmod /lib/modules/$m.ko && echo "INSMOD-OK: $m"; done
  sleep 1
  /bin/busybox ip link set eth0 up
  /bin/busybox udhcpc -i eth0 -n -q -t 5 -T 2 -s /dhcp-script && echo NETIPL-NIC-LEASE-OK
  ;;
esac
poweroff -f
`)},
	{Name: "dhcp-script", Mode: 0o100755, Data: []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"DHCP-LEASE: $ip\"\nexit 0\n")},
})

func scenarios() []scenario {
	const uuid = "550e8400-e29b-11d4-a716-446655441234"
	return []scenario{
		{
			name: "netboot_fw/config-bootfile", mode: qemu.ModeNetbootFW, memMiB: 128, bootfile: "boot.cfg",
			files: map[string]string{
				"boot.cfg":   "# pxelinux\nDEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet netipl.test=cfg\n",
				"kernel.img": "@kernel", "initrd.gz": "@initrd",
			},
			want: []string{"Network boot starting...", "  Using MAC address: 52:54:00:12:34:56", "  Using IPv4 address: 10.0.2.15",
				"  Using TFTP server: 10.0.2.2", "  Bootfile name: 'boot.cfg'", "  TFTP: Received boot.cfg (",
				"Loading pxelinux.cfg entry 'linux'", "  TFTP: Received kernel.img (", "  TFTP: Received initrd.gz (",
				"Network loading done, starting kernel...", "NETIPL-INITRD-OK", "CMDLINE: console=ttysclp0 quiet netipl.test=cfg"},
		},
		{
			name: "kernel/directory-mac-two-initrds", mode: qemu.ModeKernel, memMiB: 256, bootfile: "/",
			files: map[string]string{
				pxeMAC:                 "DEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD initrd.gz,second.cpio\n  APPEND console=ttysclp0 quiet netipl.test=mac\n  SYSAPPEND 2\n",
				"pxelinux.cfg/default": "DEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  APPEND console=ttysclp0 netipl.test=wrong-default\n",
				"kernel.img":           "@kernel", "initrd.gz": "@initrd", "second.cpio": string(secondInit),
			},
			want: []string{"  Bootfile name: '/'", "Trying pxelinux.cfg files...", "  TFTP: Received /pxelinux.cfg/01-52-54-00-12-34-56 (",
				"Loading pxelinux.cfg entry 'linux'", "  TFTP: Received /second.cpio (", "Network loading done, starting kernel...",
				"NETIPL-SECOND-INITRD", "CMDLINE: console=ttysclp0 quiet netipl.test=mac BOOTIF=01-52-54-00-12-34-56"},
		},
		{
			name: "netboot_fw/uuid-loadparm", mode: qemu.ModeNetbootFW, memMiB: 256, bootfile: "/", uuid: uuid, loadparm: "2",
			files: map[string]string{
				"pxelinux.cfg/" + uuid: "DEFAULT one\nLABEL one\n  KERNEL kernel.img\n  APPEND console=ttysclp0 netipl.test=one\nLABEL two\n  KERNEL kernel.img\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet netipl.test=uuid-two\n",
				pxeMAC:                 "LABEL x\n  KERNEL kernel.img\n  APPEND netipl.test=wrong-mac\n",
				"kernel.img":           "@kernel", "initrd.gz": "@initrd",
			},
			want: []string{"  TFTP: Received /pxelinux.cfg/" + uuid + " (", "  Selected by loadparm 2", "Loading pxelinux.cfg entry 'two'",
				"NETIPL-INITRD-OK", "CMDLINE: console=ttysclp0 quiet netipl.test=uuid-two"},
		},
		{
			// -kernel has no IPL block: the loadparm comes from SCLP Read SCP Info. The run stops
			// at the selection (the netboot_fw case above already boots the chosen entry).
			name: "kernel/loadparm", mode: qemu.ModeKernel, memMiB: 256, bootfile: "/", loadparm: "2",
			files: map[string]string{
				pxeMAC:       "DEFAULT one\nLABEL one\n  KERNEL kernel.img\n  APPEND netipl.test=one\nLABEL two\n  KERNEL kernel.img\n  APPEND netipl.test=two\n",
				"kernel.img": "@kernel",
			},
			want: []string{"  TFTP: Received /" + pxeMAC + " (", "  Selected by loadparm 2", "Loading pxelinux.cfg entry 'two'"},
		},
		{
			name: "kernel/http-bootfile", mode: qemu.ModeKernel, memMiB: 256, bootfile: "{http}/s390x/boot.ipxe",
			files: map[string]string{
				"s390x/boot.ipxe":   "#!ipxe\nkernel kernel.img console=ttysclp0 quiet netipl.test=http\ninitrd initrd.gz\nboot\n",
				"s390x/kernel.img":  "@kernel",
				"s390x/initrd.gz":   "@initrd",
				"s390x/initrd.gz.*": "@sha256", // initrd.gz.sha256, written by prepare
			},
			want: []string{"  HTTP: Received http://10.0.2.2:", "  SHA256 verified: http://10.0.2.2:",
				"Network loading done, starting kernel...", "NETIPL-INITRD-OK", "CMDLINE: console=ttysclp0 quiet netipl.test=http"},
		},
		{
			// slirp without IPv4: one silent DHCPv4 round, then RS/RA (fec0::/64), SLAAC and a DHCPv6
			// Information-Request whose option 59 is tftp://[fec0::2]/boot.cfg. The address is RFC 4291's
			// modified EUI-64 (QEMU's image prints fec0::5254:ff:fe12:3456, the U/L bit not inverted).
			name: "netboot_fw/ipv6-only", mode: qemu.ModeNetbootFW, memMiB: 256, bootfile: "boot.cfg", netdev: "ipv4=off,ipv6=on",
			files: map[string]string{
				"boot.cfg":   "# pxelinux\nDEFAULT linux\nLABEL linux\n  KERNEL kernel.img\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet netipl.test=ipv6\n",
				"kernel.img": "@kernel", "initrd.gz": "@initrd",
			},
			want: []string{"  Using IPv6 address: fec0::5054:ff:fe12:3456", "  Using TFTP server: fec0::2", "  Bootfile name: 'boot.cfg'",
				"  TFTP: Received boot.cfg (", "  TFTP: Received kernel.img (", "  TFTP: Received initrd.gz (",
				"Network loading done, starting kernel...", "NETIPL-INITRD-OK", "CMDLINE: console=ttysclp0 quiet netipl.test=ipv6"},
		},
		{
			name: "netboot_fw/long-cmdline", mode: qemu.ModeNetbootFW, memMiB: 256, bootfile: "boot.cfg", big: true,
			files: map[string]string{
				"boot.cfg":   "# pxelinux\nLABEL long\n  KERNEL kernel.img\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet " + longArgs + "\n",
				"kernel.img": "@kernel", "initrd.gz": "@initrd",
			},
			want: []string{"Network loading done, starting kernel...", "NETIPL-INITRD-OK", "CMDLINE: console=ttysclp0 quiet " + longArgs},
		},
		{
			name: "netboot_fw/nic-reuse-lease", mode: qemu.ModeNetbootFW, memMiB: 512, bootfile: "boot.cfg", big: true,
			files: map[string]string{
				"boot.cfg":   "# pxelinux\nLABEL nic\n  KERNEL kernel.img\n  INITRD initrd.gz,second.cpio\n  APPEND console=ttysclp0 quiet netipl.lease\n",
				"kernel.img": "@kernel", "initrd.gz": "@initrd", "second.cpio": string(secondInit),
			},
			want: []string{"NETIPL-SECOND-INITRD", "INSMOD-OK: virtio_net", "DHCP-LEASE: 10.0.2.15", "NETIPL-NIC-LEASE-OK"},
		},
		{
			name: "kernel/1GiB-initrd-3GiB-guest", mode: qemu.ModeKernel, memMiB: 3072, bootfile: "{http}/big.cfg", big: true, timeout: 15 * time.Minute,
			files: map[string]string{
				"big.cfg":    "# pxelinux\nLABEL big\n  KERNEL kernel.img\n  INITRD big.img\n  APPEND console=ttysclp0 quiet netipl.test=big\n",
				"kernel.img": "@kernel",
			},
			prepare: func(t *testing.T, root string) { bigInitrd(t, filepath.Join(root, "big.img"), 1<<30) },
			want: []string{"  HTTP: Received http://10.0.2.2:", "  HTTP: Received http://10.0.2.2:", "Network loading done, starting kernel...",
				"NETIPL-INITRD-OK", "CMDLINE: console=ttysclp0 quiet netipl.test=big"},
		},
	}
}

// longArgs makes a command line of about 1.5 KB: longer than QEMU's 896, within the Debian
// kernel's max_command_line_size (4096 at 0x10430).
var longArgs = func() string {
	var b strings.Builder
	for i := 0; b.Len() < 1500; i++ {
		fmt.Fprintf(&b, "netipl.pad%03d=%s ", i, strings.Repeat("x", 20))
	}
	return strings.TrimSpace(b.String())
}()

// bigInitrd writes the fixture initrd followed by zeros up to size bytes (the kernel's
// initramfs unpacker skips NUL padding after an archive) as a sparse file.
func bigInitrd(t *testing.T, path string, size int64) {
	t.Helper()
	ird, err := os.ReadFile(filepath.Join(qemu.Fixtures(t), "initrd.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, ird, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	qemu.RemoveNetiplImage()
	os.Exit(code)
}

// tree writes a scenario's files into a fresh directory.
func tree(t *testing.T, s scenario) string {
	t.Helper()
	root, fix := t.TempDir(), qemu.Fixtures(t)
	for name, content := range s.files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var data []byte
		switch content {
		case "@kernel", "@initrd":
			src := map[string]string{"@kernel": "vmlinuz", "@initrd": "initrd.gz"}[content]
			b, err := os.ReadFile(filepath.Join(fix, src))
			if err != nil {
				t.Fatal(err)
			}
			data = b
		case "@sha256":
			b, err := os.ReadFile(filepath.Join(fix, "initrd.gz"))
			if err != nil {
				t.Fatal(err)
			}
			p = strings.TrimSuffix(p, "*") + "sha256"
			data = []byte(fmt.Sprintf("%x  initrd.gz\n", sha256.Sum256(b)))
		default:
			data = []byte(content)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if s.prepare != nil {
		s.prepare(t, root)
	}
	return root
}

// serveHTTP serves root on 127.0.0.1 (slirp's 10.0.2.2 for the guest) and returns the guest's URL.
func serveHTTP(t *testing.T, root string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("http://10.0.2.2:%d", ln.Addr().(*net.TCPAddr).Port)
}

func TestBoot(t *testing.T) {
	big := os.Getenv("NETIPL_BOOT_BIG") == "1"
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			if s.big && !big {
				t.Skip("big scenario: set NETIPL_BOOT_BIG=1")
			}
			if testing.Short() && s.name != "netboot_fw/config-bootfile" {
				t.Skip("-short: one boot only")
			}
			bin := qemu.RequireBinary(t, qemu.SystemBinary)
			root := tree(t, s)
			bootfile := s.bootfile
			if strings.Contains(bootfile, "{http}") {
				bootfile = strings.ReplaceAll(bootfile, "{http}", serveHTTP(t, root))
			}
			img := qemu.NetiplImage(t)
			timeout := s.timeout
			if timeout == 0 {
				timeout = 3 * time.Minute
			}
			netdev := "user,tftp=" + root + ",bootfile=" + bootfile
			if s.netdev != "" {
				netdev += "," + s.netdev
			}
			cfg := qemu.Config{Binary: bin, Mode: s.mode, Image: img, MemoryMiB: s.memMiB, UUID: s.uuid, Loadparm: s.loadparm,
				NICs: []qemu.NIC{{Netdev: netdev}}, Timeout: timeout}
			res, err := qemu.Run(context.Background(), cfg, qemu.RunOptions{
				StopAt: regexp.MustCompile(regexp.QuoteMeta(s.want[len(s.want)-1])),
			})
			if err != nil {
				t.Fatal(err)
			}
			console := res.Console()
			rest := console
			for _, w := range s.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("console lacks %q (in order); run:\n%s", w, res)
				}
				rest = rest[i+len(w):]
			}
			if strings.Contains(console, "Failed to load OS from network") || strings.Contains(console, "metal: ") {
				t.Errorf("failure or metal line on the console; run:\n%s", res)
			}
			if l, ok := res.First(regexp.MustCompile(`Received .* in .* MB/s`)); ok {
				t.Logf("%s (%.1f s wall)", strings.TrimSpace(l.Text), res.Elapsed.Seconds())
			}
		})
	}
}
