package apps

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/verify"
)

// EventFromEntry decodes a stored entry (§4.3, verify.ParseEntry) into the
// event the rules see. A signed record's signature is checked against the
// entry's origin line; the caller checks links and proofs.
func EventFromEntry(entry []byte) (Event, *verify.Entry, error) {
	e, rec, err := verify.ParseEntry(entry)
	if err != nil {
		return Event{}, nil, err
	}
	if rec.Sig != nil {
		if err := rec.CheckSig(verify.OriginLine(e.Origin, e.Chain)); err != nil {
			return Event{}, nil, err
		}
	}
	return EventOf(e, rec, verify.LeafHash(entry)), e, nil
}

// EventOf is the event of an entry the caller has built or parsed, with
// its checked record (decoded with its payload: verify.CheckRecord) and
// its leaf hash: what the committer hands to Apply.
func EventOf(e *verify.Entry, rec *verify.Record, leaf [32]byte) Event {
	return Event{Seq: e.Seq, Time: e.Time, Leaf: leaf, Type: rec.Type, Payload: rec.Payload, Author: rec.Author}
}

// ReplayError is an entry Replay could not apply: malformed, out of place,
// or refused by the rules (then Err is a *RuleError).
type ReplayError struct {
	Seq uint64
	Err error
}

func (e *ReplayError) Error() string { return fmt.Sprintf("entry %d: %v", e.Seq, e.Err) }
func (e *ReplayError) Unwrap() error { return e.Err }

// Replay applies stored entries, the chain's entries from seq `next`
// onwards in order, to kv with the chain's schema: what recount does from
// entry 0 with a fresh MapKV. It checks that each entry is the next one of
// this chain (seq, chain name, origin), its signature, and every rule; it
// stops at the first entry it cannot apply and returns a *ReplayError.
// It returns the seq after the last applied entry.
//
// Replay cannot know which accounts held `write` or `manage`: that is
// checkable only through authority keys (§6.1).
func Replay(kv KV, c Chain, next uint64, entries [][]byte) (uint64, error) {
	s, err := For(c.Schema)
	if err != nil {
		return next, err
	}
	for _, b := range entries {
		ev, e, err := EventFromEntry(b)
		if err != nil {
			return next, &ReplayError{Seq: next, Err: err}
		}
		switch {
		case e.Seq != next:
			return next, &ReplayError{Seq: next, Err: fmt.Errorf("entry has seq %d, want %d", e.Seq, next)}
		case e.Chain != c.Name || e.Origin != c.Origin:
			return next, &ReplayError{Seq: next, Err: fmt.Errorf("entry is of chain %s/%s, want %s/%s", e.Origin, e.Chain, c.Origin, c.Name)}
		}
		if _, err := s.Apply(kv, c, ev); err != nil {
			return next, &ReplayError{Seq: next, Err: err}
		}
		next++
	}
	return next, nil
}

// Difference is one view that two states answer differently: the
// deterministic CBOR encodings of both answers (nil where a state has no
// such item).
type Difference struct {
	Query Query
	A, B  []byte
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: %s vs %s", d.Query, diag(d.A), diag(d.B))
}

func diag(b []byte) string {
	if b == nil {
		return "absent"
	}
	s, err := cbor.Diagnose(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return s
}

// ViewBytes is the deterministic CBOR encoding of a view, nil if the item
// does not exist: what Compare compares, and what a recount compares with
// a server's `view` answer.
func ViewBytes(s Schema, kv KV, c Chain, q Query) ([]byte, error) {
	v, err := s.View(kv, c, q.Name, q.Args)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", q, err)
	}
	b, err := canon.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("view %s: encode: %w", q, err)
	}
	return b, nil
}

// Compare lists every view in which states a and b of one chain differ,
// over the queries of both (Schema.Queries); none means they agree on
// every view.
func Compare(s Schema, c Chain, a, b KV) ([]Difference, error) {
	qa, err := s.Queries(a)
	if err != nil {
		return nil, err
	}
	qb, err := s.Queries(b)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var diffs []Difference
	for _, q := range append(qa, qb...) {
		if seen[q.String()] {
			continue
		}
		seen[q.String()] = true
		va, err := ViewBytes(s, a, c, q)
		if err != nil {
			return nil, err
		}
		vb, err := ViewBytes(s, b, c, q)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(va, vb) {
			diffs = append(diffs, Difference{Query: q, A: va, B: vb})
		}
	}
	return diffs, nil
}
