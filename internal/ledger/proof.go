package ledger

import (
	"bytes"
	"context"
	"errors"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// checkpointFor returns the checkpoint a proof is built against: the kept
// one of exactly size, or the newest when size is 0.
func (l *Ledger) checkpointFor(tx store.ReadTx, cs *chainState, size uint64) (uint64, []byte, error) {
	if size == 0 {
		note, err := withCosignatures(tx, cs.meta.Key(), cs.headSize, cs.head)
		return cs.headSize, note, err
	}
	cp, ok, err := tx.Checkpoint(cs.meta.Key(), size)
	if err != nil {
		return 0, nil, err
	}
	if !ok || size > cs.headSize {
		return 0, nil, wire.Errorf(wire.CodeNotFound, "no kept checkpoint of size %d in chain %q", size, cs.meta.Name)
	}
	return size, append(append([]byte(nil), cp.Note...), cp.Cosignatures...), nil
}

// Proof returns the receipt (§4.5) of the entry at seq, against the kept
// checkpoint of treeSize, or when treeSize is 0 the newest one; with
// Config.WitnessQuorum K above 0, the newest kept checkpoint that covers seq
// and holds at least K cosignature lines, and the newest when none does.
func (l *Ledger) Proof(ctx context.Context, chain string, seq, treeSize uint64) ([]byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, err
	}
	var receipt []byte
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		size, note, err := l.checkpointFor(tx, cs, treeSize)
		if err != nil {
			return err
		}
		if treeSize == 0 && l.cfg.WitnessQuorum > 0 {
			if qs, qn, ok, err := quorumCheckpoint(tx, cs, seq, l.cfg.WitnessQuorum); err != nil {
				return err
			} else if ok {
				size, note = qs, qn
			}
		}
		if seq >= size {
			return wire.Errorf(wire.CodeNotFound, "no entry %d in a tree of size %d", seq, size)
		}
		receipt, err = buildReceipt(tx, cs.meta.Key(), seq, size, note)
		return err
	})
	var we *wire.Error
	if err != nil && !errors.As(err, &we) && cs.readOnly != "" {
		// Stored data that no longer matches its checkpoint cannot be
		// proven; say so instead of reporting a server fault.
		return nil, wire.Errorf(wire.CodeConflict, "chain %s is damaged (%s); rcheck lists the faults", cs.meta.Name, cs.readOnly)
	}
	return receipt, err
}

func buildReceipt(tx store.ReadTx, c store.ChainKey, seq, size uint64, note []byte) ([]byte, error) {
	entry, err := tx.Entry(c, seq)
	if err != nil {
		return nil, err
	}
	if entry == nil {
		return nil, wire.Errorf(wire.CodeConflict, "chain %s is damaged: entry %d is missing; rcheck lists the faults", c.Name, seq)
	}
	hashes, err := inclusionProof(tx, c, seq, size)
	if err != nil {
		return nil, err
	}
	return verify.FormatReceipt(entry, seq, hashes, note), nil
}

// addReceipts fills in the receipts of a committed append, against the
// checkpoint that commit signed (or the newest, if it appended nothing new).
func (l *Ledger) addReceipts(ctx context.Context, chain string, out appendOutcome) error {
	size, note := out.size, out.note
	if note == nil {
		cs, err := l.state(chain)
		if err != nil {
			return err
		}
		size, note = cs.headSize, cs.head
	}
	return l.store.View(ctx, func(tx store.ReadTx) error {
		for i := range out.results {
			r, err := buildReceipt(tx, l.key(chain), out.results[i].Seq, size, note)
			if err != nil {
				return err
			}
			out.results[i].Receipt = r
		}
		return nil
	})
}

// Consistency returns the consistency proof from oldSize to the kept
// checkpoint of newSize (the newest when newSize is 0), and that checkpoint.
func (l *Ledger) Consistency(ctx context.Context, chain string, oldSize, newSize uint64) ([][]byte, []byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, nil, err
	}
	var hashes [][]byte
	var note []byte
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		size, n, err := l.checkpointFor(tx, cs, newSize)
		if err != nil {
			return err
		}
		if oldSize > size {
			return wire.Errorf(wire.CodeInvalid, "old size %d is beyond the tree size %d", oldSize, size)
		}
		note = n
		hashes, err = consistencyProof(tx, cs.meta.Key(), oldSize, size)
		return err
	})
	if hashes == nil && err == nil {
		hashes = [][]byte{}
	}
	return hashes, note, err
}

// quorumCheckpoint finds the newest stored checkpoint of the chain, up to
// its head, that covers seq and holds at least quorum cosignature lines,
// and returns its size and served note (ok false when there is none). It
// reads the chain's kept checkpoints in one pass.
func quorumCheckpoint(tx store.ReadTx, cs *chainState, seq uint64, quorum int) (size uint64, note []byte, ok bool, err error) {
	var best store.StoredCheckpoint
	err = tx.Checkpoints(cs.meta.Key(), func(cp store.StoredCheckpoint) error {
		if cp.Size > seq && cp.Size <= cs.headSize && bytes.Count(cp.Cosignatures, []byte("\n")) >= quorum {
			best, ok = cp, true
		}
		return nil
	})
	if err != nil || !ok {
		return 0, nil, false, err
	}
	return best.Size, append(bytes.Clone(best.Note), best.Cosignatures...), true, nil
}
