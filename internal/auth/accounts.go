package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// Role is an account's role. Admins hold every right (DESIGN.md §3).
type Role string

// The roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

func (r Role) valid() bool { return r == RoleUser || r == RoleAdmin }

// Account is what callers see of an account.
type Account struct {
	Name    string // as created (HomeName gives the key and home directory)
	Role    Role
	Enabled bool
	Has2FA  bool // an active (confirmed) second factor
	Initial bool // the admin made by CreateInitial; cannot be deleted
	Peer    bool // a replication peer (SetPeerKey)
	Created time.Time
	// Generation changes whenever the account's sessions must end; see the
	// package comment.
	Generation uint64
}

func (r *accountRecord) account(has2FA bool) *Account {
	return &Account{
		Name: r.Name, Role: r.Role, Enabled: r.Enabled, Has2FA: has2FA,
		Initial: r.Initial, Peer: r.Peer, Created: time.Unix(0, r.Created).UTC(),
		Generation: r.Gen,
	}
}

func has2FA(tx store.ReadTx, home string) (bool, error) {
	tf, err := loadTwoFA(tx, home)
	if err != nil {
		return false, err
	}
	return len(tf.Secret) > 0, nil
}

// Count returns the number of accounts.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		var err error
		n, err = tx.AccountCount()
		return err
	})
	return n, err
}

// CreateInitial creates the first account, an admin, and only while no
// account exists (ERR state otherwise); the check and the insert are one
// transaction, so two concurrent calls cannot both succeed.
func (s *Store) CreateInitial(ctx context.Context, name, pass string) (*Account, error) {
	if n, err := s.Count(ctx); err != nil || n > 0 { // cheap early refusal before hashing
		if err == nil {
			err = errAccountsExist
		}
		return nil, err
	}
	return s.create(ctx, name, pass, RoleAdmin, true)
}

var errAccountsExist = wire.Errorf(wire.CodeState, "accounts already exist")

// Add creates an account (ERR exists when the name is taken in any case).
// In developer mode a weak password is accepted with a logged warning.
func (s *Store) Add(ctx context.Context, name, pass string, role Role) (*Account, error) {
	return s.create(ctx, name, pass, role, false)
}

func (s *Store) create(ctx context.Context, name, pass string, role Role, initial bool) (*Account, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if !role.valid() {
		return nil, wire.Errorf(wire.CodeInvalid, "invalid role %q: use user or admin", role)
	}
	weak, err := checkPassword(pass, s.opts.Production)
	if err != nil {
		return nil, err
	}
	if _, err := s.Get(ctx, name); err == nil {
		return nil, errExists(name) // early refusal before hashing; rechecked below
	}
	hash, err := s.hasher.hash(ctx, pass)
	if err != nil {
		return nil, err
	}
	rec := &accountRecord{
		Name: name, Role: role, Enabled: true, Initial: initial,
		Created: s.now().UnixNano(), Hash: hash,
	}
	err = s.st.Update(ctx, func(tx store.WriteTx) error {
		if initial {
			if n, err := tx.AccountCount(); err != nil || n > 0 {
				return orErr(err, errAccountsExist)
			}
		}
		if data, err := tx.Account(HomeName(name)); err != nil || data != nil {
			return orErr(err, errExists(name))
		}
		// Rights or 2FA left by an account of the same name deleted by an
		// older version would otherwise pass to the new one.
		if err := deleteAccountData(tx, HomeName(name)); err != nil {
			return err
		}
		if err := bumpGeneration(tx, rec); err != nil {
			return err
		}
		return s.saveAccount(tx, rec)
	})
	if err != nil {
		return nil, err
	}
	if weak {
		s.log.Warn("account created with a weak password (refused in production mode)", "account", name)
	}
	return rec.account(false), nil
}

func errExists(name string) error {
	return wire.Errorf(wire.CodeExists, "account %q exists (names are unique ignoring case)", name)
}

// Get returns an account (ERR invalid for a malformed name, ERR notfound).
func (s *Store) Get(ctx context.Context, name string) (*Account, error) {
	var acct *Account
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		has, err := has2FA(tx, HomeName(name))
		acct = rec.account(has)
		return err
	})
	return acct, err
}

// Generation returns the account's current generation (ERR notfound once it
// is deleted). A session whose login generation differs must end.
//
// The server calls it before every command of a logged-in connection, so it
// answers from a cache kept coherent with the database (genCache), and
// otherwise decodes only the generation, straight from the store's bytes
// (nothing of them is kept past the transaction).
func (s *Store) Generation(ctx context.Context, name string) (uint64, error) {
	if err := ValidName(name); err != nil {
		return 0, err
	}
	home := HomeName(name)
	gen, epoch, ok := s.gens.get(home)
	if ok {
		return gen, nil
	}
	var rec struct {
		Gen uint64 `cbor:"gen"`
	}
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		data, err := tx.Account(home)
		if err != nil {
			return fmt.Errorf("read account %q: %w", home, err)
		}
		if data == nil {
			return wire.Errorf(wire.CodeNotFound, "no account %q", name)
		}
		if err := wire.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("decode account %q: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.gens.fill(home, rec.Gen, epoch)
	return rec.Gen, nil
}

// List filters: "" and "all" list every account.
const (
	ListAll      = "all"
	ListUsers    = "user"
	ListAdmins   = "admin"
	ListDisabled = "disabled"
)

// List returns the accounts that pass filter ("user", "admin", "disabled",
// "all" or ""; anything else is ERR invalid), ordered by HomeName.
func (s *Store) List(ctx context.Context, filter string) ([]Account, error) {
	keep := map[string]func(*accountRecord) bool{
		"":           func(*accountRecord) bool { return true },
		ListAll:      func(*accountRecord) bool { return true },
		ListUsers:    func(r *accountRecord) bool { return r.Role == RoleUser },
		ListAdmins:   func(r *accountRecord) bool { return r.Role == RoleAdmin },
		ListDisabled: func(r *accountRecord) bool { return !r.Enabled },
	}[filter]
	if keep == nil {
		return nil, wire.Errorf(wire.CodeInvalid, "invalid filter %q: use user, admin, disabled or all", filter)
	}
	list := []Account{}
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		return forEachAccount(tx, func(rec *accountRecord) error {
			if !keep(rec) {
				return nil
			}
			has, err := has2FA(tx, HomeName(rec.Name))
			list = append(list, *rec.account(has))
			return err
		})
	})
	return list, err
}

func forEachAccount(tx store.ReadTx, fn func(*accountRecord) error) error {
	return tx.Accounts(func(home string, v []byte) error {
		var rec accountRecord
		if _, err := decodeRecord(v, "account "+home, &rec); err != nil {
			return err
		}
		return fn(&rec)
	})
}

// countAdmins counts admin accounts, or only enabled ones.
func countAdmins(tx store.ReadTx, enabledOnly bool) (int, error) {
	n := 0
	err := forEachAccount(tx, func(r *accountRecord) error {
		if r.Role == RoleAdmin && (r.Enabled || !enabledOnly) {
			n++
		}
		return nil
	})
	return n, err
}

// Delete removes an account with its rights and second factor. The initial
// admin and the last enabled admin cannot be deleted (ERR perm), so the
// server is never left without someone to administer it.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		if rec.Initial {
			return wire.Errorf(wire.CodePerm, "the initial admin %q cannot be deleted", rec.Name)
		}
		if rec.Role == RoleAdmin {
			// Count enabled admins: deleting the last enabled one would leave
			// only disabled admins, and nobody able to enable them again.
			n, err := countAdmins(tx, true)
			if rec.Enabled {
				n--
			}
			if err != nil || n < 1 {
				return orErr(err, wire.Errorf(wire.CodePerm, "%q is the last enabled admin", rec.Name))
			}
		}
		home := HomeName(name)
		if err := deleteAccountData(tx, home); err != nil {
			return err
		}
		tx.OnCommit(func() { s.gens.forget(home) })
		return tx.DeleteAccount(home)
	})
}

// deleteAccountData removes an account's rights and second factor.
func deleteAccountData(tx store.WriteTx, home string) error {
	if err := tx.DeleteRights(home); err != nil {
		return fmt.Errorf("delete rights of %q: %w", home, err)
	}
	return tx.DeleteTwoFA(home)
}

func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// SetEnabled enables or disables an account. Disabling the last enabled
// admin is ERR perm; disabling ends the account's sessions.
func (s *Store) SetEnabled(ctx context.Context, name string, enabled bool) error {
	return s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil || rec.Enabled == enabled {
			return err
		}
		if !enabled && rec.Role == RoleAdmin {
			if n, err := countAdmins(tx, true); err != nil || n <= 1 {
				return orErr(err, wire.Errorf(wire.CodePerm, "%q is the last enabled admin", rec.Name))
			}
		}
		rec.Enabled = enabled
		if !enabled {
			if err := bumpGeneration(tx, rec); err != nil {
				return err
			}
		}
		return s.saveAccount(tx, rec)
	})
}

// SetPassword replaces an account's password and ends its sessions. It
// returns the account's new generation, which a session that changed its
// own password adopts to stay logged in. The caller checks the old password
// (CheckPassword) when a user changes their own.
func (s *Store) SetPassword(ctx context.Context, name, newPass string) (gen uint64, err error) {
	weak, err := checkPassword(newPass, s.opts.Production)
	if err != nil {
		return 0, err
	}
	if _, err := s.Get(ctx, name); err != nil {
		return 0, err
	}
	hash, err := s.hasher.hash(ctx, newPass)
	if err != nil {
		return 0, err
	}
	err = s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		rec.Hash = hash
		if err := bumpGeneration(tx, rec); err != nil {
			return err
		}
		gen = rec.Gen
		return s.saveAccount(tx, rec)
	})
	if err != nil {
		return 0, err
	}
	if weak {
		s.log.Warn("weak password set (refused in production mode)", "account", name)
	}
	return gen, nil
}

// CheckPassword verifies a login. Unknown names, malformed names or
// passwords, wrong passwords and disabled accounts all return exactly
// wire.Errorf(wire.CodeAuth, wire.AuthFailedText) after the same argon2id
// work, so neither the reply nor its timing tells them apart, and so does an
// account that changed generation while its hash was computed. It waits for
// a hashing slot (at most 2 run at once) or ctx, and answers ERR limit when
// too many logins wait already; other errors are internal.
func (s *Store) CheckPassword(ctx context.Context, name, pass string) (*Account, error) {
	var rec *accountRecord
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		r, err := loadAccount(tx, name)
		if err == nil {
			rec = r
		} // unknown or malformed: verified against the dummy below
		return nil
	})
	if err != nil {
		return nil, err
	}
	hash := s.dummyHash
	if rec != nil {
		hash = rec.Hash
	}
	ok, err := s.hasher.verify(ctx, hash, pass)
	if err != nil {
		return nil, err
	}
	if rec == nil || !ok || !rec.Enabled {
		return nil, authFailed()
	}
	// The hash took a while, perhaps waiting for a slot: a password change,
	// disable, deletion or 2FA reset committed meanwhile must win, so the
	// account is read again and must still be the one whose hash matched.
	now, err := s.Get(ctx, name)
	if err != nil || now.Generation != rec.Gen || !now.Enabled {
		return nil, authFailed()
	}
	return now, nil
}

// authFailed is the one error of every failed login step.
func authFailed() error { return wire.Errorf(wire.CodeAuth, wire.AuthFailedText) }
