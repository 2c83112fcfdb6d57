package nic_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"

	"netipl/tests/qemu"
)

// TestEpollETUnread: edge-triggered epoll on metal's tap with frames left unread (nicprobe
// -et-quiet). The host sends one frame; the guest's epoll_wait reports it, then waits three times
// without reading: no edge, though metal's idle path finds the unread frame each time (RX
// interruptions off since its interruption); then a second frame must give an edge although the
// first is still unread.
func TestEpollETUnread(t *testing.T) {
	bin := qemu.RequireBinary(t, qemu.SystemBinary)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	send := make(chan struct{}, 2)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range send {
			b := make([]byte, 4+60)
			binary.BigEndian.PutUint32(b, 60)
			for i := 4; i < 4+14; i++ {
				b[i] = 0xff // broadcast: no MAC filter drops it
			}
			c.Write(b)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	img := buildImage(t, "./tests/nic/nicprobe", "-et-quiet")
	args, err := qemu.Config{Image: img, MemoryMiB: 256, NICs: []qemu.NIC{{
		Netdev: fmt.Sprintf("stream,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=%d", port)}}}.Args()
	if err != nil {
		t.Fatal(err)
	}
	res := runWith(t, bin, args, qemu.RunOptions{OnLine: func(l qemu.Line) {
		if strings.HasPrefix(l.Text, "ET: ready") || strings.HasPrefix(l.Text, "ET: quiet") {
			send <- struct{}{}
		}
	}})
	close(send)
	wantLines(t, res,
		"PASS: nic: epoll ET: the first frame gives an edge (1 events)",
		"PASS: nic: epoll ET: waiting again without reading gives no edge (0 of 3 waits returned events)",
		"PASS: nic: epoll ET: a second frame, the first unread, gives an edge (1 events)",
		"PASS: nic: epoll ET: 2 frames read, want 2",
		"SUMMARY: nic: 0 failures")
	noMetalLines(t, res)
}
