package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
)

// The election-day scenario (DESIGN.md §6, §8): a `vote` chain (pow_bits
// 0), one ballot, --voters voters registered in batches, then one
// vote.cast per voter from 32 stations (32 sessions × 1 record per
// request), beside the free-form rput 32 × 1 rate of the same server; then
// `view tally` latency at the size reached, and a recount the way `vcli
// recount` does it (download and check every entry, replay it with
// apps.Replay, compare every view with the server's).

const (
	electionChain    = "election"
	electionBallot   = "b1"
	electionStations = 32
)

var electionChoices = []string{"yes", "no", "abstain"}

func benchElection(ctx context.Context, env *benchEnv) ([]result, error) {
	n := env.opts.voters
	// The free-form rate first, on the same server, for the comparison.
	if err := ledgerSetup(ctx, env); err != nil {
		return nil, err
	}
	var seq atomic.Int64
	login := func(ctx context.Context, _ int) (*client.Client, error) { return benchLogin(ctx, env) }
	closeClient := func(c *client.Client) { c.Close() }
	free, err := runLoad(ctx, electionStations, env.opts.duration, login, func(ctx context.Context, c *client.Client) (int, error) {
		r, err := benchRecord(0, int(seq.Add(1)))
		if err != nil {
			return 0, err
		}
		_, err = c.PutRecords(ctx, benchChain, [][]byte{r}, false)
		return 1, err
	}, closeClient)
	if err != nil {
		return nil, fmt.Errorf("free-form rput 32 × 1: %w", err)
	}

	admin, err := benchLogin(ctx, env)
	if err != nil {
		return nil, err
	}
	err = admin.MakeChain(ctx, electionChain, client.ChainOptions{Public: true, Schema: "vote"})
	if err != nil && !errors.Is(err, client.ErrExists) {
		err = fmt.Errorf("mkchain %s: %w", electionChain, err)
	} else if _, err = admin.PutEvents(ctx, electionChain, nil, false, client.BallotOpen(electionBallot, "Adopt the budget?", electionChoices, 0)); err != nil {
		err = fmt.Errorf("ballot.open: %w", err)
	}
	admin.Close()
	if err != nil {
		return nil, err
	}

	// Registration: batches of client.MaxPutBatch over a few sessions.
	fmt.Fprintf(os.Stderr, "vbench: election: register %d voters ...\n", n)
	eids := make([]string, n)
	regElapsed, err := parallel(ctx, env, fillSessions, func(ctx context.Context, c *client.Client, next func(int) (int, int)) error {
		for {
			from, to := next(client.MaxPutBatch)
			if from >= to {
				return nil
			}
			evs := make([]client.Event, to-from)
			for i := range evs {
				evs[i] = client.VoteRegister(fmt.Sprintf("voter-%d", from+i), nil)
			}
			res, err := c.PutEvents(ctx, electionChain, nil, false, evs...)
			if err != nil {
				return fmt.Errorf("vote.register: %w", err)
			}
			for i, r := range res {
				eids[from+i] = r.EID
			}
		}
	}, n)
	if err != nil {
		return nil, err
	}

	// Casting: 32 stations, one vote.cast per request, until every voter
	// has cast.
	fmt.Fprintf(os.Stderr, "vbench: election: %d casts from %d stations ...\n", n, electionStations)
	var latMu sync.Mutex
	var lat []time.Duration
	castElapsed, err := parallel(ctx, env, electionStations, func(ctx context.Context, c *client.Client, next func(int) (int, int)) error {
		var mine []time.Duration
		defer func() { latMu.Lock(); lat = append(lat, mine...); latMu.Unlock() }()
		for {
			i, end := next(1)
			if i >= end {
				return nil
			}
			rec, err := client.NewRecord(client.VoteCast(eids[i], electionBallot, electionChoices[i%len(electionChoices)]).Payload, "vote.cast", 0, client.RecordOptions{})
			if err != nil {
				return err
			}
			t0 := time.Now()
			if _, err := c.PutRecords(ctx, electionChain, [][]byte{rec}, false); err != nil {
				return fmt.Errorf("vote.cast: %w", err)
			}
			mine = append(mine, time.Since(t0))
		}
	}, n)
	if err != nil {
		return nil, err
	}
	casts := loadStats{ops: int64(n), elapsed: castElapsed, lat: sortedDurations(lat)}
	size := uint64(1 + 2*n)

	// view tally: one session, the latency a lone client sees.
	q := map[string]any{"ballot": electionBallot}
	dial := func(ctx context.Context, _ int) (*client.Client, error) { return env.dial(ctx) }
	tally, err := runLoad(ctx, 1, env.opts.duration, dial, func(ctx context.Context, c *client.Client) (int, error) {
		_, got, err := c.ViewRaw(ctx, electionChain, "tally", q)
		if err == nil && got != size {
			err = fmt.Errorf("view tally at size %d, want %d", got, size)
		}
		return 1, err
	}, closeClient)
	if err != nil {
		return nil, fmt.Errorf("view tally: %w", err)
	}
	// A fresh session (reads of a public chain need no account): one left
	// idle through the casting may have timed out.
	rc, err := env.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	v, _, err := rc.View(ctx, electionChain, "tally", q)
	if err != nil {
		return nil, fmt.Errorf("view tally: %w", err)
	}
	if got, _ := v["active"].(uint64); got != uint64(n) {
		return nil, fmt.Errorf("view tally: %d active voters, want %d", got, n)
	}

	// The recount, as vcli recount does it.
	fmt.Fprintf(os.Stderr, "vbench: election: recount %d entries ...\n", size)
	recStart := time.Now()
	views, err := recount(ctx, env, rc, electionChain)
	recElapsed := time.Since(recStart)
	if err != nil {
		return nil, fmt.Errorf("recount: %w", err)
	}

	label := countLabel(int(size))
	perSec := float64(size) / recElapsed.Seconds()
	ratio := casts.perSecond() / free.perSecond()
	return []result{
		{what: "election: rput free-form, 32 sessions × 1", value: free.perSecond(), unit: "records/s", note: "same server, before the election"},
		{what: fmt.Sprintf("election: register %s voters, %d sessions × batches of %d", countLabel(n), fillSessions, client.MaxPutBatch),
			value: float64(n) / regElapsed.Seconds(), unit: "records/s", note: fmt.Sprintf("%.1f s", regElapsed.Seconds())},
		{what: fmt.Sprintf("election: %s vote.cast, 32 sessions × 1", countLabel(n)), value: casts.perSecond(), unit: "casts/s",
			target: "≥ 80 % of free-form", note: fmt.Sprintf("%.0f %% of free-form; %.1f s", 100*ratio, castElapsed.Seconds())},
		{what: "election: vote.cast latency p50", value: ms(casts.percentile(0.5)), unit: "ms"},
		{what: "election: vote.cast latency p99", value: ms(casts.percentile(0.99)), unit: "ms"},
		{what: fmt.Sprintf("election: view tally at %s entries, 1 session, p50", label), value: ms(tally.percentile(0.5)), unit: "ms"},
		{what: fmt.Sprintf("election: view tally at %s entries, 1 session, p99", label), value: ms(tally.percentile(0.99)), unit: "ms", target: "≤ 1 ms at 1,000,000"},
		{what: fmt.Sprintf("election: recount of %s entries", label), value: recElapsed.Seconds(), unit: "s",
			target: "≤ 30 s at 1,000,000", note: fmt.Sprintf("the real vcli recount: download, check, replay, then %d views compared; 1M entries at this rate: %.0f s", views, 1e6/perSec)},
		{what: "election: recount rate", value: perSec, unit: "entries/s"},
	}, nil
}

func sortedDurations(d []time.Duration) []time.Duration {
	slices.Sort(d)
	return d
}

// parallel runs work in `sessions` logged-in sessions that share the items
// 0..n-1: next(k) hands out the next k of them as [from, to). It returns
// the time the work took, the logins before it left out.
func parallel(ctx context.Context, env *benchEnv, sessions int, work func(ctx context.Context, c *client.Client, next func(int) (int, int)) error, n int) (time.Duration, error) {
	var cursor atomic.Int64
	next := func(k int) (int, int) {
		from := int(cursor.Add(int64(k))) - k
		if from >= n || ctx.Err() != nil {
			return n, n
		}
		return from, min(from+k, n)
	}
	clients := make([]*client.Client, sessions)
	for w := range clients {
		// A loaded server may drop a handshake: retry a few times.
		c, err := benchLogin(ctx, env)
		for try := 1; err != nil && try < 3 && ctx.Err() == nil; try++ {
			time.Sleep(time.Second)
			c, err = benchLogin(ctx, env)
		}
		if err != nil {
			err = fmt.Errorf("login session %d: %w", w, err)
			for _, c := range clients[:w] {
				c.Close()
			}
			return 0, err
		}
		clients[w] = c
	}
	start := time.Now()
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Go(func() {
			defer c.Close()
			errs[w] = work(ctx, c, next)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return elapsed, ctx.Err()
}

// recount runs the real `vcli recount` (the vcli binary beside the vserv
// binary, or on $PATH) against the server, with a scratch configuration
// directory so that no user's known_hosts or checkpoint cache is touched.
// It returns the number of views compared.
func recount(ctx context.Context, env *benchEnv, rc *client.Client, chain string) (int, error) {
	vcli := "vcli"
	if env.opts.vservPath != "" {
		vcli = filepath.Join(filepath.Dir(env.opts.vservPath), "vcli")
	}
	if _, err := exec.LookPath(vcli); err != nil {
		return 0, fmt.Errorf("the recount runs vcli: %w (make build puts it beside vserv)", err)
	}
	host, port, err := net.SplitHostPort(env.addr)
	if err != nil {
		return 0, err
	}
	home, err := os.MkdirTemp("", "vbench-vcli-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(home)
	cmd := exec.CommandContext(ctx, vcli, "-n", host, "-p", port, "--server-key", secure.PublicKeyText(rc.Identity()),
		"--json", "recount", chain)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("vcli recount: %w: %s%s", err, out, stderr.Bytes())
	}
	var res struct {
		OK            bool `json:"ok"`
		ViewsCompared int  `json:"views_compared"`
	}
	if err := json.Unmarshal(out, &res); err != nil || !res.OK {
		return 0, fmt.Errorf("vcli recount did not agree with the server (%v): %s", err, out)
	}
	return res.ViewsCompared, nil
}
