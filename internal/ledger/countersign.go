package ledger

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

// countersignHeads adds a signature line by the current key to every newest
// checkpoint that only an earlier key of the rotation history signed. A chain
// nobody wrote since a rotation would otherwise hand out receipts that only
// the retired key verifies. The note keeps its text and its old signature
// lines, so the checkpoint stays the same statement (same size, same root)
// and the kept rotation checkpoint of the keys chain still verifies with the
// key it retires. It runs at open, before the committer starts.
func (l *Ledger) countersignHeads(ctx context.Context) error {
	if l.ring.fault != "" || len(l.ring.keys) < 2 {
		return nil
	}
	verifiers := make([]note.Verifier, 0, len(l.ring.keys))
	for name, cs := range l.chains {
		if cs.readOnly != "" || cs.head == nil {
			continue
		}
		origin := l.origin(name)
		if _, err := verify.OpenCheckpointKeys(cs.head, origin, l.pub); err == nil {
			continue // the current key signed it already
		}
		verifiers = verifiers[:0]
		for _, k := range l.ring.keys {
			verifiers = append(verifiers, verify.NewNoteVerifier(origin, k))
		}
		n, err := note.Open(cs.head, note.VerifierList(verifiers...))
		if err != nil {
			return fmt.Errorf("chain %q: open newest checkpoint: %w", name, err)
		}
		// store.Keep lines of keys we cannot check (witness cosignatures) as they are.
		n.Sigs = append(n.Sigs, n.UnverifiedSigs...)
		n.UnverifiedSigs = nil
		signed, err := note.Sign(n, verify.NewNoteSigner(origin, l.cfg.Signer))
		if err != nil {
			return fmt.Errorf("chain %q: countersign newest checkpoint: %w", name, err)
		}
		err = l.store.Update(ctx, func(tx store.WriteTx) error {
			cp, ok, err := tx.Checkpoint(cs.meta.Key(), cs.headSize)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("newest checkpoint is not stored")
			}
			cp.Note = signed
			return tx.PutCheckpoint(cs.meta.Key(), cp)
		})
		if err != nil {
			return fmt.Errorf("chain %q: store countersigned checkpoint: %w", name, err)
		}
		cs.head = signed
		l.log.Info("newest checkpoint countersigned with the current identity key", "chain", name, "size", cs.headSize)
	}
	return nil
}
