package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// The rules of DESIGN.md §6 in the committer: a chain with a schema runs
// every new record through apps.Schema.Apply inside the write transaction
// that appends it, against the state the earlier entries left in the
// chain's state bucket, and that state is updated in the same transaction.

// appChain is what the rules know of a chain, nil for a chain without a
// schema. The metadata was checked when the chain was created.
func (l *Ledger) appChain(m store.ChainMeta) (apps.Schema, apps.Chain, error) {
	if m.Schema == "" {
		return nil, apps.Chain{}, nil
	}
	s, err := apps.For(m.Schema)
	if err != nil {
		return nil, apps.Chain{}, err
	}
	keys, err := apps.ParseAuthority(m.Authority)
	if err != nil {
		return nil, apps.Chain{}, err
	}
	return s, apps.Chain{Name: m.Name, Origin: l.cfg.ServerID, Schema: m.Schema, Authority: keys}, nil
}

// overlayKV buffers one batch's writes to the rules' state: a batch is all
// or nothing, and a refused record must leave no trace for the next batch of
// the same group commit.
type overlayKV struct {
	base apps.KV
	m    map[string][]byte
}

func (o *overlayKV) Get(key []byte) ([]byte, error) {
	if v, ok := o.m[string(key)]; ok {
		return v, nil
	}
	return o.base.Get(key)
}

func (o *overlayKV) Put(key, val []byte) error {
	if o.m == nil {
		o.m = map[string][]byte{}
	}
	o.m[string(key)] = val // Apply never reuses val (apps.KV)
	return nil
}

func (o *overlayKV) flush() error {
	for k, v := range o.m {
		if err := o.base.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

// ruleRefusal is the wire error of record i that the rules refuse, or whose
// account lacks the right the rules ask for (needs): the rule's own text,
// as DESIGN.md §6 shows it, and the record's index.
func ruleRefusal(err error, i int, typ, chain string, needs apps.Right) error {
	var re *apps.RuleError
	if errors.As(err, &re) {
		return &wire.Error{Code: wire.CodeInvalid, Text: re.Error(), Extra: []any{i}}
	}
	return &wire.Error{Code: wire.CodePerm, Extra: []any{i},
		Text: fmt.Sprintf("%s: needs the %s right on chain %s", typ, needs, chain)}
}

// rebuildAppStates recomputes, at Open, the rules' state of every schema
// chain whose state is missing or does not match its size (a database from
// before schemas, or one restored without it). A chain whose stored entries
// the rules refuse becomes read-only: judging new records against a state
// that is not the chain's would be wrong.
func (l *Ledger) rebuildAppStates(ctx context.Context) error {
	for name, cs := range l.chains {
		if cs.app == nil || cs.readOnly != "" {
			continue
		}
		var (
			have, ok bool
			at       uint64
		)
		err := l.store.View(ctx, func(tx store.ReadTx) error {
			_, size, found, err := tx.AppState(cs.meta.Key())
			at, ok = size, found
			return err
		})
		if err != nil {
			return fmt.Errorf("chain %q: rules' state: %w", name, err)
		}
		have = ok && at == cs.size
		if have {
			continue
		}
		l.log.Warn("rebuilding the views of a chain from its entries", "chain", name, "entries", cs.size, "state_size", at, "state_found", ok)
		var fault error
		err = l.store.Update(ctx, func(tx store.WriteTx) error {
			if err := tx.ResetAppState(cs.meta.Key()); err != nil {
				return err
			}
			kv, _, _, err := tx.AppState(cs.meta.Key())
			if err != nil {
				return err
			}
			next, err := replayStored(tx, kv, cs.meta.Key(), cs.appChain, 0, cs.size)
			if err != nil {
				var re *apps.ReplayError
				if !errors.As(err, &re) {
					return err
				}
				fault = err
			}
			return tx.PutAppStateSize(cs.meta.Key(), next)
		})
		if err != nil {
			return fmt.Errorf("chain %q: rebuild the rules' state: %w", name, err)
		}
		if fault != nil {
			cs.readOnly = "a stored entry breaks the chain's rules: " + fault.Error()
			l.log.Error("chain is read-only", "chain", name, "reason", cs.readOnly)
		}
	}
	return nil
}

// replayStored applies the stored entries [from, to) of a chain to kv with
// apps.Replay, in pieces so that memory does not grow with the chain.
func replayStored(tx store.ReadTx, kv apps.KV, k store.ChainKey, c apps.Chain, from, to uint64) (uint64, error) {
	const piece = 1024
	next := from
	var batch [][]byte
	flush := func() error {
		var err error
		next, err = apps.Replay(kv, c, next, batch)
		batch = batch[:0]
		return err
	}
	var replayErr error
	err := tx.Entries(k, from, func(seq uint64, entry []byte) (bool, error) {
		if seq >= to {
			return false, nil
		}
		batch = append(batch, entry)
		if len(batch) == piece {
			if replayErr = flush(); replayErr != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return next, err
	}
	if replayErr == nil && len(batch) > 0 {
		replayErr = flush()
	}
	return next, replayErr
}

// View answers the `view` command (§6.6): the named view of a schema chain
// from its stored state, encoded (canonical CBOR map), with the chain size
// it reflects. A chain without a schema, an unknown view or bad arguments
// are ERR invalid; a missing item ERR notfound.
func (l *Ledger) View(ctx context.Context, chain, name string, args map[string]any) ([]byte, uint64, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, 0, err
	}
	if cs.mirror {
		return nil, 0, wire.Errorf(wire.CodeInvalid, "chain %s is mirrored from %s: views are kept only at its home (vcli recount replays it from here)", cs.meta.Name, cs.meta.Origin)
	}
	if cs.app == nil {
		return nil, 0, wire.Errorf(wire.CodeInvalid, "chain %s has no schema, so no views", cs.meta.Name)
	}
	var (
		out  []byte
		size uint64
	)
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		kv, at, ok, err := tx.AppState(cs.meta.Key())
		if err != nil {
			return err
		}
		if !ok && cs.size > 0 {
			return wire.Errorf(wire.CodeConflict, "the views of chain %s are not built: %s", cs.meta.Name, cs.readOnly)
		}
		v, err := cs.app.View(kv, cs.appChain, name, args)
		switch {
		case errors.Is(err, apps.ErrNotFound):
			return wire.Errorf(wire.CodeNotFound, "%v", err)
		case errors.Is(err, apps.ErrNoView), errors.Is(err, apps.ErrViewArgs):
			return wire.Errorf(wire.CodeInvalid, "%v", err)
		case err != nil:
			return err
		}
		// Encoded inside the transaction: the view may alias its pages.
		if out, err = canon.Marshal(v); err != nil {
			return fmt.Errorf("encode view: %w", err)
		}
		size = at
		return nil
	})
	return out, size, err
}

// verifyRules compares, in `vserv verify`, the replay of a schema
// chain's entries with the state the server stored, and reports the first
// refused entry or the first differing view.
func verifyRules(ctx context.Context, s store.Store, m store.ChainMeta, serverID string) ([]Fault, error) {
	l := &Ledger{cfg: Config{ServerID: serverID}}
	schema, c, err := l.appChain(m)
	if err != nil {
		return []Fault{{Chain: m.Name, What: fmt.Sprintf("rules: chain metadata: %v", err)}}, nil
	}
	var faults []Fault
	err = s.View(ctx, func(tx store.ReadTx) error {
		size, err := tx.Size(m.Key())
		if err != nil {
			return err
		}
		replay := apps.MapKV{}
		next, err := replayStored(tx, replay, m.Key(), c, 0, size)
		if err != nil {
			var re *apps.ReplayError
			if !errors.As(err, &re) {
				return err
			}
			what := "rules: " + re.Err.Error()
			var rule *apps.RuleError
			if errors.As(err, &rule) {
				what = fmt.Sprintf("rules: the recorded event breaks rule %s: %v", rule.Rule, rule)
			}
			faults = append(faults, Fault{Chain: m.Name, Seq: re.Seq, What: what})
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		stored, at, ok, err := tx.AppState(m.Key())
		if err != nil {
			return err
		}
		if !ok {
			return nil // built at the next start
		}
		if at != next {
			faults = append(faults, Fault{Chain: m.Name, Seq: at, What: fmt.Sprintf("rules: the stored views reflect %d entries, the chain has %d", at, next)})
			return nil
		}
		diffs, err := apps.Compare(schema, c, stored, replay)
		if err != nil {
			// A state the views cannot even be read from is a fault of the
			// data, not a failure to verify.
			faults = append(faults, Fault{Chain: m.Name, Seq: next, What: fmt.Sprintf("rules: stored views differ from the replay: %v", err)})
			return nil
		}
		for _, d := range diffs {
			faults = append(faults, Fault{Chain: m.Name, Seq: next, What: fmt.Sprintf("rules: stored views differ from the replay: %s (stored vs replayed)", d)})
		}
		return nil
	})
	return faults, err
}
