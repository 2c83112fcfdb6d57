package pxecfg

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
)

func TestFSFetcher(t *testing.T) {
	fsys := fstest.MapFS{"a/b.cfg": {Data: []byte("hello")}, "top": {Data: []byte("x")}}
	f := &FSFetcher{FS: fsys, Hosts: []string{"10.0.2.2", "[fec0::2]"}}
	tests := []struct {
		url     string
		limit   int64
		want    string
		wantErr error
	}{
		{"tftp://10.0.2.2/a/b.cfg", 100, "hello", nil},
		{"tftp://10.0.2.2//a/b.cfg", 100, "hello", nil},
		{"http://10.0.2.2/a/b.cfg", 100, "hello", nil},
		{"tftp://[fec0::2]/a/../top", 100, "x", nil},
		{"tftp://10.0.2.2/../../top", 100, "x", nil}, // cannot climb above the root
		{"tftp://10.0.2.2/a/b.cfg", 4, "", ErrTooLarge},
		{"tftp://10.0.2.2/a/missing", 100, "", ErrNotFound},
		{"tftp://10.0.2.2/a", 100, "", ErrNotFound},
		{"tftp://10.0.2.2/", 100, "", ErrNotFound},
	}
	for _, tt := range tests {
		got, err := f.Fetch(context.Background(), tt.url, tt.limit)
		if string(got) != tt.want || (tt.wantErr == nil) != (err == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("Fetch(%q, %d) = %q, %v; want %q, %v", tt.url, tt.limit, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := f.Fetch(context.Background(), "tftp://elsewhere/x", 10); err == nil {
		t.Error("Fetch on a host not served succeeded")
	}
	if _, err := f.Fetch(context.Background(), "ftp://10.0.2.2/x", 10); err == nil {
		t.Error("Fetch of an ftp URL succeeded")
	}
}
