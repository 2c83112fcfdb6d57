package testnet

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// TrickleHandler serves a server that trickles, for tests of the loader's stall and flow
// budgets: /boot.ipxe is an iPXE script whose kernel is base+"/slow", and /slow announces 1 MiB
// and then sends one byte every 200 ms until the client goes or stop is called (stop before
// closing the server, so no handler is left sleeping).
func TrickleHandler(base string) (h http.Handler, stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("/boot.ipxe", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "#!ipxe\nkernel %s/slow\nboot\n", base)
	})
	done := make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<20))
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return mux, func() { once.Do(func() { close(done) }) }
}
