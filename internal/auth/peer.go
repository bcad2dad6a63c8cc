package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/vserv/vserv/internal/secure"
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

// BindPeer makes the account name the peer account of a replication peer
// inside tx, the transaction that stores the peer (internal/replic): pinned
// to key, holding replicate on chains, without a second factor, its
// sessions ended. The account must exist (ERR notfound) with the user role
// (ERR invalid); one that is the peer account of another key already is
// ERR exists (one remote server, one key: the entries of several roles of
// one server may share it).
func (s *Store) BindPeer(tx store.WriteTx, name string, key ed25519.PublicKey, chains []string) error {
	if len(key) != ed25519.PublicKeySize {
		return wire.Errorf(wire.CodeInvalid, "peer key must be %d bytes", ed25519.PublicKeySize)
	}
	rec, err := loadAccount(tx, name)
	if err != nil {
		return err
	}
	if rec.Role != RoleUser {
		return wire.Errorf(wire.CodeInvalid, "peer accounts must have the user role; %q is an %s", rec.Name, rec.Role)
	}
	if rec.Peer && !bytes.Equal(rec.PeerKey, key) {
		return wire.Errorf(wire.CodeExists, "account %q is the peer account of another key", rec.Name)
	}
	for _, c := range chains {
		if err := checkChainName(c); err != nil {
			return err
		}
	}
	rec.Peer, rec.PeerKey = true, append([]byte(nil), key...)
	if err := tx.DeleteTwoFA(HomeName(rec.Name)); err != nil {
		return err
	}
	if err := bumpGeneration(tx, rec); err != nil {
		return err
	}
	if err := s.saveAccount(tx, rec); err != nil {
		return err
	}
	for _, c := range chains {
		if err := s.changeRightTx(tx, rec, c, RightReplicate, true); err != nil {
			return err
		}
	}
	return nil
}

// UnbindPeer revokes the replicate right on chains from the peer account
// name inside tx and ends its sessions; it stays a peer account (pinned,
// without a second factor), so that its password, which the remote server
// holds, never becomes an ordinary login. A missing account is no error:
// it may have been deleted since.
func (s *Store) UnbindPeer(tx store.WriteTx, name string, chains []string) error {
	rec, err := loadAccount(tx, name)
	if errors.Is(err, wire.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range chains {
		if err := s.changeRightTx(tx, rec, c, RightReplicate, false); err != nil {
			return err
		}
	}
	if err := bumpGeneration(tx, rec); err != nil {
		return err
	}
	return s.saveAccount(tx, rec)
}

// CheckPeerSig checks a pauth signature (docs/protocol.md §11): Ed25519 by
// the key pinned for the peer account name over
// secure.PeerAuthMessage(handshakeHash). A non-peer account is ERR perm;
// a bad signature, a disabled or vanished account is the fixed ERR auth of
// every login failure.
func (s *Store) CheckPeerSig(ctx context.Context, name string, handshakeHash, sig []byte) error {
	var key []byte
	var enabled bool
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		if !rec.Peer {
			return wire.Errorf(wire.CodePerm, "pauth is for peer accounts; %q signs in with its second factor", rec.Name)
		}
		key, enabled = append([]byte(nil), rec.PeerKey...), rec.Enabled
		return nil
	})
	if errors.Is(err, wire.ErrNotFound) {
		return authFailed()
	}
	if err != nil {
		return err
	}
	if !enabled || len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(key, secure.PeerAuthMessage(handshakeHash), sig) {
		return authFailed()
	}
	return nil
}

// SealPeerSecret seals a credential of the peer stored under key (the peer
// table's key, internal/replic) with secret.key, as TOTP secrets are: a
// leaked copy of ledger.db alone does not reveal it, and a sealed value
// copied to another peer's record does not open there.
func (s *Store) SealPeerSecret(key string, plain []byte) ([]byte, error) {
	return s.sealer.seal(plain, peerAD(key))
}

// OpenPeerSecret opens what SealPeerSecret sealed for the same key.
func (s *Store) OpenPeerSecret(key string, sealed []byte) ([]byte, error) {
	return s.sealer.open(sealed, peerAD(key))
}

func peerAD(key string) []byte { return []byte("vserv replic peer secret\x00" + key) }
