package virtio

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// metal calls this driver, so it obeys metal's rules (metal/restrict_test.go): no heap allocation
// and no runtime entry points beyond memmove/memclr/memequal and the panics the linker turns into
// traps. This test builds a probe program that drives Net[Machine] the way metal does and checks
// the compiled code. The probe exists only in a build overlay, not in the tree.

const probeSource = `package main

import "netipl/virtio"

var nic virtio.Net[virtio.Machine]
var buf [256]byte

func main() {
	st := nic.Init(virtio.Machine{}, 0x100000, virtio.IPLDevice{Valid: true, DevNo: 7}, 3)
	nic.Reason(buf[:], st)
	nic.Interrupt()
	nic.Readable()
	nic.Writable()
	nic.Receive(buf[:])
	if f, st := nic.Peek(); st == virtio.OK {
		copy(buf[:], f)
		nic.Release()
	}
	if b, st := nic.TxBuffer(); st == virtio.OK {
		nic.Send(copy(b, buf[:60]))
	}
	nic.Transmit(buf[:60])
	var mac [17]byte
	virtio.PutMAC(mac[:], nic.MAC())
	nic.BusID().Put(buf[:])
	_ = nic.Stats()
	_ = st.Errno()
	nic.Reset()
}
`

var allowedRuntime = map[string]bool{
	"runtime.memmove": true, "runtime.memclrNoHeapPointers": true, "runtime.memequal": true,
	// entry points that only a bug reaches; the linker turns them into traps (linker.TrapSymbols)
	"runtime.morestack_noctxt": true, "runtime.panicBounds": true, "runtime.panicshift": true,
	"runtime.panicunsafeslicelen": true, "runtime.panicunsafeslicenilptr": true, "runtime.panicwrap": true,
	"runtime.panicdivide": true, "runtime.panicmem": true, "runtime.panicExtend": true,
}

func TestMetalRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an s390x probe (a few seconds)")
	}
	if runtime.GOARCH == "s390x" {
		t.Skip("a build check: runs on the host, not in the cross run under qemu-s390x")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	wd, _ := os.Getwd()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte(probeSource), 0o644)
	// A fresh constant in the package makes the compiler rebuild it (and print its -m lines)
	// without -a rebuilding the standard library.
	nonce := filepath.Join(dir, "nonce.go")
	os.WriteFile(nonce, []byte(fmt.Sprintf("package virtio\n\nconst probeNonce = %d\n", time.Now().UnixNano())), 0o644)
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(wd, "internal/probe/main.go"): src,
		filepath.Join(wd, "zz_probe_nonce.go"):      nonce,
	}})
	ov := filepath.Join(dir, "overlay.json")
	os.WriteFile(ov, overlay, 0o644)
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command(goBin, "build", "-overlay", ov, "-gcflags=netipl/virtio=-m", "-o", bin, "./internal/probe")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=s390x", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# netipl/virtio\n") {
		t.Fatalf("no -m output for netipl/virtio; the check did not run:\n%.2000s", out)
	}
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "escapes to heap") || strings.Contains(l, "moved to heap") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("virtio allocates:\n%s", strings.Join(bad, "\n"))
	}
	dis, err := exec.Command(goBin, "tool", "objdump", "-s", `^netipl/virtio\.`, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%.1000s", err, dis)
	}
	funcs := strings.Count(string(dis), "\nTEXT netipl/virtio.")
	if funcs < 20 {
		t.Fatalf("objdump listed %d virtio functions; the check did not run", funcs)
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`runtime\.[A-Za-z0-9_]+`).FindAllString(string(dis), -1) {
		if !allowedRuntime[m] {
			seen[m] = true
		}
	}
	var refs []string
	for s := range seen {
		refs = append(refs, s)
	}
	sort.Strings(refs)
	if len(refs) > 0 {
		t.Errorf("virtio (as metal uses it) references runtime symbols outside metal's allowlist: %v", refs)
	}
}
