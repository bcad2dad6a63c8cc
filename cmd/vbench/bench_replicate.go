package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// The replication scenario of DESIGN.md §8 (docs/protocol.md §11): the
// home's rput rate alone and with two mirrors that also witness it, the
// mirror lag while the home takes 5,000 records/s, and how long a new
// mirror takes to catch up a chain of --catch-up entries. Every server is
// a vserv vbench starts on loopback, so all of them share the machine's
// CPU with the load generator: the numbers are those of one machine
// running three or four servers, not of independent hosts.

const lagRate = 5000 // records/s the home takes while the lag is measured

// peerSite is a server of the scenario with what its peers need of it.
type peerSite struct {
	env      *benchEnv
	name     string
	httpAddr string
	id       string
	key      string
}

func startSite(ctx context.Context, o options, name string) (*peerSite, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	env, err := newEnv(ctx, o, "--http", httpAddr)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &peerSite{env: env, name: name, httpAddr: httpAddr}
	c, err := benchLogin(ctx, env)
	if err != nil {
		env.close()
		return nil, err
	}
	defer c.Close()
	s.key = secure.PublicKeyText(c.Identity())
	s.id = verify.ServerIDFromKey(c.Identity())
	return s, nil
}

// pair makes mirror mirror home's benchmark chain and witness it.
func pair(ctx context.Context, home, mirror *peerSite) error {
	ha, err := benchLogin(ctx, home.env)
	if err != nil {
		return err
	}
	defer ha.Close()
	ma, err := benchLogin(ctx, mirror.env)
	if err != nil {
		return err
	}
	defer ma.Close()
	homeAcct, mirrorAcct := "peer-"+home.name, "peer-"+mirror.name
	homePass, mirrorPass := "bench-"+home.name+"-"+mirror.name, "bench-"+mirror.name+"-"+home.name
	steps := []func() error{
		func() error { _, err := ma.AddUser(ctx, homeAcct, homePass, false); return err },
		func() error {
			return ma.AddHost(ctx, home.env.addr, client.HostSpec{Role: "home", Key: home.key, Chains: []string{benchChain},
				Account: homeAcct, User: mirrorAcct, Pass: mirrorPass})
		},
		func() error {
			return ma.AddHost(ctx, verify.OriginLine(home.id, benchChain), client.HostSpec{Role: "log", Key: home.key})
		},
		func() error { _, err := ha.AddUser(ctx, mirrorAcct, mirrorPass, false); return err },
		func() error {
			return ha.AddHost(ctx, mirror.env.addr, client.HostSpec{Role: "mirror", Key: mirror.key, Chains: []string{benchChain},
				Account: mirrorAcct, User: homeAcct, Pass: homePass})
		},
		func() error {
			return ha.AddHost(ctx, "http://"+mirror.httpAddr+"/witness", client.HostSpec{Role: "witness", Key: mirror.key,
				Name: verify.WitnessName(mirror.id)})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("pair %s → %s, step %d: %w", home.name, mirror.name, i+1, err)
		}
	}
	return nil
}

// mirrorSize is the size of home's benchmark chain that c's server holds.
func mirrorSize(ctx context.Context, c *client.Client, origin string) (uint64, error) {
	size, err := c.ChainSize(ctx, origin)
	if errors.Is(err, client.ErrNotFound) {
		return 0, nil
	}
	return size, err
}

// waitSize waits until c's server holds size entries of origin.
func waitSize(ctx context.Context, c *client.Client, origin string, size uint64, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		got, err := mirrorSize(ctx, c, origin)
		if err != nil {
			return 0, err
		}
		if got >= size {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("the mirror holds %d of %d entries after %v", got, size, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func benchReplicate(ctx context.Context, env *benchEnv) ([]result, error) {
	if env.dataDir == "" {
		return nil, errors.New("replicate needs --vserv: it starts the mirrors itself")
	}
	if err := ledgerSetup(ctx, env); err != nil {
		return nil, err
	}
	home := &peerSite{env: env, name: "home"}
	hc, err := benchLogin(ctx, env)
	if err != nil {
		return nil, err
	}
	defer hc.Close()
	home.key, home.id = secure.PublicKeyText(hc.Identity()), verify.ServerIDFromKey(hc.Identity())
	origin := verify.OriginLine(home.id, benchChain)

	alone, err := rput32(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("rput alone: %w", err)
	}

	var mirrors []*peerSite
	defer func() {
		for _, m := range mirrors {
			m.env.close()
		}
	}()
	for _, name := range []string{"b", "c"} {
		m, err := startSite(ctx, env.opts, name)
		if err != nil {
			return nil, err
		}
		mirrors = append(mirrors, m)
		if err := pair(ctx, home, m); err != nil {
			return nil, err
		}
	}
	size, err := hc.ChainSize(ctx, benchChain)
	if err != nil {
		return nil, err
	}
	readers := make([]*client.Client, len(mirrors))
	for i, m := range mirrors {
		if readers[i], err = m.env.dial(ctx); err != nil {
			return nil, err
		}
		defer readers[i].Close()
		if _, err := waitSize(ctx, readers[i], origin, size, 5*time.Minute); err != nil {
			return nil, fmt.Errorf("mirror %s's first catch-up: %w", m.name, err)
		}
	}

	replicated, err := rput32(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("rput with mirrors: %w", err)
	}
	p50, p99, err := mirrorLag(ctx, env, readers[0], origin)
	if err != nil {
		return nil, fmt.Errorf("lag: %w", err)
	}

	// Catch-up: a new mirror of a chain of --catch-up entries more.
	if err := fillTo(ctx, env, env.opts.catchUp); err != nil {
		return nil, err
	}
	if size, err = hc.ChainSize(ctx, benchChain); err != nil {
		return nil, err
	}
	d, err := startSite(ctx, env.opts, "d")
	if err != nil {
		return nil, err
	}
	mirrors = append(mirrors, d)
	dc, err := d.env.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	start := time.Now()
	if err := pair(ctx, home, d); err != nil {
		return nil, err
	}
	if _, err := waitSize(ctx, dc, origin, size, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("catch-up: %w", err)
	}
	catchUp := time.Since(start)

	ratio := 100 * replicated / alone
	return []result{
		{what: "rput 32 × 1, home alone", value: alone, unit: "records/s", note: "the baseline of the next line"},
		{what: "rput 32 × 1, 2 mirrors that also witness", value: replicated, unit: "records/s", note: fmt.Sprintf("%.0f %% of alone", ratio)},
		{what: "home throughput with 2 mirrors + 2 witnesses", value: ratio, unit: "% of alone", target: "≥ 80 %", note: "4 processes share 2 cores"},
		{what: "mirror lag p50 at 5,000 records/s", value: ms(p50), unit: "ms", note: "commit (OK) to the mirror holding it"},
		{what: "mirror lag p99 at 5,000 records/s", value: ms(p99), unit: "ms", target: "≤ 1,000 ms (stretch 100)"},
		{what: fmt.Sprintf("catch-up of a new mirror, %d entries", size), value: catchUp.Seconds(), unit: "s", target: "≤ 10 s for 100,000", note: "from ihost add to the mirror holding all"},
	}, nil
}

// rput32 is the rput rate of 32 sessions × 1 record.
func rput32(ctx context.Context, env *benchEnv) (float64, error) {
	var seq atomic.Int64
	st, err := runLoad(ctx, 32, env.opts.duration,
		func(ctx context.Context, _ int) (*client.Client, error) { return benchLogin(ctx, env) },
		func(ctx context.Context, c *client.Client) (int, error) {
			r, err := benchRecord(0, int(seq.Add(1)))
			if err != nil {
				return 0, err
			}
			_, err = c.PutRecords(ctx, benchChain, [][]byte{r}, false)
			return 1, err
		},
		func(c *client.Client) { c.Close() })
	if err != nil {
		return 0, err
	}
	return st.perSecond(), nil
}

// mirrorLag drives the home at lagRate records/s from 32 sessions for the
// scenario's duration and measures, for every record, the time from its OK
// to the first moment the mirror holds it (sampled as fast as one session
// can ask).
func mirrorLag(ctx context.Context, env *benchEnv, mirror *client.Client, origin string) (p50, p99 time.Duration, err error) {
	const writers = 32
	type ack struct {
		seq uint64
		at  time.Time
	}
	var (
		mu   sync.Mutex
		acks []ack
		seen []ack // (size, when the mirror was first seen holding it)
		wg   sync.WaitGroup
		errs = make(chan error, writers+1)
	)
	runCtx, cancel := context.WithTimeout(ctx, env.opts.duration)
	defer cancel()
	every := time.Duration(writers) * time.Second / lagRate
	for w := range writers {
		c, err := benchLogin(ctx, env)
		if err != nil {
			return 0, 0, err
		}
		wg.Go(func() {
			defer c.Close()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
				r, err := benchRecord(w, i)
				if err != nil {
					errs <- err
					return
				}
				res, err := c.PutRecords(ctx, benchChain, [][]byte{r}, false)
				if err != nil {
					errs <- err
					return
				}
				now := time.Now()
				mu.Lock()
				acks = append(acks, ack{res[0].Seq, now})
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		var last uint64
		for runCtx.Err() == nil {
			size, err := mirrorSize(ctx, mirror, origin)
			if err != nil {
				errs <- err
				return
			}
			if size > last {
				seen = append(seen, ack{size, time.Now()})
				last = size
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, 0, err
	}
	// Acknowledged records the sampler did not see held before the end are
	// waited for, so they count with their real lag.
	var top uint64
	for _, a := range acks {
		top = max(top, a.seq+1)
	}
	if len(seen) == 0 || seen[len(seen)-1].seq < top {
		for {
			size, err := mirrorSize(ctx, mirror, origin)
			if err != nil {
				return 0, 0, err
			}
			if size >= top {
				seen = append(seen, ack{size, time.Now()})
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	lags := make([]time.Duration, 0, len(acks))
	for _, a := range acks {
		i, _ := slices.BinarySearchFunc(seen, a.seq+1, func(s ack, want uint64) int {
			switch {
			case s.seq < want:
				return -1
			case s.seq > want:
				return 1
			}
			return 0
		})
		lags = append(lags, max(0, seen[i].at.Sub(a.at)))
	}
	if len(lags) == 0 {
		return 0, 0, errors.New("no record was acknowledged")
	}
	slices.Sort(lags)
	st := loadStats{lat: lags}
	fmt.Fprintf(os.Stderr, "vbench: lag over %d records at %d/s\n", len(lags), lagRate)
	return st.percentile(0.5), st.percentile(0.99), nil
}

// fillTo adds n records to the home's benchmark chain in batches of 100
// from 8 sessions.
func fillTo(ctx context.Context, env *benchEnv, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		s, err := benchLogin(ctx, env)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer s.Close()
			for {
				from := int(next.Add(100)) - 100
				if from >= n {
					return
				}
				recs := make([][]byte, min(100, n-from))
				for i := range recs {
					r, err := benchRecord(1, from+i)
					if err != nil {
						errs <- err
						return
					}
					recs[i] = r
				}
				if _, err := s.PutRecords(ctx, benchChain, recs, false); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}
