package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pin/tftp/v3"
)

// tftpTimeout is the servers' retransmission timeout. SLOF waits 4 s before it repeats an ACK, so
// a lost DATA frame costs one server timeout, not four.
const tftpTimeout = time.Second

// errInjected is what a file with ErrorAfter reports mid-transfer.
var errInjected = errors.New("injected error mid-file")

// errorAfterReader reads data and fails with errInjected once n bytes have been read.
type errorAfterReader struct {
	data []byte
	off  int
	n    int
}

func (r *errorAfterReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, errInjected
	}
	lim := min(len(r.data), r.n)
	if r.off >= lim {
		return 0, io.EOF
	}
	k := copy(p, r.data[r.off:lim])
	r.off += k
	return k, nil
}

func (l *Lab) startTFTP() error {
	conn, err := l.udpConn(LabAddr, 69)
	if err != nil {
		return err
	}
	if !l.cfg.PinTFTP {
		w := &windowedServer{l: l, conn: conn}
		go w.serve()
		if l.cfg.IPv6 != nil {
			conn6, err := l.udpConn(LabAddr6, 69)
			if err != nil {
				return err
			}
			w6 := &windowedServer{l: l, conn: conn6}
			go w6.serve()
		}
		return nil
	}
	srv := tftp.NewServer(l.pinRead, nil)
	srv.EnableSinglePort() // every packet goes through conn, i.e. through the gVisor stack
	srv.SetTimeout(tftpTimeout)
	srv.SetRetries(10)
	srv.SetBlockSize(maxBlksize) // also sizes the per-packet buffer of single-port mode (64 KiB otherwise)
	srv.SetBackoff(func(int) time.Duration { return 0 })
	srv.SetHook(pinHook{l})
	go srv.Serve(conn)
	l.onClose(srv.Shutdown)
	return nil
}

// pinRead is pin/tftp's read handler: serve a lab file, with its file-level faults.
func (l *Lab) pinRead(name string, rf io.ReaderFrom) error {
	f, ok := l.file(name)
	if !ok {
		l.Logf("tftp: RRQ %q: not found", name)
		return fmt.Errorf("file not found")
	}
	data := f.served()
	l.Logf("tftp: RRQ %q (%d bytes)", name, len(data))
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(int64(len(data)))
	}
	var r io.Reader = bytes.NewReader(data)
	if f.ErrorAfter >= 0 {
		r = &errorAfterReader{data: data, n: f.ErrorAfter}
	}
	_, err := rf.ReadFrom(r)
	return err
}

type pinHook struct{ l *Lab }

func (h pinHook) OnSuccess(s tftp.TransferStats) {
	h.l.Logf("tftp: sent %q opts %v in %.3fs (%d datagrams, %d acked)", s.Filename, s.Opts, s.Duration.Seconds(), s.DatagramsSent, s.DatagramsAcked)
}

func (h pinHook) OnFailure(s tftp.TransferStats, err error) {
	if s.Filename == "" {
		return // a stray packet, not a transfer
	}
	h.l.Logf("tftp: transfer %q failed after %d datagrams: %v", s.Filename, s.DatagramsSent, err)
}
