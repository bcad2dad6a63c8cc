package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
)

// DefaultPeerCheckTimeout is how long the check at start waits for an
// unreachable witness or mirror before it releases the chain
// (--peer-check-timeout; docs/operations.md "Restores and rollbacks").
const DefaultPeerCheckTimeout = 10 * time.Second

// peerCheckRetry is the pause between two rounds of probes of the peers
// that have not answered yet.
const peerCheckRetry = time.Second

// holdingReason is what a write to a chain being checked is refused with.
const holdingReason = "checking with peers: writes wait until every witness and mirror of the chain has shown it consistent with this data directory (docs/operations.md \"Restores and rollbacks\")"

// peerCheck is the check at start: each chain homed here that has
// witnesses or mirrors is held from Open until each of them has answered
// once (released when all say consistent, kept held when one says behind
// or forked), or until the timeout passes with some unreachable (released
// with a WARN naming them).
type peerCheck struct {
	l       *ledger.Ledger
	prober  *replic.Prober
	targets map[string][]replic.Peer
	timeout time.Duration // < 0: wait forever
}

// hold holds every chain of targets; Open calls it before anything serves.
func (pc *peerCheck) hold() {
	for chain := range pc.targets {
		pc.l.Hold(chain, holdingReason)
	}
}

// release lifts the hold of the check, not one the witness submitter put
// on the chain meanwhile for a witness's answer.
func (pc *peerCheck) release(chain string) {
	if pc.l.Holds()[chain] == holdingReason {
		pc.l.Release(chain)
	}
}

// run probes until every chain is decided or ctx ends; it returns nil.
func (pc *peerCheck) run(ctx context.Context, n *Node) error {
	if len(pc.targets) == 0 {
		return nil
	}
	var deadline time.Time
	if pc.timeout >= 0 {
		deadline = time.Now().Add(pc.timeout)
	}
	type pending struct {
		chain  string
		peer   replic.Peer
		detail string // why the last probe got no answer
	}
	var todo []*pending
	for chain, peers := range pc.targets {
		for _, p := range peers {
			todo = append(todo, &pending{chain: chain, peer: p})
		}
	}
	n.log.Info("checking chains with their witnesses and mirrors before they take writes", "chains", len(pc.targets), "peers", len(todo))
	decided := map[string]bool{}
	for {
		pctx := ctx
		cancel := func() {}
		if !deadline.IsZero() {
			pctx, cancel = context.WithDeadline(ctx, deadline.Add(time.Second))
		}
		results := make([]replic.ProbeResult, len(todo))
		var wg sync.WaitGroup
		for i, t := range todo {
			wg.Go(func() { results[i] = pc.prober.Probe(pctx, t.peer, t.chain) })
		}
		wg.Wait()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var again []*pending
		for i, t := range todo {
			r := results[i]
			t.detail = r.Detail
			switch r.Verdict {
			case replic.Consistent:
				n.log.Debug("peer check: consistent", "chain", t.chain, "peer", t.peer.Peer, "role", string(t.peer.Role), "theirs", r.Theirs, "ours", r.Ours)
			case replic.Behind, replic.Forked:
				if !decided[t.chain] {
					decided[t.chain] = true
					pc.l.Hold(t.chain, r.Reason())
					n.log.Error("chain held: "+r.Reason(), "chain", t.chain, "peer", t.peer.Peer, "role", string(t.peer.Role), "verdict", string(r.Verdict))
				}
			default:
				again = append(again, t)
			}
		}
		// A chain whose every peer answered consistent is released.
		for chain := range pc.targets {
			if decided[chain] || slices.ContainsFunc(again, func(p *pending) bool { return p.chain == chain }) {
				continue
			}
			decided[chain] = true
			pc.release(chain)
			n.log.Info("chain released: consistent with every witness and mirror", "chain", chain, "peers", len(pc.targets[chain]))
		}
		again = slices.DeleteFunc(again, func(p *pending) bool { return decided[p.chain] })
		if len(again) == 0 {
			return nil
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			for chain := range pc.targets {
				if decided[chain] {
					continue
				}
				var names, why []string
				for _, p := range again {
					if p.chain == chain {
						names = append(names, string(p.peer.Role)+" "+p.peer.Peer)
						why = append(why, p.detail)
					}
				}
				pc.release(chain)
				n.log.Warn(fmt.Sprintf("chain %s released after --peer-check-timeout %s without an answer from %s: writes go on; those peers still catch a fork when they come back (docs/operations.md \"Restores and rollbacks\")",
					chain, pc.timeout, strings.Join(names, ", ")), "chain", chain, "unreachable", names, "errors", why)
			}
			return nil
		}
		todo = again
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(peerCheckRetry):
		}
	}
}
