package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/wire"
)

// Buckets of this package in the shared bbolt file. Keys are HomeName(name)
// (plus "\x00"+chain in the rights bucket); values are CBOR (wire.Marshal).
var (
	bucketAccounts = []byte("auth.accounts")
	bucketRights   = []byte("auth.rights")
	bucketTwoFA    = []byte("auth.twofa")
)

// Store is the account database. Its methods are safe for concurrent use;
// each one is a single bbolt transaction (password hashing happens outside
// it, so a slow hash never holds the file's one write lock).
type Store struct {
	db     *bbolt.DB
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

// New opens the account database in db, creating its buckets. It computes
// one password hash (the dummy for unknown names), so it takes as long as a
// login.
func New(db *bbolt.DB, opts Options) (*Store, error) {
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
	s := &Store{db: db, opts: opts, now: opts.Now, log: opts.Logger, hasher: newHasher(opts.Argon), sealer: sealer, gens: newGenCache()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Production && opts.Argon.weaker(DefaultArgon2) {
		// Refusing would leave production-mode rules untestable at test
		// costs; keeping TestArgon2 out of production is the server's flag
		// handling's job, and this makes a slip visible.
		s.log.Warn("argon2id costs below the design's t=3 m=64MiB p=2 in production mode", "params", opts.Argon)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketAccounts, bucketRights, bucketTwoFA} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
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

// getRecord decodes the value at key into v; found is false when there is
// none.
func getRecord(b *bbolt.Bucket, key string, v any) (found bool, err error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	// Copy: bbolt's bytes are valid only inside the transaction.
	if err := wire.Unmarshal(append([]byte(nil), data...), v); err != nil {
		return true, fmt.Errorf("decode record %q: %w", key, err)
	}
	return true, nil
}

func putRecord(b *bbolt.Bucket, key string, v any) error {
	data, err := wire.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), data)
}

// loadAccount returns the record of a valid name, or ERR invalid / notfound.
func loadAccount(tx *bbolt.Tx, name string) (*accountRecord, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	var rec accountRecord
	found, err := getRecord(tx.Bucket(bucketAccounts), HomeName(name), &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, wire.Errorf(wire.CodeNotFound, "no account %q", name)
	}
	return &rec, nil
}

// saveAccount writes an account record; once the write commits, the
// generation cache forgets the account.
func (s *Store) saveAccount(tx *bbolt.Tx, rec *accountRecord) error {
	home := HomeName(rec.Name)
	tx.OnCommit(func() { s.gens.forget(home) })
	return putRecord(tx.Bucket(bucketAccounts), home, rec)
}

// bumpGeneration gives rec a new generation number, ending its sessions.
func bumpGeneration(tx *bbolt.Tx, rec *accountRecord) error {
	gen, err := tx.Bucket(bucketAccounts).NextSequence()
	if err != nil {
		return fmt.Errorf("account generation: %w", err)
	}
	rec.Gen = gen
	return nil
}

func loadTwoFA(tx *bbolt.Tx, home string) (*twofaRecord, error) {
	var rec twofaRecord
	if _, err := getRecord(tx.Bucket(bucketTwoFA), home, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

func saveTwoFA(tx *bbolt.Tx, home string, rec *twofaRecord) error {
	b := tx.Bucket(bucketTwoFA)
	if rec.empty() {
		return b.Delete([]byte(home))
	}
	return putRecord(b, home, rec)
}
