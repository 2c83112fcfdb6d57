package virtio

import "testing"

func TestSelect(t *testing.T) {
	net := func(ssid uint8, devno uint16) Candidate {
		return Candidate{SSID: ssid, DevNo: devno, CUType: cuTypeVirtio, CUModel: deviceIDNet}
	}
	blk := Candidate{SSID: 0, DevNo: 7, CUType: cuTypeVirtio, CUModel: 2}
	dasd := Candidate{SSID: 0, DevNo: 8, CUType: 0x3990, CUModel: 1}
	tests := []struct {
		name  string
		cands []Candidate
		ipl   IPLDevice
		want  int
		st    Status
	}{
		{"none", nil, IPLDevice{}, -1, ErrNoNIC},
		{"one", []Candidate{net(0, 1)}, IPLDevice{}, 0, OK},
		{"first of several", []Candidate{blk, net(0, 3), net(0, 2)}, IPLDevice{}, 1, OK},
		{"only non-net", []Candidate{blk, dasd}, IPLDevice{}, -1, ErrNoNIC},
		{"IPLB picks the second (bootindex)", []Candidate{net(0, 1), net(0, 2)}, IPLDevice{Valid: true, DevNo: 2}, 1, OK},
		{"IPLB ssid matters", []Candidate{net(0, 2), net(1, 2)}, IPLDevice{Valid: true, SSID: 1, DevNo: 2}, 1, OK},
		{"IPLB ssid masked to 2 bits", []Candidate{net(1, 2)}, IPLDevice{Valid: true, SSID: 5, DevNo: 2}, 0, OK},
		{"IPLB names a virtio-blk", []Candidate{blk, net(0, 1)}, IPLDevice{Valid: true, DevNo: 7}, -1, ErrNoNICAtIPLDevice},
		{"IPLB names nothing", []Candidate{net(0, 1)}, IPLDevice{Valid: true, DevNo: 9}, -1, ErrNoNICAtIPLDevice},
		{"first in a later set", []Candidate{blk, net(2, 0), net(3, 0)}, IPLDevice{}, 1, OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st := Select(tt.cands, tt.ipl)
			if got != tt.want || st != tt.st {
				t.Errorf("Select(%v, %+v) = %d, %v; want %d, %v", tt.cands, tt.ipl, got, st, tt.want, tt.st)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name    string
		offered uint64
		want    uint64
		st      Status
	}{
		{"exactly the required", featVersion1 | featNetMAC, featVersion1 | featNetMAC, OK},
		{"offloads declined", featVersion1 | featNetMAC | featNetStatus | 1<<0 | 1<<15 | 1<<29 | 1<<33, featVersion1 | featNetMAC, OK},
		{"legacy only", featNetMAC | 1<<15, 0, ErrNoVersion1},
		{"no MAC", featVersion1 | featNetStatus, 0, ErrNoMAC},
		{"nothing", 0, 0, ErrNoVersion1},
	}
	for _, tt := range tests {
		got, st := Negotiate(tt.offered)
		if got != tt.want || st != tt.st {
			t.Errorf("%s: Negotiate(%#x) = %#x, %v; want %#x, %v", tt.name, tt.offered, got, st, tt.want, tt.st)
		}
	}
}

func TestQueueSize(t *testing.T) {
	for _, tt := range []struct{ max, want uint16 }{
		{0, 0}, {1, 1}, {2, 2}, {3, 2}, {64, 64}, {96, 64}, {255, 128}, {256, 256}, {1024, 256}, {32768, 256},
	} {
		if got := QueueSize(tt.max); got != tt.want {
			t.Errorf("QueueSize(%d) = %d, want %d", tt.max, got, tt.want)
		}
	}
}
