package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pintftp "github.com/pin/tftp/v3"
)

// explainRun runs "netipl explain args…" and returns stdout, stderr and the exit status.
func explainRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	rc := run(append([]string{"explain"}, args...), &out, &errOut)
	return out.String(), errOut.String(), rc
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

const testdata = "../../pxecfg/testdata"

func TestExplainDirectory(t *testing.T) {
	out, _, rc := explainRun(t, "-root", testdata+"/qemu-mac/root", "-mac", "02:ca:fe:ba:be:42", "-loadparm", "3")
	if rc != 0 {
		t.Fatalf("rc %d:\n%s", rc, out)
	}
	wantLines(t, out, "MAC                          tftp://10.0.2.2/pxelinux.cfg/01-02-ca-fe-ba-be-42: 205 bytes",
		`selected: "Fedora" by loadparm 3`, "  kernel:  tftp://10.0.2.2/kernel.fedora", `  cmdline: "" (0 bytes)`)
}

func TestExplainDirectoryExtraHost(t *testing.T) {
	out, _, rc := explainRun(t, "-root", testdata+"/rfc5071/root", "-hosts", "boot.example", "-opt209", "guests/vm1.cfg",
		"-opt210", "http://boot.example/s390x/", "-uuid", "550e8400-e29b-11d4-a716-446655441234", "-mask", "255.255.255.0", "-gateway", "10.0.2.2")
	if rc != 0 {
		t.Fatalf("rc %d:\n%s", rc, out)
	}
	wantLines(t, out, "option 209                   http://boot.example/s390x/guests/vm1.cfg: 259 bytes",
		"initrd2: http://boot.example/s390x/fedora/updates.img",
		"ip=10.0.2.15:10.0.2.2:10.0.2.2:255.255.255.0 BOOTIF=01-52-54-00-12-34-56 SYSUUID=550e8400-e29b-11d4-a716-446655441234")
}

func TestExplainHTTPRoot(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir(testdata + "/rhel-dvd/root")))
	defer srv.Close()
	out, _, rc := explainRun(t, "-root", srv.URL+"/", "-bootfile", "generic.ins")
	if rc != 0 {
		t.Fatalf("rc %d:\n%s", rc, out)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	wantLines(t, out, "chosen: tftp://"+host+"/generic.ins (.INS file)", "kernel:  tftp://"+host+"/images/kernel.img",
		`cmdline: "ro ramdisk_size=40000 cio_ignore=all,!condev"`, "initrd size declared: 91234567")
}

// TestExplainTFTPRoot reads a tree from a pin/tftp server on loopback with netstack/tftp.
func TestExplainTFTPRoot(t *testing.T) {
	dir := testdata + "/syslinux-doc/root"
	s := pintftp.NewServer(func(name string, rf io.ReaderFrom) error {
		f, err := os.Open(filepath.Join(dir, filepath.Clean("/"+name)))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = rf.ReadFrom(f)
		return err
	}, nil)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback UDP: %v", err)
	}
	go s.Serve(conn)
	defer s.Shutdown()
	out, _, rc := explainRun(t, "-root", "tftp://"+conn.LocalAddr().String()+"/", "-mac", "88:99:aa:bb:cc:dd", "-ip", "192.168.2.91", "-loadparm", "linux")
	if rc != 0 {
		t.Fatalf("rc %d:\n%s", rc, out)
	}
	wantLines(t, out, "MAC                          tftp://"+conn.LocalAddr().String()+"/pxelinux.cfg/01-88-99-aa-bb-cc-dd: not found",
		"IP                           tftp://"+conn.LocalAddr().String()+"/pxelinux.cfg/C0A802: 413 bytes",
		`cmdline: "root=/dev/dasda1 ro ip=192.168.2.91:0.0.0.0:0.0.0.0:0.0.0.0"`)
}

func TestExplainFailures(t *testing.T) {
	empty := t.TempDir()
	out, _, rc := explainRun(t, "-root", empty)
	if rc != 1 || !strings.Contains(out, "error: no pxelinux.cfg found (10 names tried)") {
		t.Errorf("empty tree: rc %d\n%s", rc, out)
	}
	for _, args := range [][]string{{}, {"-root", empty, "-mac", "zz"}, {"-root", empty, "-uuid", "x"}, {"-root", "/nonexistent"}, {"-root", empty, "extra"}} {
		if _, _, rc := explainRun(t, args...); rc != 2 {
			t.Errorf("explain %q: rc %d, want 2", args, rc)
		}
	}
	if rc := run([]string{"nosuch"}, io.Discard, io.Discard); rc != 2 {
		t.Errorf("unknown command rc %d", rc)
	}
}
