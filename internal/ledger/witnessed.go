package ledger

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// MaxCosignatures bounds the cosignature lines kept with one checkpoint: one
// per witness; a line of another witness's name replaces none of these.
const MaxCosignatures = 32

// signedSet is the committer's note to whoever submits checkpoints to
// witnesses: the chains homed here that have a new signed checkpoint since
// the last Take. Notify never blocks and coalesces: many commits before a
// Take are one entry per chain and one signal.
type signedSet struct {
	mu     sync.Mutex
	chains map[string]uint64 // chain -> newest signed size
	ch     chan struct{}     // capacity 1: "the set is not empty"
}

func newSignedSet() *signedSet {
	return &signedSet{chains: map[string]uint64{}, ch: make(chan struct{}, 1)}
}

func (s *signedSet) notify(chain string, size uint64) {
	s.mu.Lock()
	s.chains[chain] = size
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// Signed receives when chains homed here have a new signed checkpoint;
// TakeSigned then says which. Many commits may make one signal.
func (l *Ledger) Signed() <-chan struct{} { return l.signed.ch }

// TakeSigned returns, and forgets, the chains homed here signed since the
// last call, with the size of their newest checkpoint.
func (l *Ledger) TakeSigned() map[string]uint64 {
	s := l.signed
	s.mu.Lock()
	defer s.mu.Unlock()
	out := maps.Clone(s.chains)
	clear(s.chains)
	return out
}

// AddCosignature keeps a witness's cosignature line (docs/formats.md
// "Cosignatures") with the stored checkpoint of chain at size and marks
// that checkpoint kept. A line of the same key name replaces the one held;
// the caller has verified the line against the witness's pinned key.
func (l *Ledger) AddCosignature(ctx context.Context, chain string, size uint64, line string) error {
	name, ok := cosignatureName(line)
	if !ok {
		return wire.Errorf(wire.CodeInvalid, "not a signature line: %q", line)
	}
	var (
		key   store.ChainKey
		count int
	)
	err := l.updateCheckpoint(ctx, chain, size, func(cs *chainState, cp *store.StoredCheckpoint) error {
		key = cs.meta.Key()
		var lines [][]byte
		for l := range bytes.Lines(cp.Cosignatures) {
			if n, _ := cosignatureName(string(l)); n != name {
				lines = append(lines, l)
			}
		}
		if len(lines) >= MaxCosignatures {
			return wire.Errorf(wire.CodeLimit, "checkpoint %d of chain %q has %d cosignatures already", size, cs.meta.Name, len(lines))
		}
		lines = append(lines, []byte(line+"\n"))
		cp.Cosignatures = bytes.Join(lines, nil)
		count = len(lines)
		return nil
	})
	if err == nil {
		l.quorum.cosigned(key, size, count, l.cfg.WitnessQuorum)
	}
	return err
}

// quorumSizes remembers, per chain homed here, the size of the newest
// checkpoint holding at least Config.WitnessQuorum cosignatures, so that
// rproof finds it without reading every kept checkpoint: cosignatures are
// only ever added, so the newest such size only grows.
type quorumSizes struct {
	mu    sync.Mutex
	sizes map[store.ChainKey]uint64
}

func (q *quorumSizes) cosigned(k store.ChainKey, size uint64, count, quorum int) {
	if quorum <= 0 || count < quorum {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sizes == nil {
		q.sizes = map[store.ChainKey]uint64{}
	}
	if size > q.sizes[k] {
		q.sizes[k] = size
	}
}

func (q *quorumSizes) newest(k store.ChainKey) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sizes[k]
}

// loadQuorumSizes reads, once at Open, the newest checkpoint of each chain
// homed here that meets the quorum.
func (l *Ledger) loadQuorumSizes(ctx context.Context) error {
	if l.cfg.WitnessQuorum <= 0 {
		return nil
	}
	l.mu.RLock()
	keys := make([]store.ChainKey, 0, len(l.chains))
	for _, cs := range l.chains {
		keys = append(keys, cs.meta.Key())
	}
	l.mu.RUnlock()
	return l.store.View(ctx, func(tx store.ReadTx) error {
		for _, k := range keys {
			err := tx.Checkpoints(k, func(cp store.StoredCheckpoint) error {
				l.quorum.cosigned(k, cp.Size, bytes.Count(cp.Cosignatures, []byte("\n")), l.cfg.WitnessQuorum)
				return nil
			})
			if err != nil {
				return fmt.Errorf("chain %s: read kept checkpoints: %w", k.Name, err)
			}
		}
		return nil
	})
}

// cosignatureName is the key name of a signature line "— <name> <base64>".
func cosignatureName(line string) (string, bool) {
	rest, ok := bytes.CutPrefix([]byte(line), []byte("— "))
	if !ok {
		return "", false
	}
	name, sig, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(name) == 0 || len(bytes.TrimSpace(sig)) == 0 || bytes.ContainsAny(bytes.TrimSuffix(sig, []byte("\n")), " \n") {
		return "", false
	}
	return string(name), true
}

// withCosignatures returns note, the checkpoint of chain key k at size, with
// the cosignature lines stored with it appended: a signed note that C2SP
// verifiers (and ours, which ignore signatures of unknown keys) accept.
func withCosignatures(tx store.ReadTx, k store.ChainKey, size uint64, note []byte) ([]byte, error) {
	cp, ok, err := tx.Checkpoint(k, size)
	if err != nil || !ok || len(cp.Cosignatures) == 0 || !bytes.Equal(cp.Note, note) {
		return note, err
	}
	return append(bytes.Clone(note), cp.Cosignatures...), nil
}
