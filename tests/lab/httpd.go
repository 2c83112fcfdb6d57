package lab

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// startHTTP serves the lab's files on 10.0.2.2:80 through the gVisor stack; ServeContent gives
// Content-Length and Range support.
func (l *Lab) startHTTP() error {
	ln, err := gonet.ListenTCP(l.stack, tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(LabAddr.As4()), Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("lab: listen http: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(l.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	l.onClose(func() { srv.Close() })
	return nil
}

func (l *Lab) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := l.file(r.URL.Path)
	if !ok {
		l.Logf("http: %s %s: not found", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	rng := r.Header.Get("Range")
	l.Logf("http: %s %s range %q (%d bytes)", r.Method, r.URL.Path, rng, len(f.served()))
	http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(f.served()))
}
