package main

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

// checkServerKey tells, in one line, when --server-key is not a key of the
// server whose ledger this is: neither the first identity key (from which
// the server-id is derived) nor one the keys chain rotates to. Without this
// check every checkpoint of every chain would fail, one fault line each,
// and bury what is wrong. A history that cannot be read is left to VerifyDB,
// which reports it as a fault.
func checkServerKey(ctx context.Context, st store.Store, pub ed25519.PublicKey) error {
	var serverID string
	var entries [][]byte
	err := st.View(ctx, func(tx store.ReadTx) error {
		var err error
		if serverID, err = tx.ServerID(); err != nil {
			return err
		}
		metas, err := tx.Chains()
		if err != nil {
			return err
		}
		for _, m := range metas {
			if m.Key() != (store.ChainKey{Origin: serverID, Name: verify.KeysChain}) {
				continue
			}
			return tx.Entries(m.Key(), 0, func(_ uint64, e []byte) (bool, error) {
				entries = append(entries, append([]byte(nil), e...))
				return true, nil
			})
		}
		return nil
	})
	if err != nil || serverID == "" || verify.ServerIDFromKey(pub) == serverID {
		return nil
	}
	history, err := verify.KeyHistory(serverID, entries)
	if err != nil {
		return nil
	}
	for _, k := range history {
		if k.Equal(pub) {
			return nil
		}
	}
	return &exitError{code: 1, err: fmt.Errorf("--server-key %s does not match server-id %s: it is neither its first identity key nor one its keys chain rotates to (`vcli id` prints the current key)",
		secure.Fingerprint(pub), serverID)}
}
