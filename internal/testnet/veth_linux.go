package testnet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NeedRoot skips the test (fails it under CI=true) unless it runs as root; why says what for.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root for %s", why)
	}
}

// LookPath returns the path of a program the test needs, or skips the test (fails it under
// CI=true) when it is not installed.
func LookPath(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		SkipOrFail(t, "%s not installed: %v", program, err)
	}
	return p
}

// AddNetns creates network namespace name (with iproute2) and deletes it when the test ends.
func AddNetns(t testing.TB, name string) {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
}

// VethPair creates two network namespaces, netipl-<tag>s-PID for a server and netipl-<tag>c-PID
// for a client, joined by a veth pair: vsrv in the server's, vcli in the client's. Both links
// are left down, without addresses, for the test to configure; the namespaces are deleted when
// the test ends. It needs root and iproute2.
func VethPair(t testing.TB, tag string) (serverNS, clientNS string) {
	t.Helper()
	NeedRoot(t, "network namespaces")
	LookPath(t, "ip")
	serverNS, clientNS = fmt.Sprintf("netipl-%ss-%d", tag, os.Getpid()), fmt.Sprintf("netipl-%sc-%d", tag, os.Getpid())
	AddNetns(t, serverNS)
	AddNetns(t, clientNS)
	Run(t, "ip", "link", "add", "vsrv", "netns", serverNS, "type", "veth", "peer", "name", "vcli", "netns", clientNS)
	return serverNS, clientNS
}

// StartDnsmasq runs dnsmasq in the foreground in namespace ns, bound to interface dev, with no
// configuration file, no DNS (--port=0), its leases in a temporary file, logging to the returned
// buffer, plus args. It waits until the log shows ready (when not empty) and kills dnsmasq when
// the test ends. A missing dnsmasq skips the test (fails it under CI=true).
func StartDnsmasq(t testing.TB, ns, dev, ready string, args ...string) *LockedBuffer {
	t.Helper()
	dnsmasq := LookPath(t, "dnsmasq")
	logs := &LockedBuffer{}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, dnsmasq, "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--interface=" + dev, "--bind-interfaces", "--user=root", "--pid-file=", "--log-dhcp",
		"--log-facility=-", "--dhcp-leasefile=" + filepath.Join(t.TempDir(), "leases")}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ready != "" && !logs.Contains(ready); {
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not start:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return logs
}

// ListenPacketIn opens a UDP socket in namespace ns (see InNetns) on address. With dev set, the
// socket is bound to that interface; udp4 sockets may send broadcasts.
func ListenPacketIn(ns, dev, network, address string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) {
			if network == "udp4" {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
					return
				}
			}
			if dev != "" {
				serr = unix.BindToDevice(int(fd), dev)
			}
		})
		return serr
	}}
	var pc net.PacketConn
	err := InNetns(ns, func() error {
		var err error
		pc, err = lc.ListenPacket(context.Background(), network, address)
		return err
	})
	return pc, err
}
