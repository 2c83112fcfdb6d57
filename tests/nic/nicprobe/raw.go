package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// rawFlood measures metal's NIC path without a network stack: it asks the peer for n
// datagrams with a hand-made UDP frame on the raw tap fd, answers ARP for its address itself,
// and counts the flood's frames as blocking reads return them.
func rawFlood(fd int, mac net.HardwareAddr, self, peer *net.UDPAddr, n int) error {
	if err := unix.SetNonblock(fd, true); err != nil { // ppoll waits, with a timeout
		return fmt.Errorf("nicprobe: raw: non-blocking mode: %w", err)
	}
	gwMAC := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02} // slirp's gateway
	payload := []byte(fmt.Sprintf("FLOOD %d", n))
	req := make([]byte, 14+20+8+len(payload))
	copy(req[0:], gwMAC)
	copy(req[6:], mac)
	binary.BigEndian.PutUint16(req[12:], 0x0800)
	ip := req[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	copy(ip[12:], self.IP.To4())
	copy(ip[16:], peer.IP.To4())
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20]))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], uint16(self.Port))
	binary.BigEndian.PutUint16(udp[2:], uint16(peer.Port))
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	fmt.Println("RAW: start")
	sent := time.Now() // the rate is over [request sent, last frame read]
	if _, err := unix.Write(fd, req); err != nil {
		return fmt.Errorf("nicprobe: raw: send request: %w", err)
	}
	buf := make([]byte, 2048)
	got, bytesIn := 0, 0
	var last time.Time
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for got < n {
		m, err := unix.Read(fd, buf)
		if err == unix.EAGAIN {
			k, err := unix.Ppoll(pfd, &unix.Timespec{Sec: 1}, nil)
			if err != nil && err != unix.EINTR {
				return fmt.Errorf("nicprobe: raw: ppoll: %w", err)
			}
			if k == 0 {
				break // the peer has been quiet for a second
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("nicprobe: raw: read: %w", err)
		}
		f := buf[:m]
		if m >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 1 &&
			net.IP(f[38:42]).Equal(self.IP) { // ARP request for us: reply
			r := make([]byte, 42)
			copy(r[0:], f[6:12])
			copy(r[6:], mac)
			binary.BigEndian.PutUint16(r[12:], 0x0806)
			copy(r[14:22], f[14:22])
			binary.BigEndian.PutUint16(r[20:], 2)
			copy(r[22:], mac)
			copy(r[28:], self.IP.To4())
			copy(r[32:], f[22:28])
			copy(r[38:], f[28:32])
			unix.Write(fd, r)
			continue
		}
		if m >= 42+1472 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17 {
			now := time.Now()
			last = now
			got++
			bytesIn += m - 42
		}
	}
	rate := 0.0
	if d := last.Sub(sent).Seconds(); d > 0 {
		rate = float64(bytesIn) / d / 1e6
	}
	fmt.Printf("RESULT: raw_flood_sent=%d raw_flood_received=%d raw_flood_MBps=%.1f raw_flood_seconds=%.3f nic_rx_dropped=%s\n",
		n, got, rate, last.Sub(sent).Seconds(), counter("rx_dropped"))
	return nil
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// rawTx sends n UDP datagrams of 1472 bytes to peer as raw frames through the gateway: the first
// half with O_NONBLOCK (EAGAIN when every TX buffer is with the device, then ppoll for POLLOUT),
// the second half with blocking writes (metal parks the writer until a TX completion). It
// reports how often each wait happened and the rate.
func rawTx(fd int, mac net.HardwareAddr, self, peer *net.UDPAddr, n int) error {
	gwMAC := net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}
	f := make([]byte, 14+20+8+1472)
	copy(f[0:], gwMAC)
	copy(f[6:], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+1472))
	copy(ip[12:], self.IP.To4())
	copy(ip[16:], peer.IP.To4())
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20]))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], uint16(self.Port))
	binary.BigEndian.PutUint16(udp[2:], uint16(peer.Port))
	binary.BigEndian.PutUint16(udp[4:], 8+1472)
	tx0 := counter("tx_packets")
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	eagain, polls := 0, 0
	start := time.Now()
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("nicprobe: raw tx: %w", err)
	}
	for i := 0; i < n; i++ {
		if i == n/2 {
			if err := unix.SetNonblock(fd, false); err != nil {
				return fmt.Errorf("nicprobe: raw tx: blocking mode: %w", err)
			}
		}
		for {
			_, err := unix.Write(fd, f)
			if err == nil {
				break
			}
			if err != unix.EAGAIN {
				return fmt.Errorf("nicprobe: raw tx: write %d: %w", i, err)
			}
			eagain++
			if _, err := unix.Ppoll(pfd, &unix.Timespec{Sec: 5}, nil); err != nil && err != unix.EINTR {
				return fmt.Errorf("nicprobe: raw tx: ppoll: %w", err)
			}
			polls++
		}
	}
	d := time.Since(start).Seconds()
	fmt.Printf("RESULT: raw_tx_sent=%d raw_tx_MBps=%.1f raw_tx_eagain=%d tx_packets=%s..%s\n",
		n, float64(n*1472)/d/1e6, eagain, tx0, counter("tx_packets"))
	if eagain == 0 {
		// QEMU drained the ring as fast as the guest filled it (a quiet host): the
		// backpressure path was not reached, which is neither a pass nor a failure.
		fmt.Printf("SKIP: nic: raw tx: %d frames, the TX ring never filled (no EAGAIN to check)\n", n)
		return nil
	}
	report(polls == eagain, "raw tx: %d frames, %d EAGAIN each followed by a ppoll POLLOUT wake-up", n, eagain)
	return nil
}
