package qemu

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"netipl/linker"
)

// ModuleRoot returns the directory of go.mod at or above the working directory (a test's
// package directory).
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// Fixtures returns the directory of the Debian s390x kernel and initrd the boot tests use
// (.cache/fixtures: vmlinuz, initrd.gz), or calls Unavailable when one is missing.
func Fixtures(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(ModuleRoot(tb), ".cache", "fixtures")
	for _, f := range []string{"vmlinuz", "initrd.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			Unavailable(tb, "fixture %s missing (bash tests/fixtures/fetch.sh): %v", f, err)
		}
	}
	return dir
}

var netipl struct {
	once       sync.Once
	dir, image string
	err        error
}

// NetiplImage returns netipl.img linked from this tree with the real loader, built once per
// test binary (a link of cached packages: a few seconds) into a temporary directory that
// RemoveNetiplImage deletes.
func NetiplImage(tb testing.TB) string {
	tb.Helper()
	root := ModuleRoot(tb)
	netipl.once.Do(func() {
		if netipl.dir, netipl.err = os.MkdirTemp("", "netipl-image-"); netipl.err != nil {
			return
		}
		netipl.image = filepath.Join(netipl.dir, "netipl.img")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		netipl.err = linker.Build(ctx, linker.Options{Loader: "./loader", Out: netipl.image, Dir: root})
	})
	if netipl.err != nil {
		tb.Fatalf("build netipl.img: %v", netipl.err)
	}
	return netipl.image
}

// RemoveNetiplImage deletes what NetiplImage built; call it from TestMain after m.Run.
func RemoveNetiplImage() {
	if netipl.dir != "" {
		os.RemoveAll(netipl.dir)
	}
}
