package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
)

// HeadChange is one chain whose database state differs from the heads file
// (docs/operations.md "Rollback"). Old is what the heads file records; New
// the database's newest signed checkpoint, nil when the chain is missing.
type HeadChange struct {
	Chain    string
	Old, New *ledger.Head
	// Kept, when not empty, says why the chain is not re-anchored: its data
	// disagree with its own checkpoints (rcheck, vserv verify say how), which
	// no decision about a rollback can repair.
	Kept string
}

func (c HeadChange) String() string {
	show := func(h *ledger.Head) string {
		if h == nil {
			return "missing"
		}
		return fmt.Sprintf("size %d root %s", h.Size, base64.StdEncoding.EncodeToString(h.Root[:]))
	}
	if c.Kept != "" {
		return fmt.Sprintf("chain %s: heads file %s; not re-anchored, the chain is read-only: %s", c.Chain, show(c.Old), c.Kept)
	}
	return fmt.Sprintf("chain %s: heads file %s, database %s", c.Chain, show(c.Old), show(c.New))
}

// AcceptRollback compares a stopped server's database with its heads file
// and, when accept is set, re-anchors the heads file on the database as it
// is and records that decision in audit (recreating audit first if the
// rollback took it). It is the local part of `vserv resume`: the operator,
// not witnesses, decides that the shorter history is the one to keep.
// Without accept it only reports. st is ledger.db's store, opened exclusively.
func AcceptRollback(ctx context.Context, dataroot string, st store.Store, accept bool, now func() time.Time) ([]HeadChange, error) {
	if now == nil {
		now = time.Now
	}
	if _, err := os.Stat(datadir.New(dataroot).IdentityPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no identity.key: not a server's data directory", dataroot)
	}
	id, _, err := secure.LoadOrCreateIdentity(dataroot)
	if err != nil {
		return nil, err
	}
	path := datadir.New(dataroot).HeadsPath()
	recorded, _, err := ledger.ReadHeads(path)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Now: now, Logger: quiet, FullCheckOnOpen: true})
	if err != nil {
		return nil, err
	}
	current := l.Heads()
	broken := map[string]string{}
	for _, c := range l.Chains() {
		if c.ReadOnly != "" {
			broken[c.Name] = c.ReadOnly
		}
	}
	l.Close()
	var changes []HeadChange
	for name, h := range recorded {
		if why, ok := broken[name]; ok {
			current[name] = h // its evidence stays
			changes = append(changes, HeadChange{Chain: name, Old: &h, Kept: why})
			continue
		}
		if c, ok := current[name]; !ok || c != h {
			ch := HeadChange{Chain: name, Old: &h}
			if ok {
				ch.New = &c
			}
			changes = append(changes, ch)
		}
	}
	slices.SortFunc(changes, func(a, b HeadChange) int { return strings.Compare(a.Chain, b.Chain) })
	if !accept || len(changes) == 0 {
		return changes, nil
	}
	if err := ledger.WriteHeads(path, current); err != nil {
		return changes, err
	}
	l, err = ledger.Open(ctx, st, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Now: now, Logger: quiet, HeadsFile: path})
	if err != nil {
		return changes, err
	}
	defer l.Close()
	if err := l.EnsureDefaultChains(ctx); err != nil {
		return changes, fmt.Errorf("heads file re-anchored, but the default chains could not be recreated: %w", err)
	}
	what := make([]string, len(changes))
	for i, c := range changes {
		what[i] = c.String()
	}
	rec, err := auditRecord("", "resume --accept-rollback", strings.Join(what, "; "), "ok", now().UnixMilli())
	if err == nil {
		_, err = l.AppendServer(ctx, "audit", rec)
	}
	if err != nil {
		return changes, fmt.Errorf("heads file re-anchored, but the decision could not be recorded in audit: %w", err)
	}
	return changes, nil
}
