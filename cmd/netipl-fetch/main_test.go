package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// captureStdout runs f with os.Stdout redirected and returns what it printed.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	ferr := f()
	os.Stdout = old
	w.Close()
	out, _ := io.ReadAll(r)
	return string(out), ferr
}

// TestFetchHTTP checks the file written with -o and the machine-readable last line bench/protocols.sh parses.
func TestFetchHTTP(t *testing.T) {
	body := bytes.Repeat([]byte("netipl"), 100000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "k", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "k")
	o := &options{out: out, quiet: true}
	line, err := captureStdout(t, func() error { return fetch(context.Background(), o, srv.URL+"/k") })
	if err != nil {
		t.Fatalf("fetch = %v", err)
	}
	if !regexp.MustCompile(`^fetched 600000 bytes in \S+: [0-9.]+ MB/s \(http content-length 600000 redirects 0 resumes 0 restarts 0\)\n$`).MatchString(line) {
		t.Errorf("fetch printed %q", line)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
		t.Errorf("fetch wrote %d bytes to %s, want %d", len(got), out, len(body))
	}
	if _, err := captureStdout(t, func() error { return fetch(context.Background(), o, "ftp://x/y") }); err == nil ||
		err.Error() != `boot URL "ftp://x/y": unsupported scheme "ftp"` {
		t.Errorf("fetch(ftp://x/y) = %v", err)
	}
}
