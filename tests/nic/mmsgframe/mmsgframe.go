// Package mmsgframe is the numbered frames TestRecvmmsg sends (tests/nic/mmsg_test.go) and
// tests/nic/mmsgprobe expects: both sides build frame k the same way.
package mmsgframe

import "encoding/binary"

// Size is the length of frame k: 60..1518 bytes.
func Size(k int) int { return 60 + (k*131)%1459 }

// Frame is frame k: broadcast from 52:55:0a:00:02:02, EtherType 0x88b5, k in the first four
// payload bytes, then a pattern of k and the offset.
func Frame(k int) []byte {
	f := make([]byte, Size(k))
	for i := 0; i < 6; i++ {
		f[i] = 0xff
	}
	copy(f[6:], []byte{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02})
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	binary.BigEndian.PutUint32(f[14:], uint32(k))
	for i := 18; i < len(f); i++ {
		f[i] = byte(k*7 + i)
	}
	return f
}
