package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// BatchEvery is the spacing of batch points: every chain has a signed
// checkpoint kept at every exact multiple of BatchEvery entries, at its home
// and at every mirror (docs/formats.md "Checkpoints kept"). BatchEvery
// entries of at most verify's 65,535-byte limit are under MaxMirrorBytes, so
// a replication batch from any size to the next batch point always fits.
const BatchEvery = 128

// BatchEnd is where a replication batch that starts at held should end, for
// a chain whose newest checkpoint has size newest (held < newest): the next
// multiple of BatchEvery above held, or newest when that is nearer. Both
// ends have a kept signed checkpoint. With held ≥ newest it returns newest.
func BatchEnd(held, newest uint64) uint64 {
	if held >= newest {
		return newest
	}
	next := (held/BatchEvery + 1) * BatchEvery
	return min(next, newest)
}

// isBatchPoint reports whether size is a batch point other than 0 (the
// size-0 checkpoint is kept anyway, as a chain's first).
func isBatchPoint(size uint64) bool { return size > 0 && size%BatchEvery == 0 }

// batchPoint is a size a commit passes, with the root of the tree there.
type batchPoint struct {
	size uint64
	root [32]byte
}

// storeBatchPoints signs and keeps the checkpoints of the batch points a
// group commit passed strictly below the chain's new size (the new size
// itself gets the commit's own checkpoint, kept by putHead).
func (l *Ledger) storeBatchPoints(tx store.WriteTx, w *chainWork) error {
	origin := l.origin(w.meta.Name)
	for _, p := range w.points {
		if p.size >= w.size {
			continue
		}
		if err := l.signKept(tx, w.meta.Key(), origin, p.size, p.root); err != nil {
			return err
		}
	}
	return nil
}

// signKept signs the checkpoint of size and root and stores it as a kept
// batch point.
func (l *Ledger) signKept(tx store.WriteTx, k store.ChainKey, origin string, size uint64, root [32]byte) error {
	note, err := verify.SignCheckpoint(verify.Checkpoint{Origin: origin, Size: size, Root: root},
		verify.NewNoteSigner(origin, l.cfg.Signer))
	if err != nil {
		return err
	}
	if err := tx.PutCheckpoint(k, store.StoredCheckpoint{Size: size, Note: note, Keep: store.KeepBatchPoint}); err != nil {
		return fmt.Errorf("batch point %d: %w", size, err)
	}
	return nil
}

// backfillChunk bounds the checkpoints one backfill transaction signs.
const backfillChunk = 1024

// backfillBatchPoints gives every writable chain homed here a kept signed
// checkpoint at each batch point up to its size: chains written before
// batch points existed lack them. A checkpoint already stored at a batch
// point (a milestone, or the newest) is only marked kept; a missing one is
// signed from the stored Merkle nodes. It runs at Open, before the
// committer, and is idempotent: with nothing missing it costs one lookup per
// batch point.
//
// It needs the heads file: without one (offline tools, such as `vserv
// resume` reporting before any decision) a rolled-back database that
// diverged from what was signed would go unnoticed, and a backfilled
// checkpoint could then give one size a second root. Such a ledger signs
// nothing at Open.
func (l *Ledger) backfillBatchPoints(ctx context.Context) error {
	if l.ring.fault != "" || l.cfg.HeadsFile == "" {
		return nil // nothing may be signed
	}
	for name, cs := range l.chains {
		if cs.readOnly != "" || cs.size < BatchEvery {
			continue
		}
		k := cs.meta.Key()
		var missing, unmarked []uint64
		err := l.store.View(ctx, func(tx store.ReadTx) error {
			for size := uint64(BatchEvery); size <= cs.size; size += BatchEvery {
				cp, ok, err := tx.Checkpoint(k, size)
				switch {
				case err != nil:
					return err
				case !ok:
					missing = append(missing, size)
				case cp.Keep&store.KeepBatchPoint == 0:
					unmarked = append(unmarked, size)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("chain %q: batch points: %w", name, err)
		}
		if len(missing)+len(unmarked) == 0 {
			continue
		}
		origin := l.origin(name)
		for len(unmarked) > 0 {
			n := min(len(unmarked), backfillChunk)
			err := l.store.Update(ctx, func(tx store.WriteTx) error {
				for _, size := range unmarked[:n] {
					cp, ok, err := tx.Checkpoint(k, size)
					if err != nil || !ok {
						return err
					}
					cp.Keep |= store.KeepBatchPoint
					if err := tx.PutCheckpoint(k, cp); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("chain %q: keep batch points: %w", name, err)
			}
			unmarked = unmarked[n:]
		}
		added := len(missing)
		for len(missing) > 0 {
			n := min(len(missing), backfillChunk)
			err := l.store.Update(ctx, func(tx store.WriteTx) error {
				for _, size := range missing[:n] {
					rng, err := loadRange(tx, k, size)
					if err != nil {
						return err
					}
					root, err := rootOf(rng)
					if err != nil {
						return err
					}
					if err := l.signKept(tx, k, origin, size, root); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("chain %q: sign batch points: %w", name, err)
			}
			missing = missing[n:]
		}
		l.log.Info("batch point checkpoints added", "chain", name, "signed", added, "size", cs.size)
	}
	return nil
}

// Entries returns the entries [from, to) of a chain, given by name or full
// origin (homed here or mirrored), read in one transaction: at most
// maxEntries of them, and no more than fit in maxBytes, but always at least
// one when from is below the chain's size. A to beyond the size is cut to
// it; from equal to the size gives none; from beyond it is ERR notfound.
// maxEntries and maxBytes must be positive (ERR invalid).
func (l *Ledger) Entries(ctx context.Context, chain string, from, to uint64, maxEntries, maxBytes int) ([][]byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, err
	}
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "entries: limits must be positive, got %d entries and %d bytes", maxEntries, maxBytes)
	}
	var out [][]byte
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		// The size of this snapshot: every entry below it is stored.
		size, err := tx.Size(cs.meta.Key())
		if err != nil {
			return err
		}
		if from > size {
			return wire.Errorf(wire.CodeNotFound, "chain %s has %d entries, not %d", cs.meta.Name, size, from)
		}
		to = min(to, size)
		if to <= from {
			out = [][]byte{}
			return nil
		}
		// Grown by append beyond this: the caller's limits bound it, not a cap.
		out = make([][]byte, 0, min(uint64(maxEntries), to-from, 1024))
		total := 0
		next := from
		err = tx.Entries(cs.meta.Key(), from, func(seq uint64, entry []byte) (bool, error) {
			if seq != next {
				return false, wire.Errorf(wire.CodeInternal, "chain %s: entry %d is missing", cs.meta.Name, next)
			}
			if len(out) > 0 && total+len(entry) > maxBytes {
				return false, nil
			}
			out = append(out, entry)
			total += len(entry)
			next++
			return next < to && len(out) < maxEntries, nil
		})
		if err != nil {
			return err
		}
		if len(out) == 0 {
			return wire.Errorf(wire.CodeInternal, "chain %s: entry %d is missing", cs.meta.Name, from)
		}
		return copyOut(out, nil)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EntryTime is the time the home stamped on the entry at seq of a chain
// (by name or full origin): for a mirror, the age of the oldest entry it
// lacks is its lag in seconds. A seq at or beyond the size is ERR notfound.
func (l *Ledger) EntryTime(ctx context.Context, chain string, seq uint64) (time.Time, error) {
	cs, err := l.state(chain)
	if err != nil {
		return time.Time{}, err
	}
	var ms uint64
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		size, err := tx.Size(cs.meta.Key())
		if err != nil {
			return err
		}
		if seq >= size {
			return wire.Errorf(wire.CodeNotFound, "chain %s has %d entries, not %d", cs.meta.Name, size, seq+1)
		}
		raw, err := tx.Entry(cs.meta.Key(), seq)
		if err != nil {
			return err
		}
		e, _, err := verify.ParseEntry(raw)
		if err != nil {
			return wire.Errorf(wire.CodeConflict, "chain %s is damaged: entry %d: %v", cs.meta.Name, seq, err)
		}
		ms = e.Time
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(ms)), nil
}
