package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"netipl/boot"
	"netipl/pxecfg"
)

// machine is what the platform files say (docs/abi.md): the NIC's MAC, the LOADPARM, the VM
// UUID and the RAM. Paths are fields so host mode and tests can point elsewhere.
type machine struct {
	MAC      net.HardwareAddr
	Loadparm string
	UUID     [16]byte
	// RAM is the end of guest RAM; Free is MemFree; Used are the ranges /proc/iomem lists as in use.
	RAM, Free uint64
	Used      []boot.Range
}

// Platform file paths (docs/abi.md).
const (
	pathMAC      = "/sys/class/net/eth0/address"
	pathLoadparm = "/sys/firmware/ipl/loadparm"
	pathUUID     = "/sys/hypervisor/uuid"
	pathMeminfo  = "/proc/meminfo"
	pathIOMem    = "/proc/iomem"
)

// readMAC reads a MAC address file ("52:54:00:12:34:56\n").
func readMAC(path string) (net.HardwareAddr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("boot NIC: %w", err)
	}
	m, err := net.ParseMAC(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("boot NIC: %s: %w", path, err)
	}
	return m, nil
}

// readLoadparm reads the LOADPARM, blanks trimmed; a missing file means none.
func readLoadparm(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// readUUID reads the VM UUID; a missing or empty file means none (all zero).
func readUUID(path string) ([16]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [16]byte{}, nil
	}
	u, err := pxecfg.ParseUUID(strings.TrimSpace(string(b)))
	if err != nil {
		return [16]byte{}, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// readMemory reads MemTotal/MemFree and, when iomem is set, the RAM end and in-use ranges.
func readMemory(meminfo, iomem string) (ram, free uint64, used []boot.Range, err error) {
	b, err := os.ReadFile(meminfo)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("RAM size: %w", err)
	}
	mi, err := boot.ParseMeminfo(b)
	if err != nil {
		return 0, 0, nil, err
	}
	ram, free = mi.Total, mi.Free
	if iomem == "" {
		return ram, free, nil, nil
	}
	b, err = os.ReadFile(iomem)
	if err != nil {
		return ram, free, nil, nil // no /proc/iomem: plan by MemTotal, mmap refusals still buffer
	}
	m, err := boot.ParseIOMem(b)
	if err != nil {
		return 0, 0, nil, err
	}
	if e := m.RAMEnd(); e != 0 {
		ram = e
	}
	for _, u := range m.Used {
		used = append(used, u.Range)
	}
	return ram, free, used, nil
}
