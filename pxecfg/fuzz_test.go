package pxecfg

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fuzzMax caps fuzz inputs: configs and .INS files are small, and INCLUDE re-reads the input
// up to MaxIncludeDepth times.
const fuzzMax = 8 << 10

// seedTrees adds every file under testdata/*/root as a seed.
func seedTrees(f *testing.F) {
	filepath.Walk("testdata", func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(p, "/root/") {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
		return nil
	})
}

// echoFetcher answers every URL with the same bytes (no file access in the fuzz body).
type echoFetcher []byte

// Fetch implements Fetcher.Fetch.
func (e echoFetcher) Fetch(_ context.Context, url string, limit int64) ([]byte, error) {
	if int64(len(e)) > limit {
		return nil, ErrTooLarge
	}
	return e, nil
}

func FuzzParse(f *testing.F) {
	seedTrees(f)
	f.Add([]byte(qemuPXE))
	f.Add([]byte("include x\nlabel a\nkernel k\ninitrd a,b\nappend initrd=c ipappend\nipappend 7\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMax {
			return
		}
		c := Parse("tftp://s/pxelinux.cfg/default", "tftp://s/", data)
		labels := 0
		for _, line := range strings.Split(string(data), "\n") {
			if w, _ := splitWord(strings.Trim(line, " \t\r")); strings.EqualFold(w, "label") {
				labels++
			}
		}
		if len(c.Entries) > labels {
			t.Fatalf("%d entries from %d LABEL lines", len(c.Entries), labels)
		}
		if again := Parse("tftp://s/pxelinux.cfg/default", "tftp://s/", data); !reflect.DeepEqual(c, again) {
			t.Fatal("Parse is not deterministic")
		}
		for _, n := range c.Notes {
			_, line, ok := strings.Cut(n.Pos, ":")
			if _, err := strconv.Atoi(line); !ok || err != nil {
				t.Fatalf("note without a line: %q", n)
			}
		}
		facts := Facts{Server: "10.0.2.2", MAC: testMAC, IP: testIP, UUID: testUUID}
		for _, lp := range []string{"", "1", "PROMPT", "LINUX"} {
			s, err := Select(c, lp)
			if err != nil {
				continue
			}
			if s.Index >= 0 && &c.Entries[s.Index] != s.Entry {
				t.Fatalf("Select index %d does not match its entry", s.Index)
			}
			b, err := Resolve(c, s, facts)
			if err == nil && !b.LocalBoot && b.Kernel.URL == "" {
				t.Fatalf("Resolve gave no kernel and no error: %+v", b)
			}
		}
		// INCLUDE of itself: must end at the depth limit, never loop.
		lc, err := Load(context.Background(), echoFetcher(data), "tftp://s/pxelinux.cfg/default", "tftp://s/", data)
		if err != nil && !strings.Contains(err.Error(), "nested deeper than") && !strings.Contains(err.Error(), "INCLUDE") {
			t.Fatalf("Load error %v", err)
		}
		r := &Result{Config: lc}
		_ = r.Text(err)
	})
}

func FuzzParseINS(f *testing.F) {
	seedTrees(f)
	f.Add([]byte("* t\nk 0\np 0x10480\nad 0x10408\ni 0x2000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMax {
			return
		}
		_ = Sniff(data)
		ins, err := ParseINS("tftp://s/d/x.ins", data)
		if looksLikeINS(data) && err != nil {
			t.Fatalf("header-less .INS detected but ParseINS fails: %v", err)
		}
		if err != nil {
			return
		}
		for _, l := range ins.Lines {
			if l.Name == "" || strings.ContainsAny(l.Name, " \t\r\n") {
				t.Fatalf("bad name %q", l.Name)
			}
			if a, err := parseAddr("0x" + strconv.FormatUint(l.Addr, 16)); err != nil || a != l.Addr {
				t.Fatalf("address %#x does not round-trip", l.Addr)
			}
		}
		b, err := ins.Boot(context.Background(), echoFetcher(data), "tftp://s/d/x.ins")
		if err == nil {
			if b.Kernel.URL == "" {
				t.Fatal("INS.Boot gave no kernel and no error")
			}
			n := 0
			for _, l := range ins.Lines {
				if l.Addr > parmCmdline {
					n++
				}
			}
			if len(b.Initrds) != n {
				t.Fatalf("%d initrds from %d data lines", len(b.Initrds), n)
			}
		}
	})
}

func FuzzParseIPXE(f *testing.F) {
	f.Add([]byte("#!ipxe\ndhcp\nkernel --name k http://h/k a=${ip} initrd=i\ninitrd i\nimgargs k b=${mac}\nboot\n"))
	f.Add([]byte("#!ipxe\nchain tftp://s/${uuid}.ipxe\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMax {
			return
		}
		facts := Facts{Server: "10.0.2.2", MAC: testMAC, IP: testIP, UUID: testUUID}
		s, err := ParseIPXE("tftp://s/d/boot.ipxe", data, facts)
		if err != nil {
			return
		}
		if s.Kernel == "" {
			t.Fatal("ParseIPXE succeeded without a kernel")
		}
		b := s.Resolve("tftp://s/d/boot.ipxe")
		if b.Kernel.URL == "" || len(b.Initrds) != len(s.Initrds) || strings.Contains(b.Cmdline, "${") {
			t.Fatalf("Resolve = %+v", b)
		}
	})
}
