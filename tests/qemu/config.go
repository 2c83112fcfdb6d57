package qemu

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SystemBinary is the QEMU system emulator the tests use unless Config.Binary says otherwise.
const SystemBinary = "qemu-system-s390x"

// UserBinary is QEMU's user-mode emulator, which runs linux/s390x programs on the host kernel.
const UserBinary = "qemu-s390x"

// NetbootFirmware is QEMU's own network boot image, the baseline netipl replaces.
const NetbootFirmware = "/usr/share/qemu/s390-netboot.img"

// DefaultTimeout bounds a run whose Config.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Mode is how QEMU starts the image (design §1).
type Mode int

const (
	// ModeKernel is `-kernel IMG`: the CPU starts at the image's entry with all GPRs zero.
	// A NIC, if any, gets no bootindex (a bootindex would make QEMU run its BIOS instead).
	ModeKernel Mode = iota
	// ModeNetbootFW is `-global s390-ipl.netboot_fw=ABS_IMG`: s390-ccw.img runs first, finds
	// the NIC with bootindex=1 and jumps to the image. QEMU ≤ 9.1 only.
	ModeNetbootFW
)

// String returns the mode's name as tests and benchmarks print it.
func (m Mode) String() string {
	switch m {
	case ModeKernel:
		return "kernel"
	case ModeNetbootFW:
		return "netboot_fw"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode is the inverse of Mode.String.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "kernel":
		return ModeKernel, nil
	case "netboot_fw", "netboot":
		return ModeNetbootFW, nil
	}
	return 0, fmt.Errorf("qemu: parse mode %q: want kernel or netboot_fw", s)
}

// NIC is the virtio-net-ccw device and its backend.
// The zero NIC is a slirp (`-netdev user`) NIC with QEMU's default devno and MAC.
type NIC struct {
	// Netdev is the backend and its options without the id, e.g. "user",
	// "user,tftp=/srv,bootfile=pxelinux.0" or "stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=5555".
	// Empty means "user".
	Netdev string
	// ID names the netdev; empty means "n0".
	ID string
	// Devno is the CCW bus id given to QEMU, e.g. "fe.0.0007"; empty lets QEMU choose.
	Devno string
	// MAC is the NIC's MAC address, e.g. "52:54:00:12:34:56"; empty lets QEMU choose.
	MAC string
}

// Config describes one QEMU run. The zero value is not runnable: Image is required.
type Config struct {
	// Binary is the emulator to run; empty means SystemBinary (looked up in PATH).
	Binary string
	// Mode selects the launch mode.
	Mode Mode
	// Image is the ELF image to boot. ModeNetbootFW needs an absolute path; Args makes it one.
	Image string
	// MemoryMiB is the guest RAM (`-m`); zero leaves QEMU's default (128 MiB).
	MemoryMiB int
	// UUID is the VM UUID (`-uuid`); empty leaves none.
	UUID string
	// Loadparm is the machine's load parameter (`-M s390-ccw-virtio,loadparm=…`, up to 8
	// characters); s390-ccw.img prints it and passes it on in the IPL block. Empty leaves none.
	Loadparm string
	// NICs are the network devices. In ModeNetbootFW the first NIC gets bootindex=1 and
	// one is required; in ModeKernel no NIC gets a bootindex.
	NICs []NIC
	// Extra is appended to the command line as is.
	Extra []string
	// Timeout bounds the run; zero means DefaultTimeout. QEMU is killed when it expires.
	Timeout time.Duration
}

// ErrNoImage is returned by Args when Config.Image is empty.
var ErrNoImage = errors.New("qemu: no image to boot")

// Args returns the command line (without the binary) for c.
func (c Config) Args() ([]string, error) {
	if c.Image == "" {
		return nil, ErrNoImage
	}
	machine := "s390-ccw-virtio"
	if c.Loadparm != "" {
		if len(c.Loadparm) > 8 || strings.ContainsAny(c.Loadparm, ",=") {
			return nil, fmt.Errorf("qemu: loadparm %q: want at most 8 characters, no ',' or '='", c.Loadparm)
		}
		machine += ",loadparm=" + c.Loadparm
	}
	args := []string{"-M", machine, "-nographic", "-no-reboot", "-action", "panic=exit-failure"}
	if c.MemoryMiB < 0 {
		return nil, fmt.Errorf("qemu: memory size %d MiB: negative", c.MemoryMiB)
	}
	if c.MemoryMiB > 0 {
		args = append(args, "-m", strconv.Itoa(c.MemoryMiB))
	}
	if c.UUID != "" {
		args = append(args, "-uuid", c.UUID)
	}
	switch c.Mode {
	case ModeKernel:
		args = append(args, "-kernel", c.Image)
	case ModeNetbootFW:
		if len(c.NICs) == 0 {
			return nil, fmt.Errorf("qemu: netboot_fw mode for %s: needs a NIC to boot from", c.Image)
		}
		abs, err := filepath.Abs(c.Image)
		if err != nil {
			return nil, fmt.Errorf("qemu: netboot_fw image %s: %w", c.Image, err)
		}
		if strings.Contains(abs, ",") {
			// QEMU's option parser would split the path at the comma.
			return nil, fmt.Errorf("qemu: netboot_fw image %q: path contains a comma", abs)
		}
		args = append(args, "-global", "s390-ipl.netboot_fw="+abs)
	default:
		return nil, fmt.Errorf("qemu: launch mode %v: unknown", c.Mode)
	}
	seen := map[string]bool{}
	for i, n := range c.NICs {
		id := n.ID
		if id == "" {
			id = "n0"
			if i > 0 {
				id = "n" + strconv.Itoa(i)
			}
		}
		if seen[id] {
			return nil, fmt.Errorf("qemu: NIC %d: netdev id %q used twice", i, id)
		}
		seen[id] = true
		backend := n.Netdev
		if backend == "" {
			backend = "user"
		}
		dev := "virtio-net-ccw,netdev=" + id
		if n.Devno != "" {
			dev += ",devno=" + n.Devno
		}
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		if c.Mode == ModeNetbootFW && i == 0 {
			dev += ",bootindex=1"
		}
		args = append(args, "-netdev", backend+",id="+id, "-device", dev)
	}
	args = append(args, c.Extra...)
	return args, nil
}

// binary returns the emulator c runs.
func (c Config) binary() string {
	if c.Binary != "" {
		return c.Binary
	}
	return SystemBinary
}

// timeout returns the deadline c's run gets.
func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// CCWBusID turns QEMU's devno spelling ("fe.0.0007") into the Linux CCW bus id
// ("0.0.0007") that /sys/firmware/ipl/device and /sys/class/net/eth0/device show.
// QEMU's first field is the channel subsystem id (0xfe for virtual devices), which Linux
// does not show: the bus id is "0.<subchannel set>.<device number>".
func CCWBusID(devno string) (string, error) {
	f := strings.Split(devno, ".")
	if len(f) != 3 {
		return "", fmt.Errorf("qemu: devno %q: want cssid.ssid.devno", devno)
	}
	ssid, err := strconv.ParseUint(f[1], 16, 8)
	if err != nil || ssid > 3 {
		return "", fmt.Errorf("qemu: devno %q: subchannel set %q: want 0..3", devno, f[1])
	}
	dev, err := strconv.ParseUint(f[2], 16, 16)
	if err != nil {
		return "", fmt.Errorf("qemu: devno %q: device number %q: want 4 hex digits", devno, f[2])
	}
	if _, err := strconv.ParseUint(f[0], 16, 8); err != nil {
		return "", fmt.Errorf("qemu: devno %q: channel subsystem %q: want hex 00..ff", devno, f[0])
	}
	return fmt.Sprintf("0.%x.%04x", ssid, dev), nil
}
