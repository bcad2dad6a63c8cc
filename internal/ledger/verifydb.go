package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/vserv/vserv/verify"
	bolt "go.etcd.io/bbolt"
)

// VerifyDB checks every chain in a ledger database offline (`vserv verify`):
// every entry, link, leaf hash, proof of work, record signature, Merkle node
// and root, and every stored checkpoint's signature and root (which,
// recomputed from the same leaves, proves the checkpoints consistent with
// each other). pub is the server's current identity key: checkpoints must be
// signed by it or, after identity rotations, by a key of the rotation history
// the keys chain proves, which must end with pub. progress, if not nil, is
// called as each chain advances.
// Faults are returned; the error is for failures to read at all.
func VerifyDB(ctx context.Context, db *bolt.DB, pub ed25519.PublicKey, progress func(chain string, done, total uint64)) ([]Fault, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("verify: public key must be 32 bytes")
	}
	s := NewBoltStore(db)
	var serverID string
	var metas []ChainMeta
	err := s.View(func(tx ReadTx) error {
		var err error
		if serverID, err = tx.ServerID(); err != nil {
			return err
		}
		metas, err = tx.Chains()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if serverID == "" {
		return nil, errors.New("verify: no ledger in this database")
	}
	ring, err := loadKeyring(s, serverID, pub, metas)
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
	}
	return faults, nil
}
