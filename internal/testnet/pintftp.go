package testnet

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

// PinTFTP serves files with pin/tftp v3 on 127.0.0.1 (a free port) until the test ends and
// returns its address. Each transfer announces its size (tsize); a name not in files gets
// "file not found"; pin's retransmit timeout is 2 s. requested, when not nil, is called with
// each requested name before it is looked up (from the server's goroutines).
func PinTFTP(t testing.TB, files map[string][]byte, requested func(name string)) *net.UDPAddr {
	t.Helper()
	srv := pintftp.NewServer(func(name string, rf io.ReaderFrom) error {
		if requested != nil {
			requested(name)
		}
		b, ok := files[name]
		if !ok {
			return fmt.Errorf("file not found")
		}
		rf.(pintftp.OutgoingTransfer).SetSize(int64(len(b)))
		_, err := rf.ReadFrom(bytes.NewReader(b))
		return err
	}, nil)
	srv.SetTimeout(2 * time.Second)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go srv.Serve(conn)
	t.Cleanup(srv.Shutdown)
	return conn.LocalAddr().(*net.UDPAddr)
}
