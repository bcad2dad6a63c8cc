package auth

import (
	"context"
	"fmt"
	"slices"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// Right is a per-chain right (DESIGN.md §3.2 grant/revoke).
type Right string

// The rights.
const (
	RightRead      Right = "read"
	RightWrite     Right = "write"
	RightReplicate Right = "replicate"
	// RightManage is the right to append the authority events of a chain
	// with a schema (DESIGN.md §6.1).
	RightManage Right = "manage"
)

func checkRight(r Right) error {
	switch r {
	case RightRead, RightWrite, RightReplicate, RightManage:
		return nil
	}
	return wire.Errorf(wire.CodeInvalid, "invalid right %q: use read, write, manage or replicate", r)
}

// checkChainName applies the chain name rule of DESIGN.md §4.1,
// [a-z0-9][a-z0-9_-]{0,63}. Rights may be granted on a chain that does not
// exist yet (the ledger is not consulted), so the name is all there is to
// check.
func checkChainName(chain string) error {
	ok := chain != "" && len(chain) <= 64
	for i := 0; ok && i < len(chain); i++ {
		c := chain[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '_' || c == '-')
	}
	if !ok {
		return wire.Errorf(wire.CodeInvalid, "invalid chain name %q", chain)
	}
	return nil
}

// Grant gives an account a right on a chain (idempotent). In production
// mode a new write right ends the sessions of an account without an active
// second factor (owesFactorNow).
func (s *Store) Grant(ctx context.Context, name, chain string, right Right) error {
	return s.changeRight(ctx, name, chain, right, true)
}

// Revoke takes a right away (idempotent: revoking a right not held is not an
// error). It does not affect what the admin role implies.
func (s *Store) Revoke(ctx context.Context, name, chain string, right Right) error {
	return s.changeRight(ctx, name, chain, right, false)
}

func (s *Store) changeRight(ctx context.Context, name, chain string, right Right, grant bool) error {
	if err := checkRight(right); err != nil {
		return err
	}
	if err := checkChainName(chain); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		return s.changeRightTx(tx, rec, chain, right, grant)
	})
}

// changeRightTx grants or revokes right on chain for rec inside tx.
func (s *Store) changeRightTx(tx store.WriteTx, rec *accountRecord, chain string, right Right, grant bool) error {
	home := HomeName(rec.Name)
	held, err := loadRights(tx, home, chain)
	if err != nil {
		return err
	}
	has := slices.Contains(held, right)
	switch {
	case grant && !has:
		held = append(held, right)
		slices.Sort(held)
	case !grant && has:
		held = slices.DeleteFunc(held, func(r Right) bool { return r == right })
	default:
		return nil
	}
	if grant && right == RightWrite {
		if err := s.owesFactorNow(tx, rec); err != nil {
			return err
		}
	}
	if len(held) == 0 {
		return tx.DeleteRight(home, chain)
	}
	data, err := encodeRecord("rights of "+home+" on "+chain, held)
	if err != nil {
		return err
	}
	return tx.PutRight(home, chain, data)
}

// loadRights returns the rights an account holds on chain, nil for none.
func loadRights(tx store.ReadTx, home, chain string) ([]Right, error) {
	data, err := tx.Right(home, chain)
	if err != nil {
		return nil, fmt.Errorf("read rights of %q on %q: %w", home, chain, err)
	}
	var held []Right
	if _, err := decodeRecord(data, "rights of "+home+" on "+chain, &held); err != nil {
		return nil, err
	}
	return held, nil
}

// owesFactorNow ends the sessions of an account that a write grant makes owe
// a second factor it does not have: in production mode an account with a
// write right must pass one at login (DESIGN.md §2.5), and a session that
// logged in without one, when it had no such right, must not keep writing.
// Admins always owe one and peers sign in with their key, so neither
// changes.
func (s *Store) owesFactorNow(tx store.WriteTx, rec *accountRecord) error {
	if !s.opts.Production || rec.Role == RoleAdmin || rec.Peer {
		return nil
	}
	has, err := has2FA(tx, HomeName(rec.Name))
	if err != nil || has {
		return err
	}
	if err := bumpGeneration(tx, rec); err != nil {
		return err
	}
	return s.saveAccount(tx, rec)
}

// HasRight reports whether an account may exercise right on chain, by the
// rule of Access: admins hold every right (the server itself refuses writes
// to the server-written chains), disabled or missing accounts none. The
// ledger commands ask Access, which also decides visibility.
func (s *Store) HasRight(ctx context.Context, name, chain string, right Right) (bool, error) {
	if err := checkRight(right); err != nil {
		return false, err
	}
	var g Grant
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		var err error
		g.Admin, g.Held, err = loadGrant(tx, name, chain)
		return err
	})
	return g.Has(right), err
}

// Rights returns the rights granted to an account, by chain, each list
// sorted. It lists grants only: an admin's implied rights are not expanded.
func (s *Store) Rights(ctx context.Context, name string) (map[string][]Right, error) {
	out := map[string][]Right{}
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		if _, err := loadAccount(tx, name); err != nil {
			return err
		}
		home := HomeName(name)
		return tx.Rights(home, func(chain string, v []byte) error {
			var held []Right
			if _, err := decodeRecord(v, "rights of "+home+" on "+chain, &held); err != nil {
				return err
			}
			out[chain] = held
			return nil
		})
	})
	return out, err
}
