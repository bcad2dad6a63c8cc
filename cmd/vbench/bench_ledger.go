package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/vserv/vserv/client"
)

// The ledger scenarios of DESIGN.md §8: rput throughput (32 sessions × 1
// record per request, and batches of 100), rget and rproof latency at a
// given number of entries, and `vserv verify` time and data directory size
// per record on the filled directory. Records are what a client makes:
// UUIDv7 ids, canonical CBOR, proof of work 0 on a chain made for it.

const (
	benchChain   = "bench"
	fillSessions = 4
)

// benchRecord makes a small record like a vote event.
func benchRecord(w, i int) ([]byte, error) {
	return client.NewRecord(map[string]any{"station": w, "n": i, "choice": "yes"}, "vote.cast", 0, client.RecordOptions{})
}

// ledgerSetup logs in and creates the benchmark chain (pow_bits 0, public)
// unless it exists.
func ledgerSetup(ctx context.Context, env *benchEnv) error {
	c, err := benchLogin(ctx, env)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.MakeChain(ctx, benchChain, client.ChainOptions{Public: true})
	if err != nil && !errors.Is(err, client.ErrExists) {
		return fmt.Errorf("mkchain %s: %w", benchChain, err)
	}
	return nil
}

func benchRput(ctx context.Context, env *benchEnv) ([]result, error) {
	if err := ledgerSetup(ctx, env); err != nil {
		return nil, err
	}
	var seq atomic.Int64
	put := func(n int) func(ctx context.Context, c *client.Client) (int, error) {
		return func(ctx context.Context, c *client.Client) (int, error) {
			recs := make([][]byte, n)
			for i := range recs {
				r, err := benchRecord(0, int(seq.Add(1)))
				if err != nil {
					return 0, err
				}
				recs[i] = r
			}
			_, err := c.PutRecords(ctx, benchChain, recs, false)
			return n, err
		}
	}
	login := func(ctx context.Context, _ int) (*client.Client, error) { return benchLogin(ctx, env) }
	closeClient := func(c *client.Client) { c.Close() }

	single, err := runLoad(ctx, 32, env.opts.duration, login, put(1), closeClient)
	if err != nil {
		return nil, fmt.Errorf("rput 32 × 1: %w", err)
	}
	batch, err := runLoad(ctx, 8, env.opts.duration, login, put(100), closeClient)
	if err != nil {
		return nil, fmt.Errorf("rput batches of 100: %w", err)
	}
	return []result{
		{what: "rput, 32 sessions × 1 record per request", value: single.perSecond(), unit: "records/s", target: "≥ 10,000/s (stretch 20,000)", note: "fsync before OK; pow 0"},
		{what: "rput, 32 × 1, latency p50", value: ms(single.percentile(0.5)), unit: "ms"},
		{what: "rput, 32 × 1, latency p99", value: ms(single.percentile(0.99)), unit: "ms"},
		{what: "rput, 8 sessions × batches of 100", value: float64(batch.ops) / batch.elapsed.Seconds(), unit: "records/s", target: "≥ 50,000/s (stretch 100,000)", note: "fsync before OK; pow 0"},
		{what: "rput, batches of 100, latency p99", value: ms(batch.percentile(0.99)), unit: "ms", note: "per batch"},
	}, nil
}

// filledLedger is the state the rget, rproof and verify scenarios share: a
// chain of --records entries and the ids in it.
type filledLedger struct {
	n   int
	ids [][16]byte
}

// fill bulk-loads n records in batches of client.MaxPutBatch over a few
// sessions, as fast as the server takes them.
func fill(ctx context.Context, env *benchEnv, n int) (*filledLedger, []result, error) {
	if err := ledgerSetup(ctx, env); err != nil {
		return nil, nil, err
	}
	f := &filledLedger{n: n, ids: make([][16]byte, n)}
	var next atomic.Int64
	var done atomic.Int64
	errs := make(chan error, fillSessions)
	var wg sync.WaitGroup
	start := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(os.Stderr, "vbench: fill %d/%d (%.0f records/s)\n", d, n, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	for w := range fillSessions {
		wg.Go(func() {
			c, err := benchLogin(ctx, env)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for {
				from := int(next.Add(client.MaxPutBatch)) - client.MaxPutBatch
				if from >= n || ctx.Err() != nil {
					return
				}
				to := min(from+client.MaxPutBatch, n)
				recs := make([][]byte, to-from)
				for i := range recs {
					r, err := benchRecord(w, from+i)
					if err != nil {
						errs <- err
						return
					}
					recs[i] = r
				}
				res, err := c.PutRecords(ctx, benchChain, recs, false)
				if err != nil {
					errs <- fmt.Errorf("fill rput: %w", err)
					return
				}
				for i, r := range res {
					u, err := uuid.Parse(r.ID)
					if err != nil {
						errs <- err
						return
					}
					f.ids[from+i] = u
				}
				done.Add(int64(len(res)))
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return nil, nil, err
	default:
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	return f, []result{
		{what: fmt.Sprintf("fill: %d records, %d sessions × batches of %d", n, fillSessions, client.MaxPutBatch),
			value: float64(n) / elapsed.Seconds(), unit: "records/s", note: fmt.Sprintf("%.0f s", elapsed.Seconds())},
	}, nil
}

// latencyRuns measures op with one session (the latency a lone client sees,
// the §8 target) and with 32 (throughput, and latency under load).
func latencyRuns(ctx context.Context, env *benchEnv, label, target string, op func(ctx context.Context, c *benchReader) (int, error)) ([]result, error) {
	login := func(ctx context.Context, w int) (*benchReader, error) {
		c, err := env.dial(ctx) // reads of a public chain need no account
		if err != nil {
			return nil, err
		}
		return &benchReader{c: c, rng: rand.New(rand.NewPCG(uint64(w), 7))}, nil
	}
	closeReader := func(r *benchReader) { r.c.Close() }
	one, err := runLoad(ctx, 1, env.opts.duration, login, op, closeReader)
	if err != nil {
		return nil, err
	}
	many, err := runLoad(ctx, 32, env.opts.duration, login, op, closeReader)
	if err != nil {
		return nil, err
	}
	return []result{
		{what: label + ", 1 session, p50", value: ms(one.percentile(0.5)), unit: "ms"},
		{what: label + ", 1 session, p99", value: ms(one.percentile(0.99)), unit: "ms", target: target},
		{what: label + ", 32 sessions", value: many.perSecond(), unit: "/s"},
		{what: label + ", 32 sessions, p99", value: ms(many.percentile(0.99)), unit: "ms"},
	}, nil
}

type benchReader struct {
	c   *client.Client
	rng *rand.Rand
}

func benchRget(ctx context.Context, env *benchEnv) ([]result, error) {
	f := env.filled
	label := fmt.Sprintf("rget by id at %s entries", countLabel(f.n))
	return latencyRuns(ctx, env, label, "p99 ≤ 1 ms at 1,000,000", func(ctx context.Context, r *benchReader) (int, error) {
		id := uuid.UUID(f.ids[r.rng.IntN(f.n)]).String()
		e, err := r.c.GetRecord(ctx, benchChain, id)
		if err == nil && e == nil {
			err = fmt.Errorf("rget %s: no entry", id)
		}
		return 1, err
	})
}

func benchRproof(ctx context.Context, env *benchEnv) ([]result, error) {
	f := env.filled
	label := fmt.Sprintf("rproof at %s entries", countLabel(f.n))
	return latencyRuns(ctx, env, label, "p99 ≤ 1 ms at 1,000,000", func(ctx context.Context, r *benchReader) (int, error) {
		_, err := r.c.Proof(ctx, benchChain, client.BySeq(uint64(r.rng.IntN(f.n))), 0)
		return 1, err
	})
}

// benchVerify stops the server and times `vserv verify` on its data
// directory, and reports the directory's size per record.
func benchVerify(ctx context.Context, env *benchEnv) ([]result, error) {
	if env.cmd == nil {
		return nil, errors.New("needs --vserv (it verifies the data directory of a server it started)")
	}
	f := env.filled
	dataroot := filepath.Join(env.dataDir, "data")
	if err := env.stopServer(); err != nil {
		return nil, err
	}
	dirBytes, dbBytes, err := dataSize(dataroot)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, env.opts.vservPath, "verify", "-q", "-r", dataroot).CombinedOutput()
	elapsed := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("vserv verify: %v\n%s", err, out)
	}
	label := countLabel(f.n)
	return []result{
		{what: "vserv verify, " + label + " entries", value: elapsed.Seconds(), unit: "s", target: "≤ 30 s unsigned at 1,000,000", note: "records unsigned"},
		{what: "data directory per record", value: float64(dirBytes) / float64(f.n), unit: "bytes", note: fmt.Sprintf("%.0f MB at %s", float64(dirBytes)/1e6, label)},
		{what: "ledger.db per record", value: float64(dbBytes) / float64(f.n), unit: "bytes"},
	}, nil
}

// dataSize sums the sizes of the files under dir, and of ledger.db alone.
func dataSize(dir string) (total, db int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		if d.Name() == "ledger.db" {
			db = info.Size()
		}
		return nil
	})
	return total, db, err
}

func countLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
