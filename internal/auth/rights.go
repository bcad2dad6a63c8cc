package auth

import (
	"bytes"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

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

// rightsKey is the auth.rights key of (account, chain); the NUL cannot occur
// in either name, so an account's keys are exactly those with its prefix.
func rightsKey(home, chain string) string { return home + "\x00" + chain }

// Grant gives an account a right on a chain (idempotent). In production
// mode a new write right ends the sessions of an account without an active
// second factor (owesFactorNow).
func (s *Store) Grant(name, chain string, right Right) error {
	return s.changeRight(name, chain, right, true)
}

// Revoke takes a right away (idempotent: revoking a right not held is not an
// error). It does not affect what the admin role implies.
func (s *Store) Revoke(name, chain string, right Right) error {
	return s.changeRight(name, chain, right, false)
}

func (s *Store) changeRight(name, chain string, right Right, grant bool) error {
	if err := checkRight(right); err != nil {
		return err
	}
	if err := checkChainName(chain); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketRights)
		key := rightsKey(HomeName(name), chain)
		var held []Right
		if _, err := getRecord(b, key, &held); err != nil {
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
			return b.Delete([]byte(key))
		}
		return putRecord(b, key, held)
	})
}

// owesFactorNow ends the sessions of an account that a write grant makes owe
// a second factor it does not have: in production mode an account with a
// write right must pass one at login (DESIGN.md §2.5), and a session that
// logged in without one, when it had no such right, must not keep writing.
// Admins always owe one and peers sign in with their key, so neither
// changes.
func (s *Store) owesFactorNow(tx *bbolt.Tx, rec *accountRecord) error {
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

// HasRight reports whether an account may exercise right on chain: admins
// hold every right (the server itself refuses writes to the server-written
// chains), disabled accounts none.
func (s *Store) HasRight(name, chain string, right Right) (bool, error) {
	if err := checkRight(right); err != nil {
		return false, err
	}
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		rec, err := loadAccount(tx, name)
		if err != nil || !rec.Enabled {
			return err
		}
		if rec.Role == RoleAdmin {
			ok = true
			return nil
		}
		var held []Right
		if _, err := getRecord(tx.Bucket(bucketRights), rightsKey(HomeName(name), chain), &held); err != nil {
			return err
		}
		ok = slices.Contains(held, right)
		return nil
	})
	return ok, err
}

// Rights returns the rights granted to an account, by chain, each list
// sorted. It lists grants only: an admin's implied rights are not expanded.
func (s *Store) Rights(name string) (map[string][]Right, error) {
	out := map[string][]Right{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if _, err := loadAccount(tx, name); err != nil {
			return err
		}
		prefix := []byte(rightsKey(HomeName(name), ""))
		c := tx.Bucket(bucketRights).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var held []Right
			if err := wire.Unmarshal(bytes.Clone(v), &held); err != nil {
				return fmt.Errorf("decode rights %q: %w", k, err)
			}
			out[string(k[len(prefix):])] = held
		}
		return nil
	})
	return out, err
}

// deleteRights removes every right of an account.
func deleteRights(tx *bbolt.Tx, home string) error {
	prefix := []byte(rightsKey(home, ""))
	c := tx.Bucket(bucketRights).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return fmt.Errorf("delete rights %q: %w", k, err)
		}
	}
	return nil
}
