package nic_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"netipl/tests/nic/mmsgframe"
	"netipl/tests/qemu"
)

// TestRecvmmsg runs tests/nic/mmsgprobe, which checks metal's recvmmsg(2) on the tap: errors
// (ENOTSOCK on other fds, EBADF, EBADFD before TUNSETIFF, EINVAL for a timeout or MSG_PEEK,
// EFAULT, EMSGSIZE, EAGAIN), vlen 0 and huge vlen, a blocking call that waits for the first
// frame, batches in order and intact with msg_len, msg_namelen and msg_controllen, truncation (MSG_TRUNC in msg_flags, and in
// flags for the full length) over two iovecs, a fault in a later message, and interleaving with
// read(2). The frames come from this test through a -netdev stream socket, when the probe asks.
func TestRecvmmsg(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type request struct {
		n     int
		pause time.Duration
	}
	requests := make(chan request, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		done := make(chan struct{})
		go func() { // drain what the guest sends (nothing expected) until QEMU ends
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					close(done)
					return
				}
			}
		}()
		next := 0
		for {
			var r request
			select {
			case r = <-requests:
			case <-done:
				return
			}
			time.Sleep(r.pause)
			// One write for the whole request: QEMU's stream netdev reads it at once and queues
			// every frame in the same pass, so the probe's checks that want all of them queued
			// (a short wait after the first is readable) do not depend on the host's scheduling.
			var b []byte
			for i := 0; i < r.n; i++ {
				f := mmsgframe.Frame(next)
				next++
				b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
				b = append(b, f...)
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	img := buildImage(t, "./tests/nic/mmsgprobe")
	args, err := qemu.Config{Image: img, MemoryMiB: 256, NICs: []qemu.NIC{{
		Netdev: fmt.Sprintf("stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=%d", port)}}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := runWith(t, bin, args, qemu.RunOptions{OnLine: func(l qemu.Line) {
		var r request
		var pause string
		if k, _ := fmt.Sscanf(l.Text, "MMSG: send %d after %s", &r.n, &pause); k >= 1 {
			if k == 2 {
				r.pause, _ = time.ParseDuration(pause)
			}
			requests <- r
		}
	}})
	ln.Close()
	wg.Wait()
	if !res.Contains("SUMMARY: mmsg: 0 failures") {
		t.Errorf("mmsgprobe failed; run:\n%s", res)
	}
	passes := 0
	for _, l := range res.Texts() {
		if strings.HasPrefix(l, "PASS: mmsg:") {
			passes++
		}
	}
	if passes != 23 {
		t.Errorf("%d PASS lines, want 23 (every check of the probe); run:\n%s", passes, res)
	}
	noMetalLines(t, res)
}
