package boot

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Plan is a checked boot: where everything lies, what goes into the parmarea, and where the
// kernel starts. It is a pure value; the executor only places its bytes and calls kexec.
// The zero Plan boots nothing.
type Plan struct {
	Kernel Kernel
	// Layout holds RAM, the kernel range and the initrd ranges.
	Layout Layout
	// Cmdline is the command line written at 0x10480 when HasCmdline.
	Cmdline    string
	HasCmdline bool
}

// Patch is bytes to write at a guest-physical address.
type Patch struct {
	Addr uint64
	Data []byte
	What string
}

// NewPlan checks a kernel and its placement against the command line and RAM.
func NewPlan(k Kernel, l Layout, cmdline string, hasCmdline bool) (*Plan, error) {
	p := &Plan{Kernel: k, Layout: l, Cmdline: cmdline, HasCmdline: hasCmdline}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p, nil
}

// needsParmArea says the plan writes the parmarea.
func (p *Plan) needsParmArea() bool { return p.HasCmdline || len(p.Layout.Initrds) > 0 }

// Check verifies the plan's invariants: a checked entry; the kernel at 0 and in RAM; initrds
// page-aligned, in order, after the kernel, disjoint and in RAM; nothing but the kernel in the
// lowcore; a command line within the kernel's limit; a parmarea inside the image when written.
func (p *Plan) Check() error {
	k, l := p.Kernel, p.Layout
	if k.Entry != EntryS390EP && k.Entry != EntryIPLPSW || k.Why == "" {
		return fmt.Errorf("boot: plan: kernel entry %#x was not checked", k.Entry)
	}
	if l.Kernel.Start != 0 || l.Kernel.Size != k.Size || k.Size == 0 {
		return fmt.Errorf("boot: plan: kernel at %s, want [0, %#x)", l.Kernel, k.Size)
	}
	if l.Kernel.End() > l.RAM {
		return fmt.Errorf("boot: kernel %s does not fit in %s of RAM", l.Kernel, mib(l.RAM))
	}
	prev := l.Kernel
	for i, r := range l.Initrds {
		if r.Empty() {
			return fmt.Errorf("boot: initrd %d is empty", i+1)
		}
		if r.Start%PageSize != 0 || r.Start < alignUp(max(prev.End(), LowcoreSize), PageSize) || r.End() < r.Start {
			return fmt.Errorf("boot: plan: initrd %d at %s does not follow %s on a 4 KiB boundary", i+1, r, prev)
		}
		if r.End() > l.RAM {
			return fmt.Errorf("boot: initrd %d %s does not fit in %s of RAM", i+1, r, mib(l.RAM))
		}
		prev = r
	}
	if p.HasCmdline {
		if n := uint64(len(p.Cmdline)) + 1; n > k.MaxCmdline {
			return fmt.Errorf("boot: command line of %d bytes is longer than the kernel accepts (%d bytes with the NUL, max_command_line_size at 0x10430)",
				len(p.Cmdline), k.MaxCmdline)
		}
		if strings.IndexByte(p.Cmdline, 0) >= 0 {
			return fmt.Errorf("boot: command line contains a NUL byte")
		}
	}
	if p.needsParmArea() && !k.HasParmArea {
		return fmt.Errorf("boot: kernel image of %d bytes does not contain the parmarea [0x10400, %#x) for the initrd and command line",
			k.Size, OffCmdline+k.MaxCmdline)
	}
	return nil
}

// Entry is the address metal starts: 0x10000 or 0 (IPL PSW).
func (p *Plan) Entry() uint64 { return p.Kernel.Entry }

// Patches are the parmarea writes: INITRD_START and INITRD_SIZE when there is an initrd, the
// command line (NUL-terminated, the rest of its area cleared) when there is one.
func (p *Plan) Patches() []Patch {
	var out []Patch
	if ir := p.Layout.Initrd(); !ir.Empty() {
		out = append(out,
			Patch{OffInitrdStart, binary.BigEndian.AppendUint64(nil, ir.Start), "INITRD_START"},
			Patch{OffInitrdSize, binary.BigEndian.AppendUint64(nil, ir.Size), "INITRD_SIZE"})
	}
	if p.HasCmdline {
		b := make([]byte, p.Kernel.MaxCmdline)
		copy(b, p.Cmdline)
		out = append(out, Patch{OffCmdline, b, "COMMAND_LINE"})
	}
	return out
}

// Lines describes the plan for the console and for `-dry-run`, one fact per line.
func (p *Plan) Lines() []string {
	l := p.Layout
	out := []string{
		fmt.Sprintf("kernel %s (%s), entry %#x: %s", l.Kernel, mib(l.Kernel.Size), p.Kernel.Entry, p.Kernel.Why),
	}
	for i, r := range l.Initrds {
		out = append(out, fmt.Sprintf("initrd %d %s (%s)", i+1, r, mib(r.Size)))
	}
	if ir := l.Initrd(); !ir.Empty() {
		out = append(out, fmt.Sprintf("INITRD_START %#x INITRD_SIZE %#x", ir.Start, ir.Size))
	}
	if p.HasCmdline {
		out = append(out, fmt.Sprintf("command line (%d of %d bytes): %s", len(p.Cmdline)+1, p.Kernel.MaxCmdline, p.Cmdline))
	} else {
		out = append(out, "command line: the kernel's own")
	}
	out = append(out, fmt.Sprintf("RAM %s", mib(l.RAM)))
	return out
}
