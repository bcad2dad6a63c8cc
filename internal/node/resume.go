package node

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
)

// CheckPeers is the peer part of `vserv resume` (docs/operations.md
// "Restores and rollbacks"): on a stopped server's data directory (st is
// its ledger.db, opened exclusively) it asks every witness and mirror of
// each chain homed here what it holds, with the probes of the check at
// start. It returns every chain with a signed checkpoint, each with the
// verdicts of its peers (none when it has no peer). Cosignatures a probe
// gathers are kept; nothing is signed.
func CheckPeers(ctx context.Context, dataroot string, st store.Store, logger *slog.Logger) (map[string][]replic.ProbeResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	id, _, err := secure.LoadOrCreateIdentity(dataroot)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	secret, err := auth.LoadOrCreateSecretKey(dataroot)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	accounts, err := auth.New(st, auth.Options{SecretKey: secret, ServerID: id.ServerID, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Logger: logger, FullCheckOnOpen: true})
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer l.Close()
	peers := replic.New(st, accounts)
	prober, err := replic.NewProber(replic.ProberConfig{Ledger: l, Peers: peers, ServerID: id.ServerID, Key: id.Key, Logger: logger})
	if err != nil {
		return nil, err
	}
	targets, err := prober.Targets(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]replic.ProbeResult{}
	for chain := range l.Heads() {
		out[chain] = nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for chain, ps := range targets {
		for _, p := range ps {
			wg.Go(func() {
				r := prober.Probe(ctx, p, chain)
				mu.Lock()
				out[chain] = append(out[chain], r)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, rs := range out {
		slices.SortFunc(rs, func(a, b replic.ProbeResult) int {
			return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Peer, b.Peer))
		})
	}
	return out, ctx.Err()
}
