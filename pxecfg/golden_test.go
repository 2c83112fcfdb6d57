package pxecfg

import (
	"bufio"
	"context"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// readFacts reads a "<run>.facts" file: "key: value" lines (server, bootfile, opt209, opt210,
// mac, ip, mask, gateway, uuid, loadparm, hosts).
func readFacts(t *testing.T, file string) (Facts, string, []string) {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var f Facts
	var loadparm string
	hosts := []string{"10.0.2.2"}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: bad line %q", file, line)
		}
		v = strings.TrimSpace(v)
		switch k {
		case "server":
			f.Server = v
		case "bootfile":
			f.Bootfile = v
		case "opt209":
			f.ConfigFile = v
		case "opt210":
			f.PathPrefix = v
		case "mac":
			f.MAC, err = net.ParseMAC(v)
		case "ip":
			f.IP, err = netip.ParseAddr(v)
		case "mask":
			f.Mask, err = netip.ParseAddr(v)
		case "gateway":
			f.Gateway, err = netip.ParseAddr(v)
		case "uuid":
			f.UUID, err = ParseUUID(v)
		case "loadparm":
			loadparm = v
		case "hosts":
			hosts = strings.Fields(v)
		default:
			t.Fatalf("%s: unknown key %q", file, k)
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return f, loadparm, hosts
}

// TestGolden runs Discover over every testdata/<case>/root tree with each <run>.facts beside it
// and compares Result.Text with <run>.golden. Provenance: testdata/README.md.
func TestGolden(t *testing.T) {
	runs, err := filepath.Glob("testdata/*/*.facts")
	if err != nil || len(runs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, run := range runs {
		name := strings.TrimPrefix(strings.TrimSuffix(run, ".facts"), "testdata/")
		t.Run(name, func(t *testing.T) {
			facts, loadparm, hosts := readFacts(t, run)
			fe := &FSFetcher{FS: os.DirFS(filepath.Join(filepath.Dir(run), "root")), Hosts: hosts}
			r, err := Discover(context.Background(), fe, facts, Options{Loadparm: loadparm})
			got := ""
			if r != nil {
				got = r.Text(err)
			} else {
				got = "error: " + err.Error() + "\n"
			}
			golden := strings.TrimSuffix(run, ".facts") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pxecfg -update)", err)
			}
			if got != string(want) {
				t.Errorf("Discover(%s) text differs from %s (rerun with -update and review the diff):\n--- got\n%s--- want\n%s", run, golden, got, want)
			}
		})
	}
}
