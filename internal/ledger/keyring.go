package ledger

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

// errNotNewestKey is the read-only reason of every chain when the ledger's
// signing key is not the one the rotation history ends with: a checkpoint it
// signed would be one nobody following the history could verify.
const errNotNewestKey = "identity key is not the newest key of the rotation history"

// keyring is the set of identity keys whose checkpoints the ledger accepts:
// the verified rotation history of the keys chain (DESIGN.md §2.4), or the
// current key alone while there is none. Checkpoints signed before a
// rotation stay valid after it.
type keyring struct {
	keys []ed25519.PublicKey // oldest first
	// fault, when not empty, says why the signer may not sign new
	// checkpoints: the history is broken or ends with another key.
	fault string
	// faultSeq is the keys chain entry the fault is about.
	faultSeq uint64
	// handReplaced: no rotation is recorded, yet the current key is not the
	// one the server-id was derived from. It explains checkpoints that do not
	// verify (or a rotation made before the ledger existed, which is fine).
	handReplaced bool
}

// open verifies a checkpoint note of origin against every key of the ring;
// the key ID on the note's signature line picks the one to check.
func (k *keyring) open(note []byte, origin string) (*verify.Checkpoint, error) {
	c, err := verify.OpenCheckpointKeys(note, origin, k.keys...)
	if err != nil && k.handReplaced {
		return nil, fmt.Errorf("%w (the identity key is not the server's first key and no key.rotate record leads to it)", err)
	}
	return c, err
}

// loadKeyring reads the keys chain (if the ledger has one) and builds the
// ring for a ledger whose checkpoints pub signs.
func loadKeyring(ctx context.Context, s store.Store, serverID string, pub ed25519.PublicKey, metas []store.ChainMeta) (*keyring, error) {
	var entries [][]byte
	var lastSeq uint64
	hasKeys := false
	for _, m := range metas {
		hasKeys = hasKeys || m.Name == verify.KeysChain
	}
	if hasKeys {
		k := store.ChainKey{Origin: serverID, Name: verify.KeysChain}
		err := s.View(ctx, func(tx store.ReadTx) error {
			return tx.Entries(k, 0, func(seq uint64, e []byte) (bool, error) {
				entries = append(entries, append([]byte(nil), e...))
				lastSeq = seq
				return true, nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("read the keys chain: %w", err)
		}
	}
	history, err := verify.KeyHistory(serverID, entries)
	switch {
	case err != nil:
		return &keyring{keys: []ed25519.PublicKey{pub}, fault: fmt.Sprintf("key rotation history: %v", err), faultSeq: lastSeq}, nil
	case history == nil:
		return &keyring{keys: []ed25519.PublicKey{pub}, handReplaced: verify.ServerIDFromKey(pub) != serverID}, nil
	}
	k := &keyring{keys: history}
	if !pub.Equal(history[len(history)-1]) {
		k.fault, k.faultSeq = errNotNewestKey, lastSeq
	}
	return k, nil
}

// faults reports the ring's fault, if any, as a fault of chain (the keys
// chain, whose history it is about): `rcheck keys` and `vserv verify` show it.
func (k *keyring) faults(chain string) []Fault {
	if k.fault == "" || chain != verify.KeysChain {
		return nil
	}
	return []Fault{{Chain: chain, Seq: k.faultSeq, What: "sig: " + k.fault}}
}
