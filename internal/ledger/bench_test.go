package ledger

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vserv/vserv/verify"
)

// fill appends n records to chain "t" in batches of 100.
func fill(b *testing.B, e *env, n int) {
	for i := 0; i < n; i += 100 {
		e.appendN("t", i, min(100, n-i))
	}
}

// BenchmarkAppend measures durable appends (bbolt fsync on) in batches of
// 100 records from 8 concurrent writers; records/s is the number to read.
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	var next int64
	var mu sync.Mutex
	start := time.Now()
	b.SetParallelism(4) // 8 writers on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			from := int(next)
			next += 100
			mu.Unlock()
			e.appendN("t", from, 100)
		}
	})
	b.ReportMetric(float64(next)/time.Since(start).Seconds(), "records/s")
}

func benchEnv(b *testing.B) *env {
	e := newEnv(b)
	fill(b, e, 100_000)
	return e
}

func BenchmarkGet(b *testing.B) {
	e := benchEnv(b)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, _, err := e.l.Get(ctx, "t", recID(i*7919%100_000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkProof(b *testing.B) {
	e := benchEnv(b)
	b.ResetTimer()
	i := uint64(0)
	for b.Loop() {
		if _, err := e.l.Proof(ctx, "t", i*7919%100_000, 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyDB reports the offline verification rate.
func BenchmarkVerifyDB(b *testing.B) {
	e := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		faults, err := VerifyDB(ctx, e.st, testPub(), nil)
		if err != nil || len(faults) > 0 {
			b.Fatal(err, faults)
		}
		b.ReportMetric(100_000/time.Since(start).Seconds(), "entries/s")
	}
}

// BenchmarkAppendSingle is 32 writers appending one record per call, the
// shape of DESIGN §8's "rput, 32 sessions × 1 record".
func BenchmarkAppendSingle(b *testing.B) {
	b.Run("heads=off", func(b *testing.B) { benchAppendSingle(b, newEnv(b)) })
	b.Run("heads=on", func(b *testing.B) { benchAppendSingle(b, newHeadsEnv(b)) })
}

func benchAppendSingle(b *testing.B, e *env) {
	var next atomic.Int64
	start := time.Now()
	b.SetParallelism(16) // 32 writers on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.appendN("t", int(next.Add(1)-1), 1)
		}
	})
	b.ReportMetric(float64(next.Load())/time.Since(start).Seconds(), "records/s")
}

// BenchmarkCommitGroup measures the one committer alone: groups of jobs
// whose records are already checked, committed one group after the other
// (fsync on). us/record is the committer's time per record, which bounds
// the throughput of all appends together. heads=on adds the heads file's
// write and fsync after each commit.
func BenchmarkCommitGroup(b *testing.B) {
	for _, shape := range []struct {
		name       string
		jobs, recs int
		heads      bool
	}{{"16x1/heads=off", 16, 1, false}, {"16x1/heads=on", 16, 1, true},
		{"2x100/heads=off", 2, 100, false}, {"2x100/heads=on", 2, 100, true}} {
		b.Run(shape.name, func(b *testing.B) {
			e := newEnv(b)
			if shape.heads {
				e = newHeadsEnv(b)
			}
			origin := e.l.origin("t")
			next := 0
			group := func() []*appendJob {
				g := make([]*appendJob, shape.jobs)
				for i := range g {
					j := &appendJob{chain: "t", resp: make(chan appendOutcome, 1)}
					for range shape.recs {
						r, err := checkRecord(rec(b, next, map[string]any{"n": next, "choice": "yes"}), 0, origin, false)
						if err != nil {
							b.Fatal(err)
						}
						j.checks = append(j.checks, precheck{rec: r})
						next++
					}
					g[i] = j
				}
				return g
			}
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				g := group()
				b.StartTimer()
				start := time.Now()
				e.l.commitGroup(g)
				took += time.Since(start)
				if out := <-g[0].resp; out.err != nil {
					b.Fatal(out.err)
				}
			}
			b.ReportMetric(float64(took.Microseconds())/float64(next), "us/record")
		})
	}
}

// BenchmarkBatchPointSign is what a commit adds per batch point it passes
// below its final size: the root from the compact range and one signature
// (the store write is one small row in a transaction already open).
// us/record spreads it over the BatchEvery entries it covers.
func BenchmarkBatchPointSign(b *testing.B) {
	e := newEnv(b)
	e.appendN("t", 0, 1000)
	cs, err := e.l.state("t")
	if err != nil {
		b.Fatal(err)
	}
	origin := e.l.origin("t")
	start := time.Now()
	n := 0
	for b.Loop() {
		root, err := rootOf(cs.rng)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := verify.SignCheckpoint(verify.Checkpoint{Origin: origin, Size: cs.size, Root: root},
			verify.NewNoteSigner(origin, testPriv)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(n*BatchEvery), "us/record")
}
