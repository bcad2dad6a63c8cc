package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// Store is the account database. Its methods are safe for concurrent use;
// each one is a single transaction of the storage layer (password hashing
// happens outside it, so a slow hash never holds a write transaction). The
// account tables' keys are HomeName(name) (and chain names in the rights
// table); values are CBOR (wire.Marshal).
type Store struct {
	st     store.Store
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	hasher *hasher
	sealer *sealer
	gens   *genCache
	// dummyHash is verified for unknown names, with the same parameters as
	// real hashes, so that the reply time does not reveal which names exist.
	dummyHash string
}

// New keeps the accounts in st, whose backend has created the account
// tables. It computes one password hash (the dummy for unknown names), so it
// takes as long as a login.
func New(st store.Store, opts Options) (*Store, error) {
	if opts.Argon == (Argon2Params{}) {
		opts.Argon = DefaultArgon2
	}
	if opts.Argon.Time == 0 || opts.Argon.Threads == 0 || opts.Argon.MemoryKiB < 8*uint32(opts.Argon.Threads) {
		return nil, fmt.Errorf("auth: invalid argon2id parameters %+v", opts.Argon)
	}
	sealer, err := newSealer(opts.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s := &Store{st: st, opts: opts, now: opts.Now, log: opts.Logger, hasher: newHasher(opts.Argon), sealer: sealer, gens: newGenCache()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.hasher.log = s.log
	if opts.Production && opts.Argon.weaker(DefaultArgon2) {
		// Refusing would leave production-mode rules untestable at test
		// costs; keeping TestArgon2 out of production is the server's flag
		// handling's job, and this makes a slip visible.
		s.log.Warn("argon2id costs below the design's t=3 m=64MiB p=2 in production mode", "params", opts.Argon)
	}
	if s.dummyHash, err = s.hasher.hash(context.Background(), "vserv dummy password for unknown names"); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return s, nil
}

// accountRecord is an account as stored in auth.accounts.
type accountRecord struct {
	Name    string `cbor:"name"` // as created; the key is its HomeName
	Role    Role   `cbor:"role"`
	Enabled bool   `cbor:"enabled"`
	Initial bool   `cbor:"initial"`
	Peer    bool   `cbor:"peer"`
	PeerKey []byte `cbor:"peerkey,omitempty"`
	Created int64  `cbor:"created"` // Unix nanoseconds
	Hash    string `cbor:"hash"`    // argon2id PHC string
	Gen     uint64 `cbor:"gen"`
}

// twofaRecord is an account's second factor as stored in auth.twofa. It
// exists only while there is something in it.
type twofaRecord struct {
	Secret   []byte   `cbor:"secret,omitempty"`   // sealed TOTP secret; empty: no active factor
	Recovery [][]byte `cbor:"recovery,omitempty"` // SHA-256 of each unused recovery code
	LastStep uint64   `cbor:"laststep,omitempty"` // last accepted TOTP time step

	PendingSecret   []byte   `cbor:"psecret,omitempty"` // enrollment awaiting its first code
	PendingRecovery [][]byte `cbor:"precovery,omitempty"`

	Failures    uint32 `cbor:"failures,omitempty"` // consecutive second-factor failures
	LockedUntil int64  `cbor:"locked,omitempty"`   // Unix nanoseconds

	EnrollHash    []byte `cbor:"ehash,omitempty"` // SHA-256 of the enrollment code
	EnrollExpires int64  `cbor:"eexp,omitempty"`  // Unix nanoseconds
}

func (r *twofaRecord) empty() bool {
	return len(r.Secret) == 0 && len(r.PendingSecret) == 0 && r.LockedUntil == 0 && len(r.EnrollHash) == 0
}

// decodeRecord decodes a stored value into v; found is false when there is
// none. The value is copied first: the store's bytes are valid only inside
// the transaction.
func decodeRecord(data []byte, what string, v any) (found bool, err error) {
	if data == nil {
		return false, nil
	}
	if err := wire.Unmarshal(append([]byte(nil), data...), v); err != nil {
		return true, fmt.Errorf("decode %s: %w", what, err)
	}
	return true, nil
}

func encodeRecord(what string, v any) ([]byte, error) {
	data, err := wire.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	return data, nil
}

// loadAccount returns the record of a valid name, or ERR invalid / notfound.
func loadAccount(tx store.ReadTx, name string) (*accountRecord, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	home := HomeName(name)
	data, err := tx.Account(home)
	if err != nil {
		return nil, fmt.Errorf("read account %q: %w", home, err)
	}
	var rec accountRecord
	if found, err := decodeRecord(data, "account "+home, &rec); err != nil {
		return nil, err
	} else if !found {
		return nil, wire.Errorf(wire.CodeNotFound, "no account %q", name)
	}
	return &rec, nil
}

// saveAccount writes an account record; once the write commits, the
// generation cache forgets the account.
func (s *Store) saveAccount(tx store.WriteTx, rec *accountRecord) error {
	home := HomeName(rec.Name)
	data, err := encodeRecord("account "+home, rec)
	if err != nil {
		return err
	}
	tx.OnCommit(func() { s.gens.forget(home) })
	return tx.PutAccount(home, data)
}

// bumpGeneration gives rec a new generation number, ending its sessions.
func bumpGeneration(tx store.WriteTx, rec *accountRecord) error {
	gen, err := tx.NextGeneration()
	if err != nil {
		return fmt.Errorf("account generation: %w", err)
	}
	rec.Gen = gen
	return nil
}

func loadTwoFA(tx store.ReadTx, home string) (*twofaRecord, error) {
	data, err := tx.TwoFA(home)
	if err != nil {
		return nil, fmt.Errorf("read second factor of %q: %w", home, err)
	}
	var rec twofaRecord
	if _, err := decodeRecord(data, "second factor of "+home, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

func saveTwoFA(tx store.WriteTx, home string, rec *twofaRecord) error {
	if rec.empty() {
		return tx.DeleteTwoFA(home)
	}
	data, err := encodeRecord("second factor of "+home, rec)
	if err != nil {
		return err
	}
	return tx.PutTwoFA(home, data)
}
