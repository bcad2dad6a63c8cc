package auth

import (
	"context"
	"crypto/ed25519"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// SetPeerKey makes a user account a replication peer that signs in with
// this Ed25519 key (pauth, DESIGN.md §3.5), or, with a nil key, an ordinary
// account again. Either way its sessions end. Peers never hold the admin
// role and have no TOTP.
func (s *Store) SetPeerKey(ctx context.Context, name string, key ed25519.PublicKey) error {
	if key != nil && len(key) != ed25519.PublicKeySize {
		return wire.Errorf(wire.CodeInvalid, "peer key must be %d bytes", ed25519.PublicKeySize)
	}
	return s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		if rec.Role != RoleUser {
			return wire.Errorf(wire.CodeInvalid, "peer accounts must have the user role")
		}
		rec.Peer, rec.PeerKey = key != nil, append([]byte(nil), key...)
		if key != nil {
			if err := tx.DeleteTwoFA(HomeName(name)); err != nil {
				return err
			}
		}
		if err := bumpGeneration(tx, rec); err != nil {
			return err
		}
		return s.saveAccount(tx, rec)
	})
}

// PeerKey returns a peer account's key (ERR notfound if the account does not
// exist or is not a peer).
func (s *Store) PeerKey(ctx context.Context, name string) (ed25519.PublicKey, error) {
	var key ed25519.PublicKey
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		if !rec.Peer {
			return wire.Errorf(wire.CodeNotFound, "%q is not a peer account", rec.Name)
		}
		key = append(ed25519.PublicKey(nil), rec.PeerKey...)
		return nil
	})
	return key, err
}

func errPeerNoTOTP(name string) error {
	return wire.Errorf(wire.CodePerm, "peer account %q has no second factor", name)
}
