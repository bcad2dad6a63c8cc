package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Rotation is the outcome of RotateIdentity.
type Rotation struct {
	Old, New *secure.Identity
	// Recorded is true once the key.rotate record is durable. A data
	// directory without a ledger gets one first, so every rotation that
	// succeeds is recorded.
	Recorded bool
	Seq      uint64 // the key.rotate entry in the keys chain, when Recorded
	// Warning, when not empty, is a problem after the record became durable
	// (so the new key stays): the server repairs it at its next start.
	Warning string
}

// RotateIdentity replaces the identity key of the server in dataroot and
// records the rotation in its ledger (DESIGN.md §2.4): the old key signs a
// key.rotate record naming the new one, the record is appended to the keys
// chain under the old key, and the checkpoint that first covers it (signed
// by the old key) is kept forever, so that its receipt lets anyone who
// trusts the old key move to the new one.
//
// The server must be stopped; st is ledger.db's store, which the caller opened
// exclusively to prove it. If the rotation cannot be recorded, the old key
// is put back: a key nobody can follow to must not stay in place.
func RotateIdentity(ctx context.Context, dataroot string, st store.Store, now func() time.Time) (*Rotation, error) {
	if now == nil {
		now = time.Now
	}
	old, next, err := secure.RotateIdentity(dataroot)
	if err != nil {
		return nil, err
	}
	r := &Rotation{Old: old, New: next}
	err = recordRotation(ctx, dataroot, st, r, now)
	if err == nil || r.Recorded {
		// Once the record is durable the new key must stay: putting the old
		// one back would leave a history that ends with a lost key.
		if err != nil {
			r.Warning = err.Error()
		}
		return r, nil
	}
	if rerr := secure.RestoreIdentity(dataroot, old); rerr != nil {
		return nil, fmt.Errorf("the rotation could not be recorded in the ledger (%w), and putting the old identity key back failed too (%v): its seed is kept as identity.key.old-<unix time>; copy it to identity.key before starting the server", err, rerr)
	}
	return nil, fmt.Errorf("the rotation could not be recorded in the ledger, so the old identity key was put back and nothing changed: %w", err)
}

// recordRotation appends the key.rotate record under the old key and keeps
// the checkpoint that covers it. It sets r.Recorded as soon as the record is
// durable.
func recordRotation(ctx context.Context, dataroot string, st store.Store, r *Rotation, now func() time.Time) error {
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: r.Old.ServerID, Signer: r.Old.Key, Now: now,
		Logger: slog.New(slog.DiscardHandler), HeadsFile: datadir.New(dataroot).HeadsPath()})
	if err != nil {
		return err
	}
	defer l.Close()
	info, err := l.Chain(verify.KeysChain)
	if errors.Is(err, wire.ErrNotFound) {
		if len(l.Chains()) > 0 {
			return errors.New("the ledger has chains but no keys chain: start the server once so that it creates it, stop it, and rotate again")
		}
		// No ledger yet (the server never started): create it under the old
		// key, as the first start would, so that this rotation is recorded
		// too. An unrecorded replacement would make the history start at a
		// key the server-id does not come from, and every later rotation
		// would then be refused.
		if err := l.EnsureDefaultChains(ctx); err != nil {
			return fmt.Errorf("create the ledger to record the rotation in: %w", err)
		}
		info, err = l.Chain(verify.KeysChain)
	}
	if err != nil {
		return err
	}
	if info.ReadOnly != "" {
		return fmt.Errorf("the keys chain is read-only: %s", info.ReadOnly)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	rec, err := verify.NewRotationRecord(r.Old.ServerID, id.String(), uint64(now().UnixMilli()), r.Old.Key, r.New.Public())
	if err != nil {
		return err
	}
	// Not cancellable: an interrupted append may still commit, and then
	// whether to put the old key back could not be decided.
	ctx = context.WithoutCancel(ctx)
	res, err := l.AppendServer(ctx, verify.KeysChain, rec)
	if err != nil {
		return fmt.Errorf("append the key.rotate record: %w", err)
	}
	r.Recorded, r.Seq = true, res.Seq
	if err := l.KeepCheckpoint(ctx, verify.KeysChain, res.Seq+1, nil); err != nil {
		return fmt.Errorf("keep the checkpoint that covers the key.rotate record: %w", err)
	}
	return l.Close()
}

// RotationReceipts returns, oldest first, the receipt of every key.rotate
// entry of the keys chain against the kept checkpoint that first covers it
// (signed by the key it retires): what `id` appends. A rotation whose
// receipt cannot be built is logged and left out; clients that need it then
// refuse the new key, which is the safe side. The node loads them at start
// and hands them to New (Parts.KeyRotations).
func RotationReceipts(ctx context.Context, l *ledger.Ledger, log *slog.Logger) []string {
	n, err := l.Size(ctx, verify.KeysChain)
	if err != nil {
		return nil // no keys chain: nothing was ever rotated through the ledger
	}
	var out []string
	for seq := range n {
		entry, _, err := l.Abs(ctx, verify.KeysChain, int64(seq))
		if err != nil {
			log.Error("read the keys chain", "seq", seq, "err", err)
			continue
		}
		_, rec, err := verify.ParseEntry(entry)
		if err != nil || rec.Type != verify.RotateType {
			continue
		}
		receipt, err := l.Proof(ctx, verify.KeysChain, seq, seq+1)
		if err != nil {
			log.Error("identity rotation has no receipt: clients that know the older key will refuse this one", "seq", seq, "err", err)
			continue
		}
		// Keeping is idempotent; it repairs a rotation whose keygen stopped
		// between the append and keeping its checkpoint.
		if err := l.KeepCheckpoint(ctx, verify.KeysChain, seq+1, nil); err != nil {
			log.Error("keep the checkpoint of an identity rotation", "seq", seq, "err", err)
		}
		out = append(out, string(receipt))
	}
	return out
}
