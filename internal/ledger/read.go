package ledger

import (
	"context"
	"encoding/binary"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Limits of List.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 100000
)

func checkID(id string) ([16]byte, error) {
	if !verify.IsCanonicalUUID(id) {
		return [16]byte{}, wire.Errorf(wire.CodeInvalid, "bad record id %q: want a canonical lowercase uuid", id)
	}
	return uuidBytes(id), nil
}

// Get returns the entry holding record id, and its seq.
func (l *Ledger) Get(ctx context.Context, chain, id string) ([]byte, uint64, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, 0, err
	}
	key, err := checkID(id)
	if err != nil {
		return nil, 0, err
	}
	var entry []byte
	var seq uint64
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		ref, ok, err := tx.LookupID(cs.meta.Key(), key)
		if err != nil || !ok {
			return err
		}
		e, err := tx.Entry(cs.meta.Key(), ref.Seq)
		entry, seq = append([]byte(nil), e...), ref.Seq
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if entry == nil {
		return nil, 0, wire.Errorf(wire.CodeNotFound, "no record %s in chain %q", id, cs.meta.Name)
	}
	return entry, seq, nil
}

// GetMany returns the entries of ids, nil where there is none. reserve, if
// not nil, is told the total size of the entries found before any is copied
// out of the store: an error from it is returned as it is, and nothing has
// been allocated for the entries (the server sizes its reply this way).
func (l *Ledger) GetMany(ctx context.Context, chain string, ids []string, reserve func(total int) error) ([][]byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, err
	}
	keys := make([][16]byte, len(ids))
	for i, id := range ids {
		if keys[i], err = checkID(id); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(ids))
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		for i, k := range keys {
			ref, ok, err := tx.LookupID(cs.meta.Key(), k)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if out[i], err = tx.Entry(cs.meta.Key(), ref.Seq); err != nil {
				return err
			}
		}
		return copyOut(out, reserve)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AbsMany returns the entries at seqs (negative: from the end, as in Abs),
// nil where there is none; reserve is as in GetMany.
func (l *Ledger) AbsMany(ctx context.Context, chain string, seqs []int64, reserve func(total int) error) ([][]byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(seqs))
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		// Negative seqs count from the end of this snapshot, not of the
		// size held in memory (another front end may have appended).
		size, err := tx.Size(cs.meta.Key())
		if err != nil {
			return err
		}
		for i, seq := range seqs {
			pos, ok := position(seq, size)
			if !ok {
				continue
			}
			e, err := tx.Entry(cs.meta.Key(), pos)
			if err != nil {
				return err
			}
			if len(e) == 0 {
				return wire.Errorf(wire.CodeInternal, "chain %q: entry %d is missing", cs.meta.Name, pos)
			}
			out[i] = e
		}
		return copyOut(out, reserve)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// position resolves a seq of rabs against a chain of size entries: a
// negative one counts from the end. ok is false when there is no such entry.
func position(seq int64, size uint64) (pos uint64, ok bool) {
	pos = uint64(seq)
	if seq < 0 {
		if uint64(-seq) > size {
			return 0, false
		}
		pos = size - uint64(-seq)
	}
	return pos, pos < size
}

// copyOut replaces the store's slices in out, valid only inside their
// transaction, by copies in one allocation, once reserve accepts the size.
func copyOut(out [][]byte, reserve func(total int) error) error {
	total := 0
	for _, e := range out {
		total += len(e)
	}
	if reserve != nil {
		if err := reserve(total); err != nil {
			clear(out)
			return err
		}
	}
	buf := make([]byte, 0, total)
	for i, e := range out {
		if e != nil {
			buf = append(buf, e...)
			out[i] = buf[len(buf)-len(e) : len(buf) : len(buf)]
		}
	}
	return nil
}

// Have reports which ids are in the chain.
func (l *Ledger) Have(ctx context.Context, chain string, ids []string) ([]bool, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, err
	}
	keys := make([][16]byte, len(ids))
	for i, id := range ids {
		if keys[i], err = checkID(id); err != nil {
			return nil, err
		}
	}
	out := make([]bool, len(ids))
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		for i, k := range keys {
			_, ok, err := tx.LookupID(cs.meta.Key(), k)
			if err != nil {
				return err
			}
			out[i] = ok
		}
		return nil
	})
	return out, err
}

// Abs returns the entry at seq; a negative seq counts from the end (-1 is
// the last entry).
func (l *Ledger) Abs(ctx context.Context, chain string, seq int64) ([]byte, uint64, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, 0, err
	}
	var entry []byte
	var pos uint64
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		size, err := tx.Size(cs.meta.Key())
		if err != nil {
			return err
		}
		var ok bool
		if pos, ok = position(seq, size); !ok {
			return wire.Errorf(wire.CodeNotFound, "chain %q has %d entries", cs.meta.Name, size)
		}
		e, err := tx.Entry(cs.meta.Key(), pos)
		entry = append([]byte(nil), e...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if len(entry) == 0 {
		return nil, 0, wire.Errorf(wire.CodeInternal, "chain %q: entry %d is missing", cs.meta.Name, pos)
	}
	return entry, pos, nil
}

// Size is the number of entries in the chain.
func (l *Ledger) Size(ctx context.Context, chain string) (uint64, error) {
	cs, err := l.state(chain)
	if err != nil {
		return 0, err
	}
	return cs.size, nil
}

// Head returns the chain's newest signed checkpoint note.
func (l *Ledger) Head(ctx context.Context, chain string) ([]byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, err
	}
	if cs.head == nil {
		return nil, wire.Errorf(wire.CodeInternal, "chain %q has no checkpoint", cs.meta.Name)
	}
	var note []byte
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		note, err = withCosignatures(tx, cs.meta.Key(), cs.headSize, cs.head)
		return err
	})
	return note, err
}

// List returns the ids of records accepted in [fromMs, toMs) server time, in
// seq order, at most limit (0 = DefaultListLimit) of them, and a cursor to
// pass back for the next page (nil when there is none).
func (l *Ledger) List(ctx context.Context, chain string, fromMs, toMs uint64, limit int, cursor []byte) ([]string, []byte, error) {
	cs, err := l.state(chain)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0:
		return nil, nil, wire.Errorf(wire.CodeInvalid, "negative limit")
	case limit > MaxListLimit:
		return nil, nil, wire.Errorf(wire.CodeLimit, "limit %d is above %d", limit, MaxListLimit)
	}
	startMs, startSeq := fromMs, uint64(0)
	if cursor != nil {
		if len(cursor) != 16 {
			return nil, nil, wire.Errorf(wire.CodeInvalid, "bad cursor")
		}
		startMs, startSeq = binary.BigEndian.Uint64(cursor), binary.BigEndian.Uint64(cursor[8:])
		if startMs < fromMs {
			return nil, nil, wire.Errorf(wire.CodeInvalid, "cursor is before the range")
		}
	}
	ids := []string{}
	var next []byte
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		return tx.Times(cs.meta.Key(), startMs, startSeq, func(r store.TimeRef) (bool, error) {
			if r.Ms >= toMs {
				return false, nil
			}
			if len(ids) == limit {
				next = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), r.Ms), r.Seq)
				return false, nil
			}
			ids = append(ids, uuidString(r.ID))
			return true, nil
		})
	})
	return ids, next, err
}

// Count is the number of records accepted in [fromMs, toMs) server time.
// Entry times never decrease along the chain, so this is the difference of
// two seqs found with one index seek each.
func (l *Ledger) Count(ctx context.Context, chain string, fromMs, toMs uint64) (uint64, error) {
	cs, err := l.state(chain)
	if err != nil {
		return 0, err
	}
	if toMs <= fromMs {
		return 0, nil
	}
	var a, b uint64
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		seek := func(ms uint64) (uint64, error) {
			at := cs.size
			err := tx.Times(cs.meta.Key(), ms, 0, func(r store.TimeRef) (bool, error) {
				at = min(r.Seq, cs.size)
				return false, nil
			})
			return at, err
		}
		var err error
		if a, err = seek(fromMs); err != nil {
			return err
		}
		b, err = seek(toMs)
		return err
	})
	if err != nil || b < a {
		return 0, err
	}
	return b - a, nil
}
