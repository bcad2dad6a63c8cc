package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

// VerifyDB checks every chain the store holds of its home (the chains of
// its server-id) offline (`vserv verify`):
// every entry, link, leaf hash, proof of work, record signature, Merkle node
// and root, every stored checkpoint's signature and root (which,
// recomputed from the same leaves, proves the checkpoints consistent with
// each other), and on a chain with a schema that the rules (§6) accept every
// recorded event and that the stored views equal a replay. pub is the server's current identity key: checkpoints must be
// signed by it or, after identity rotations, by a key of the rotation history
// the keys chain proves, which must end with pub. progress, if not nil, is
// called as each chain advances.
// Faults are returned; the error is for failures to read at all.
func VerifyDB(ctx context.Context, s store.Store, pub ed25519.PublicKey, progress func(chain string, done, total uint64)) ([]Fault, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("verify: public key must be 32 bytes")
	}
	serverID, metas, err := readLedgerHead(ctx, s)
	if err != nil {
		return nil, err
	}
	if serverID == "" {
		return nil, errors.New("verify: no ledger in this database")
	}
	ring, err := loadKeyring(ctx, s, serverID, pub, metas)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	faults := ring.faults(verify.KeysChain)
	for _, m := range metas {
		c := newChecker(s, m, serverID, ring, checkNames...)
		var p func(done, total uint64)
		if progress != nil {
			name := m.Name
			p = func(done, total uint64) { progress(name, done, total) }
		}
		if _, err := c.run(ctx, p); err != nil {
			return faults, fmt.Errorf("verify chain %q: %w", m.Name, err)
		}
		faults = append(faults, c.faults...)
		if m.Schema != "" {
			rf, err := verifyRules(ctx, s, m, serverID)
			if err != nil {
				return faults, fmt.Errorf("verify chain %q: rules: %w", m.Name, err)
			}
			faults = append(faults, rf...)
		}
	}
	return faults, nil
}

// Expected is a checkpoint held outside the database: a line of the heads
// file (Chain and Head), or a signed note (Note; a receipt's or a client's
// cached checkpoint), which must verify under the server's key history.
type Expected struct {
	Source string // named in the fault: a file name, "heads file"
	Note   []byte
	Chain  string
	Head   Head
}

// VerifyExpected checks that the database still holds every expected
// checkpoint: the chain exists, is at least that long, and its tree at that
// size has that root. A database that fails is a rollback (a restored or
// truncated copy), or a fork. Faults name the chain and, as Seq, the
// expected size.
func VerifyExpected(ctx context.Context, s store.Store, pub ed25519.PublicKey, exps []Expected) ([]Fault, error) {
	serverID, metas, err := readLedgerHead(ctx, s)
	if err != nil {
		return nil, err
	}
	ring, err := loadKeyring(ctx, s, serverID, pub, metas)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	have := map[string]bool{}
	for _, m := range metas {
		have[m.Name] = true
	}
	var faults []Fault
	for _, x := range exps {
		if err := ctx.Err(); err != nil {
			return faults, err
		}
		chain, h := x.Chain, x.Head
		if x.Note != nil {
			origin := verify.CheckpointOrigin(x.Note)
			id, name, _ := strings.Cut(strings.TrimPrefix(origin, "vserv/"), "/")
			if id != serverID || !verify.ValidChainName(name) {
				faults = append(faults, Fault{Chain: name, What: fmt.Sprintf("expect: %s: a checkpoint of %q, not of a chain of server %s", x.Source, origin, serverID)})
				continue
			}
			cp, err := ring.open(x.Note, origin)
			if err != nil {
				faults = append(faults, Fault{Chain: name, What: fmt.Sprintf("expect: %s: the checkpoint does not verify under the server's keys: %v", x.Source, err)})
				continue
			}
			chain, h = name, Head{Size: cp.Size, Root: cp.Root}
		}
		if !have[chain] {
			faults = append(faults, Fault{Chain: chain, Seq: h.Size, What: "rollback: " + x.Source + ": " + lostChainText(chain, h)})
			continue
		}
		var why string
		k := store.ChainKey{Origin: serverID, Name: chain}
		err := s.View(ctx, func(tx store.ReadTx) error {
			size, err := tx.Size(k)
			if err != nil {
				return err
			}
			rootAt := func(n uint64) ([32]byte, error) {
				rng, err := loadRange(tx, k, n)
				if err != nil {
					return [32]byte{}, err
				}
				return rootOf(rng)
			}
			root, err := rootAt(size)
			if err != nil {
				why = fmt.Sprintf("chain %s: cannot compute the database's root: %v", chain, err)
				return nil
			}
			why = compareHead(chain, size, root, h, rootAt)
			return nil
		})
		if err != nil {
			return faults, fmt.Errorf("verify chain %q: %w", chain, err)
		}
		if why != "" {
			faults = append(faults, Fault{Chain: chain, Seq: h.Size, What: "rollback: " + x.Source + ": " + why})
		}
	}
	return faults, nil
}

// readLedgerHead reads what both offline checks start from: the server-id
// and the chains homed there.
func readLedgerHead(ctx context.Context, s store.Store) (serverID string, metas []store.ChainMeta, err error) {
	err = s.View(ctx, func(tx store.ReadTx) error {
		serverID, err = tx.ServerID()
		return err
	})
	if err == nil {
		metas, _, err = ownChains(ctx, s, serverID) // mirrored chains: not checked offline yet
	}
	if err != nil {
		return "", nil, fmt.Errorf("verify: %w", err)
	}
	return serverID, metas, nil
}
