package tftp

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"netipl/internal/testnet"
)

// ackLoss is a faultProxy shape that loses client→server ACKs at permille/1000 (a fixed pseudo-random choice per
// datagram number, so runs repeat) and counts the losses in lost. DATA, the RRQ and ERRORs pass.
func ackLoss(permille int, lost *atomic.Int64) func(dir, n int, p packet) (int, bool, bool, []byte) {
	return func(dir, n int, p packet) (int, bool, bool, []byte) {
		if dir == 0 && p.opcode() == opACK && lossAt(n, permille) {
			lost.Add(1)
			return 0, false, false, nil
		}
		return 1, false, false, nil
	}
}

// lossAt tells whether datagram n is lost at permille/1000 (splitmix64 of n).
func lossAt(n, permille int) bool {
	x := uint64(n) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return int(x%1000) < permille
}

// TestPipelineAckLoss loses ACKs on the way to the libslirp look-alike, which sends one block per ACK it gets:
// each lost ACK takes a block out of flight for good. Without refills the pipeline empties after about Pipeline
// losses and every further loss costs a timeout (then a restart, lock-step); with them the client finds the
// pipeline empty after a short quiet wait and puts Pipeline blocks back: no timeout, no restart, and never more
// than Pipeline blocks in flight (the server's count of blocks sent and not acknowledged).
func TestPipelineAckLoss(t *testing.T) {
	data := pattern(4 << 20)
	const pipeline = 48
	for _, permille := range []int{0, 50, 200} {
		t.Run(fmt.Sprintf("loss=%d.%d%%", permille/10, permille%10), func(t *testing.T) {
			s := startAckCountingServer(t, map[string][]byte{"f": data}, nil)
			var lost atomic.Int64
			p := startFaultProxy(t, s.addr(), ackLoss(permille, &lost))
			c := &Client{Listen: hostListen, Options: Options{Pipeline: pipeline}}
			m := &testnet.MemFile{}
			res, err := c.Get(guardCtx(t), p.addr(), "f", m)
			if err != nil {
				t.Fatalf("Get = %v (stats %+v)", err, res.Stats)
			}
			if got := m.Bytes; !bytes.Equal(got, data) {
				t.Fatalf("wrote %d bytes, want %d; first difference at %d", len(got), len(data), firstDifference(got, data))
			}
			_, _, ahead := s.stats()
			st := res.Stats
			t.Logf("%d ACKs lost, at most %d blocks in flight, stats %+v", lost.Load(), ahead, st)
			// A timeout needs a stall of the whole test process past the 100 ms minimum; its retransmitted ACK
			// may add one block in flight. A refill into a stall (the server goroutine descheduled) adds a
			// pipeline, once, and the client must have seen it.
			most := pipeline + int(st.Timeouts) + pipeline*int(min(st.StalledRefills, 1))
			if res.Pipeline != pipeline || st.Restarts != 0 || st.Timeouts > 1 || ahead > most {
				t.Errorf("pipeline %d, restarts %d, timeouts %d, %d blocks in flight; want pipeline %d, no restart, no timeout, at most %d in flight",
					res.Pipeline, st.Restarts, st.Timeouts, ahead, pipeline, pipeline)
			}
			if permille > 0 && (st.WindowRefills == 0 || st.RefillACKs != pipeline*st.WindowRefills) {
				t.Errorf("%d refills with %d ACKs after %d ACKs lost; want refills of %d ACKs", st.WindowRefills, st.RefillACKs, lost.Load(), pipeline)
			}
		})
	}
	t.Run("without refills", func(t *testing.T) {
		// The same path with refills off (the client before them): the loss pattern empties the pipeline, so the
		// refills above are needed, not a side effect. It is cut off after 2 s; by then it has timed out.
		s := startAckCountingServer(t, map[string][]byte{"f": data}, nil)
		var lost atomic.Int64
		p := startFaultProxy(t, s.addr(), ackLoss(50, &lost))
		c := &Client{Listen: hostListen, Options: Options{Pipeline: pipeline, noRefill: true}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := c.Get(ctx, p.addr(), "f", discardWriter{})
		if st := res.Stats; st.Timeouts < 2 || st.WindowRefills != 0 {
			t.Errorf("Get = %v with %d ACKs lost, stats %+v; want at least 2 timeouts and no refill", err, lost.Load(), st)
		}
	})
}

// TestPipelineStall stalls the libslirp look-alike for 60 ms in the middle of a pipelined transfer, longer than
// two quiet waits, without a word: the client takes the pipeline for lost and refills it. When the stall ends the
// blocks of before it come on top of the refill's (two pipelines in flight, once); the first block after the
// refill comes late, so the client takes the next Pipeline blocks without an ACK, and from then on at most Pipeline
// blocks are in flight again. No timeout (the 100 ms minimum is longer), no restart, the exact bytes.
func TestPipelineStall(t *testing.T) {
	data := pattern(2 << 20)
	const pipeline, stallAt = 48, 700
	s := startAckCountingServer(t, map[string][]byte{"f": data}, func(sess, b int) bool {
		if b == stallAt {
			time.Sleep(60 * time.Millisecond) // the server's only goroutine: nothing is answered meanwhile
		}
		return false
	})
	c := &Client{Listen: hostListen, Options: Options{Pipeline: pipeline}}
	m := &testnet.MemFile{}
	res, err := c.Get(guardCtx(t), s.addr(), "f", m)
	if err != nil {
		t.Fatalf("Get = %v (stats %+v)", err, res.Stats)
	}
	if got := m.Bytes; !bytes.Equal(got, data) {
		t.Fatalf("wrote %d bytes, want %d; first difference at %d", len(got), len(data), firstDifference(got, data))
	}
	st := res.Stats
	after := s.aheadSince(stallAt + 3*pipeline)
	_, _, ahead := s.stats()
	t.Logf("at most %d blocks in flight, %d once the refill is undone, stats %+v", ahead, after, st)
	if st.Restarts != 0 || st.Timeouts > 1 || st.WindowRefills == 0 || ahead > 2*pipeline+int(st.Timeouts) ||
		after > pipeline+int(st.Timeouts) {
		t.Errorf("restarts %d, timeouts %d, refills %d, %d blocks in flight, %d after block %d; want no restart, no timeout, a refill, at most %d in flight and %d after",
			st.Restarts, st.Timeouts, st.WindowRefills, ahead, after, stallAt+3*pipeline, 2*pipeline, pipeline)
	}
}

// BenchmarkPipelineAckLoss fetches 4 MiB (and 32 MiB) from the libslirp look-alike (it counts ACKs) through a
// proxy that loses ACKs, with the loader's settings (Pipeline 48, default timeouts), with the pipeline's refills
// off (the client before them) and on. bench/tftpackloss.sh prints these rows; the metrics per transfer show where
// the time went. Without refills the loss=5% row takes minutes, so it has no 32 MiB row.
func BenchmarkPipelineAckLoss(b *testing.B) {
	type row struct {
		refill        bool
		permille, mib int
	}
	var rows []row
	for _, refill := range []bool{false, true} {
		for _, permille := range []int{0, 10, 50} {
			rows = append(rows, row{refill, permille, 4})
		}
	}
	rows = append(rows, row{true, 0, 32}, row{true, 50, 32})
	for _, r := range rows {
		data := pattern(r.mib << 20)
		permille, refill := r.permille, r.refill
		name := fmt.Sprintf("refill=%v/loss=%d.%d%%/%dMiB", refill, permille/10, permille%10, r.mib)
		b.Run(name, func(b *testing.B) {
			s := startAckCountingServer(b, map[string][]byte{"f": data}, nil)
			var lost atomic.Int64
			p := startFaultProxy(b, s.addr(), ackLoss(permille, &lost))
			c := &Client{Listen: hostListen, Options: Options{Pipeline: 48, noRefill: !refill}}
			var sum Stats
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				res, err := c.Get(ctx, p.addr(), "f", discardWriter{})
				cancel()
				if err != nil || res.Size != int64(len(data)) {
					b.Fatalf("Get = %+v, %v", res, err)
				}
				sum.Timeouts += res.Stats.Timeouts
				sum.Restarts += res.Stats.Restarts
				sum.WindowRefills += res.Stats.WindowRefills
				sum.StalledRefills += res.Stats.StalledRefills
			}
			n := float64(b.N)
			b.ReportMetric(float64(lost.Load())/n, "lostACKs/op")
			b.ReportMetric(float64(sum.Timeouts)/n, "timeouts/op")
			b.ReportMetric(float64(sum.Restarts)/n, "restarts/op")
			b.ReportMetric(float64(sum.WindowRefills)/n, "refills/op")
			b.ReportMetric(float64(sum.StalledRefills)/n, "stalled/op")
		})
	}
}
