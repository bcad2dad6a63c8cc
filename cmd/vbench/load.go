package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadStats is what a closed-loop load run measured.
type loadStats struct {
	ops     int64
	elapsed time.Duration
	lat     []time.Duration // a sample of per-op latencies, sorted
}

func (s loadStats) perSecond() float64 { return float64(s.ops) / s.elapsed.Seconds() }

func (s loadStats) percentile(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(float64(len(s.lat)-1) * p)
	return s.lat[i]
}

// runLoad runs op in workers goroutines, each in a closed loop, for d. Each
// worker gets its own state from setup (a session, say). ops counts the work
// units an op call did (records in a batch, say).
func runLoad[S any](ctx context.Context, workers int, d time.Duration,
	setup func(ctx context.Context, w int) (S, error),
	op func(ctx context.Context, st S) (int, error),
	teardown func(S)) (loadStats, error) {

	states := make([]S, workers)
	for w := range workers {
		st, err := setup(ctx, w)
		if err != nil {
			for _, s := range states[:w] {
				teardown(s)
			}
			return loadStats{}, fmt.Errorf("set up worker %d: %w", w, err)
		}
		states[w] = st
	}
	defer func() {
		for _, s := range states {
			teardown(s)
		}
	}()
	var total atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var mine []time.Duration
			for runCtx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx, states[w])
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t0))
				total.Add(int64(n))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return loadStats{}, firstErr
	}
	slices.Sort(lat)
	return loadStats{ops: total.Load(), elapsed: elapsed, lat: lat}, nil
}
