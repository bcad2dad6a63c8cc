package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Mirroring, the ledger's side (DESIGN.md §5.2; docs/formats.md "Mirrored
// chains"): a mirror holds the chains of other homes verbatim, under
// store.ChainKey{Origin: home's server-id, Name}, and appends a batch only
// after checking it against the home's signed checkpoint and a consistency
// proof from what it holds, so that no one can feed it a rewritten history.
// It never signs a checkpoint of a mirrored chain: it stores and serves the
// home's. The network side (rpush, ihave, rentries) is internal/replic's.

// Limits of one Mirror batch (DESIGN.md §5.2): beyond them, ERR limit.
const (
	MaxMirrorEntries = 1000
	MaxMirrorBytes   = 8 << 20
	// maxProofHashes bounds a consistency proof: one between two trees
	// below 2^64 entries has at most 2·64 hashes.
	maxProofHashes = 128
)

// MirrorBatch is one batch of a home's chain, as rpush or rentries bring it.
type MirrorBatch struct {
	// Meta is the chain as the home's `chains` describes it: Origin the
	// home's server-id, Name, Public, PoWBits, Schema, Authority. It is
	// stored with the first batch; later batches keep the stored one.
	Meta store.ChainMeta
	// From is the seq of Entries[0]. Entries below the held size must be
	// the very bytes held (a retransmission); the rest extend the chain.
	From    uint64
	Entries [][]byte
	// Checkpoint is the home's signed checkpoint note of the size held plus
	// the batch; Proof the consistency proof from the held size to it.
	Checkpoint []byte
	Proof      [][]byte
	// HomeKeys are the keys the home's checkpoints may be signed with: its
	// pinned key and the keys its verified key.rotate records lead to (the
	// caller follows them; for now it passes the set).
	HomeKeys []ed25519.PublicKey
}

// Fork is fork evidence as Forks returns it.
type Fork = store.Fork

// Mirror checks a batch of another home's chain and appends it, creating
// the mirror chain on its first batch. It returns the size held afterwards.
//
// Errors: ERR limit for a batch over MaxMirrorEntries or MaxMirrorBytes;
// ERR invalid for a batch that is wrong on its own (a checkpoint not signed
// by any of HomeKeys, an entry that is malformed, of another origin or
// chain, at another seq, with another prev, earlier time, failing PoW or
// signature, a repeated record id, a gap, a checkpoint that does not cover
// exactly the held entries plus the batch, or a root that differs from the
// checkpoint's); ERR conflict for a fork (an entry at a held seq that
// differs, a checkpoint of a held size with another root, a consistency
// proof that does not verify), whose evidence (both checkpoints) is stored
// (Forks) and logged at error level. Nothing is stored on any error but the
// fork evidence.
func (l *Ledger) Mirror(ctx context.Context, b MirrorBatch) (uint64, error) {
	k := b.Meta.Key()
	switch {
	case !verify.ValidServerID(k.Origin):
		return 0, wire.Errorf(wire.CodeInvalid, "mirror: bad origin server-id %q", k.Origin)
	case k.Origin == l.cfg.ServerID:
		return 0, wire.Errorf(wire.CodeInvalid, "mirror: chain %s is homed here; a server does not mirror its own chains", k.Name)
	case !verify.ValidChainName(k.Name):
		return 0, wire.Errorf(wire.CodeInvalid, "mirror: bad chain name %q", k.Name)
	case len(b.Entries) > MaxMirrorEntries:
		return 0, wire.Errorf(wire.CodeLimit, "mirror: %d entries in one batch, the limit is %d", len(b.Entries), MaxMirrorEntries)
	case len(b.HomeKeys) == 0:
		return 0, wire.Errorf(wire.CodeInvalid, "mirror: no pinned key for home %s", k.Origin)
	case len(b.Proof) > maxProofHashes:
		return 0, wire.Errorf(wire.CodeInvalid, "mirror: a consistency proof of %d hashes; no proof has more than %d", len(b.Proof), maxProofHashes)
	}
	total := 0
	for _, e := range b.Entries {
		total += len(e)
	}
	if total > MaxMirrorBytes {
		return 0, wire.Errorf(wire.CodeLimit, "mirror: %d bytes of entries in one batch, the limit is %d", total, MaxMirrorBytes)
	}
	origin := verify.OriginLine(k.Origin, k.Name)
	cp, err := verify.OpenCheckpointKeys(b.Checkpoint, origin, b.HomeKeys...)
	if err != nil {
		return 0, wire.Errorf(wire.CodeInvalid, "mirror: checkpoint of %s is not signed by the home's pinned key: %v", origin, err)
	}
	// What is stored and served is the note as the home signed it.
	b.Checkpoint = homeNote(b.Checkpoint, origin)

	// Close waits for a batch being stored, and refuses new ones.
	l.closeM.RLock()
	defer l.closeM.RUnlock()
	if l.closed {
		return 0, wire.Errorf(wire.CodeInternal, "ledger is closed")
	}
	l.mirrorMu.Lock()
	defer l.mirrorMu.Unlock()
	l.mu.RLock()
	cs := l.mirrors[k]
	l.mu.RUnlock()
	var (
		w    *chainState
		fork *store.Fork
	)
	err = l.store.Update(ctx, func(tx store.WriteTx) error {
		var err error
		w, fork, err = l.mirrorTx(tx, cs, b, cp)
		return err
	})
	if fork != nil {
		l.keepFork(ctx, k, *fork)
	}
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			l.log.Error("mirror commit failed", "origin", k.Origin, "chain", k.Name, "err", err)
			return 0, wire.Errorf(wire.CodeInternal, "mirror: ledger write failed")
		}
		return 0, err
	}
	l.mu.Lock()
	grew := cs == nil || w.size != cs.size
	l.mirrors[k] = w
	l.mu.Unlock()
	if grew {
		l.notifyWatchers(k, w.size)
	}
	return w.size, nil
}

// homeNote is a checkpoint note of origin without the signature lines of
// other names (witnesses' cosignatures, which a mirror cannot verify): the
// checkpoint text and the home's own signature lines, whose key name is the
// origin line, in their order. A mirror stores and serves exactly these
// bytes, so its rhead is the home's apart from cosignature lines.
func homeNote(note []byte, origin string) []byte {
	text, sigs, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok {
		return note
	}
	out := make([]byte, 0, len(note))
	out = append(append(out, text...), "\n\n"...)
	for line := range bytes.Lines(sigs) {
		if name, ok := cosignatureName(string(line)); ok && name == origin {
			out = append(out, line...)
		}
	}
	return out
}

// mirrorTx checks and stores one batch inside tx; cs is the mirror chain
// as held in memory (nil before its first batch). It returns the new state,
// or the fork it found (with an ERR conflict).
func (l *Ledger) mirrorTx(tx store.WriteTx, cs *chainState, b MirrorBatch, cp *verify.Checkpoint) (*chainState, *store.Fork, error) {
	k := b.Meta.Key()
	origin := verify.OriginLine(k.Origin, k.Name)
	created := cs == nil
	if created {
		cs = &chainState{meta: b.Meta, mirror: true, rng: rangeFactory.NewEmptyRange(0)}
		if err := tx.PutChain(b.Meta); err != nil {
			return nil, nil, err
		}
	}
	size, err := tx.LockHead(k)
	if err != nil {
		return nil, nil, err
	}
	if size != cs.size {
		// Another writer of a shared store extended it: start from what is stored.
		if cs, err = l.loadChainAt(tx, cs.meta, size); err != nil {
			return nil, nil, err
		}
	}
	if cs.readOnly != "" {
		return nil, nil, wire.Errorf(wire.CodeConflict, "mirror chain %s is read-only: %s", origin, cs.readOnly)
	}
	w := cs.clone()
	held := w.size
	forkErr := func(held []byte, format string, args ...any) (*chainState, *store.Fork, error) {
		reason := fmt.Sprintf(format, args...)
		f := &store.Fork{Ms: uint64(l.cfg.Now().UnixMilli()), Reason: reason,
			Held: bytes.Clone(held), Offered: bytes.Clone(b.Checkpoint)}
		return nil, f, wire.Errorf(wire.CodeConflict, "mirror: fork of %s: %s", origin, reason)
	}

	// Entries below the held size must be the bytes held.
	if b.From > held {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "mirror: batch of %s starts at seq %d, but this mirror holds %d entries", origin, b.From, held)
	}
	entries := b.Entries
	for len(entries) > 0 && b.From+uint64(len(b.Entries)-len(entries)) < held {
		seq := b.From + uint64(len(b.Entries)-len(entries))
		stored, err := tx.Entry(k, seq)
		if err != nil {
			return nil, nil, err
		}
		if !bytes.Equal(stored, entries[0]) {
			return forkErr(w.head, "entry %d differs from the one held", seq)
		}
		entries = entries[1:]
	}

	// A checkpoint of a size held: it must have the root held at that size.
	if cp.Size <= held {
		root, heldNote := w.headRoot, w.head
		if cp.Size < held {
			rng, err := loadRange(tx, k, cp.Size)
			if err != nil {
				return nil, nil, err
			}
			if root, err = rootOf(rng); err != nil {
				return nil, nil, err
			}
			if c, ok, err := tx.Checkpoint(k, cp.Size); err != nil {
				return nil, nil, err
			} else if ok {
				heldNote = c.Note
			}
		} else if held == 0 {
			root = verify.EmptyRoot
		}
		if root != cp.Root {
			return forkErr(heldNote, "checkpoint of held size %d has another root", cp.Size)
		}
		if len(entries) > 0 {
			return nil, nil, wire.Errorf(wire.CodeInvalid, "mirror: checkpoint of size %d does not cover the batch of %s, which ends at %d", cp.Size, origin, held+uint64(len(entries)))
		}
		if created {
			if err := putHead(tx, k, 0, b.Checkpoint); err != nil {
				return nil, nil, err
			}
			w.head, w.headSize, w.headRoot = bytes.Clone(b.Checkpoint), 0, verify.EmptyRoot
		}
		return w, nil, nil
	}
	if want := held + uint64(len(entries)); cp.Size != want {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "mirror: checkpoint of %s covers %d entries, the held entries plus the batch are %d", origin, cp.Size, want)
	}
	older := &verify.Checkpoint{Origin: origin, Size: held, Root: w.headRoot}
	if held == 0 {
		older.Root = verify.EmptyRoot
	}
	if err := verify.VerifyConsistency(older, cp, b.Proof); err != nil {
		return forkErr(w.head, "consistency proof from held size %d to %d does not verify: %v", held, cp.Size, err)
	}

	rows := make([]store.Row, 0, len(entries))
	var nodes []store.Node
	visit := func(id compact.NodeID, hash []byte) { nodes = append(nodes, store.Node{ID: id, Hash: hash}) }
	ids := make(map[[16]byte]uint64, len(entries))
	prev, last := w.lastLeaf, w.lastTime
	for i, raw := range entries {
		seq := held + uint64(i)
		e, rec, err := l.checkMirrorEntry(tx, w.meta, raw, seq, prev, last, ids)
		if err != nil {
			return nil, nil, withIndex(err, int(seq-b.From))
		}
		leaf := verify.LeafHash(raw)
		rows = append(rows, store.Row{Seq: seq, Entry: raw, ID: uuidBytes(rec.ID), RecordHash: rec.Hash, Ms: e.Time})
		if err := w.rng.Append(leaf[:], visit); err != nil {
			return nil, nil, err
		}
		prev, last = leaf, e.Time
	}
	root, err := rootOf(w.rng)
	if err != nil {
		return nil, nil, err
	}
	if root != cp.Root {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "mirror: the merkle root of the %d held entries of %s plus the batch is not the checkpoint's", cp.Size, origin)
	}
	if err := tx.Append(k, rows); err != nil {
		return nil, nil, err
	}
	if err := tx.PutNodes(k, nodes); err != nil {
		return nil, nil, err
	}
	if err := putHead(tx, k, cp.Size, b.Checkpoint); err != nil {
		return nil, nil, err
	}
	w.size, w.lastLeaf, w.lastTime = cp.Size, prev, last
	w.head, w.headSize, w.headRoot = bytes.Clone(b.Checkpoint), cp.Size, cp.Root
	return w, nil, nil
}

// checkMirrorEntry checks one entry of a batch on its own and against the
// one before it (prev, last) and the chain's record ids (ids: the batch's
// so far; it adds this one).
func (l *Ledger) checkMirrorEntry(tx store.ReadTx, m store.ChainMeta, raw []byte, seq uint64, prev [32]byte, last uint64, ids map[[16]byte]uint64) (*verify.Entry, *verify.Record, error) {
	e, rec, err := verify.ParseEntry(raw)
	bad := func(format string, args ...any) (*verify.Entry, *verify.Record, error) {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "mirror: entry %d: %s", seq, fmt.Sprintf(format, args...))
	}
	switch {
	case err != nil:
		return bad("%v", err)
	case e.Origin != m.Origin:
		return bad("origin %s, want %s", e.Origin, m.Origin)
	case e.Chain != m.Name:
		return bad("chain %q, want %q", e.Chain, m.Name)
	case e.Seq != seq:
		return bad("seq %d, want %d", e.Seq, seq)
	case e.Prev != prev:
		return bad("prev is not the leaf hash of entry %d", int64(seq)-1)
	case e.Time < last:
		return bad("time %d is before the previous entry's %d", e.Time, last)
	case !verify.PoWValid(rec.Hash, rec.PoW, m.PoWBits):
		return bad("record pow does not meet the chain's %d bits", m.PoWBits)
	}
	if rec.Sig != nil {
		if err := rec.CheckSig(verify.OriginLine(m.Origin, m.Name)); err != nil {
			return bad("%v", err)
		}
	}
	id := uuidBytes(rec.ID)
	if at, ok := ids[id]; ok {
		return bad("record id %s repeats entry %d", rec.ID, at)
	}
	ref, ok, err := tx.LookupID(m.Key(), id)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		return bad("record id %s is already held at entry %d", rec.ID, ref.Seq)
	}
	ids[id] = seq
	return e, rec, nil
}

// keepFork stores fork evidence in a transaction of its own (the batch's
// was rolled back) and raises the alarm.
func (l *Ledger) keepFork(ctx context.Context, k store.ChainKey, f store.Fork) {
	err := l.store.Update(context.WithoutCancel(ctx), func(tx store.WriteTx) error { return tx.PutFork(k, f) })
	l.log.Error("fork: a home offered a history inconsistent with the one mirrored here",
		"origin", k.Origin, "chain", k.Name, "reason", f.Reason,
		"held", string(f.Held), "offered", string(f.Offered), "stored", err == nil)
	if err != nil {
		l.log.Error("fork evidence not stored", "origin", k.Origin, "chain", k.Name, "err", err)
	}
}

// Forks returns the fork evidence stored for a mirrored chain, given by
// full origin, oldest first.
func (l *Ledger) Forks(ctx context.Context, chain string) ([]Fork, error) {
	k, err := l.chainKey(chain)
	if err != nil {
		return nil, err
	}
	var out []Fork
	err = l.store.View(ctx, func(tx store.ReadTx) error {
		return tx.Forks(k, func(f store.Fork) error {
			f.Held, f.Offered = bytes.Clone(f.Held), bytes.Clone(f.Offered)
			out = append(out, f)
			return nil
		})
	})
	return out, err
}

// openHead verifies the newest stored checkpoint of a chain at Open: with
// the key ring for a chain homed here; for a mirrored chain with
// Config.HomeKeys when it knows the home, else by parsing alone (Mirror
// verified it before storing it).
func (l *Ledger) openHead(m store.ChainMeta, note []byte) (*verify.Checkpoint, error) {
	origin := verify.OriginLine(m.Origin, m.Name)
	if m.Origin == l.cfg.ServerID {
		return l.ring.open(note, origin)
	}
	if l.cfg.HomeKeys != nil {
		if keys := l.cfg.HomeKeys(m.Origin); len(keys) > 0 {
			return verify.OpenCheckpointKeys(note, origin, keys...)
		}
	}
	text, _, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok {
		return nil, errors.New("not a signed note")
	}
	c, err := verify.ParseCheckpoint(string(text) + "\n")
	if err != nil {
		return nil, err
	}
	if c.Origin != origin {
		return nil, fmt.Errorf("checkpoint is for %q, want %q", c.Origin, origin)
	}
	return c, nil
}
