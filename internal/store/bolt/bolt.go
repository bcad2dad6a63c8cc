// Package bolt is the embedded storage backend: everything in the one bbolt
// file ledger.db. It implements store.Store and runs store/storetest.
//
// Layout 2 (this release). Bucket names start with the package that owns
// the data, because the file is shared:
//
//	ledger.meta                        "server-id" → text; "layout" → 8 BE (2)
//	ledger.chains                      <origin>/<name> → CBOR store.ChainMeta
//	ledger.origin.<origin>             the chains homed at server-id <origin>:
//	  ledger.chain.<name>/entries      seq (8 BE) → entry bytes
//	  ledger.chain.<name>/ids          record id (16) → seq (8 BE) ‖ record hash (32)
//	  ledger.chain.<name>/times        ms (8 BE) ‖ seq (8 BE) → record id (16)
//	  ledger.chain.<name>/nodes        postorder number (8 BE) → 32-byte hash
//	  ledger.chain.<name>/checkpoints  size (8 BE) → keep flags (1) ‖ note
//	  ledger.chain.<name>/state        the rules' state of a schema chain (apps.KV keys)
//	  ledger.chain.<name> "state-size" → size (8 BE) the state reflects
//	ledger.forks                       <origin>/<name> → (seq (8 BE) → CBOR fork evidence, forks.go)
//	auth.accounts                      home → account record; its sequence numbers the generations
//	auth.rights                        home 0x00 chain → rights
//	auth.twofa                         home → second-factor state
//	replic.witness, replic.witness.forks  the witness state (witness.go), created by its first write
//	replic.peers                       role 0x00 peer → peer record (internal/replic's encoding)
//
// Layout 1 (releases before) had no "layout" key, keyed ledger.chains by
// name alone and kept each ledger.chain.<name> at the top level. Open
// migrates it (migrate.go); the chain buckets keep their names so that the
// migration moves them without copying a single entry.
//
// entries, times and nodes only ever grow at their end, so they are written
// with FillPercent 1.0.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
)

var (
	bucketMeta     = []byte("ledger.meta")
	bucketChains   = []byte("ledger.chains")
	keyServerID    = []byte("server-id")
	keyLayout      = []byte("layout")
	subEntries     = []byte("entries")
	subIDs         = []byte("ids")
	subTimes       = []byte("times")
	subNodes       = []byte("nodes")
	subCheckpoints = []byte("checkpoints")
	chainSubs      = [][]byte{subEntries, subIDs, subTimes, subNodes, subCheckpoints}
	subState       = []byte("state")
	keyStateSize   = []byte("state-size")

	bucketAccounts = []byte("auth.accounts")
	bucketRights   = []byte("auth.rights")
	bucketTwoFA    = []byte("auth.twofa")

	// bucketPeers came after layout 2 was released: a new bucket, which
	// Open adds to a file that lacks it (no layout change, no migration).
	bucketPeers = []byte("replic.peers")
)

// Layout is the version of the bucket layout this package writes.
const Layout = 2

// OriginBucketName is the top-level bucket of the chains of one origin.
func OriginBucketName(origin string) []byte { return []byte("ledger.origin." + origin) }

// ChainBucketName is a chain's bucket inside its origin's.
func ChainBucketName(name string) []byte { return []byte("ledger.chain." + name) }

func chainsKey(c store.ChainKey) []byte { return []byte(c.Origin + "/" + c.Name) }

// Options configures Open.
type Options struct {
	Logger *slog.Logger // the migration's messages; discarded when nil
	// ReadOnly is for tools that must never write (vserv verify): Open
	// neither migrates nor creates buckets, refusing a file of an older
	// layout, and Update fails.
	ReadOnly bool
}

// Store is store.Store on a bbolt database.
type Store struct {
	db       *bbolt.DB
	log      *slog.Logger
	readOnly bool
}

// ErrReadOnly is returned, wrapped, by Update on a store opened ReadOnly.
var ErrReadOnly = errors.New("bolt: store opened read-only")

var _ store.Store = (*Store)(nil)

// Open makes db a Store: it creates the buckets of a new file, and migrates
// a file of an older layout in place (after a backup copy beside it, see
// migrate.go). The Store owns db from then on: Close closes it.
func Open(ctx context.Context, db *bbolt.DB, opts Options) (*Store, error) {
	s := &Store{db: db, log: opts.Logger, readOnly: opts.ReadOnly}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.upgrade(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// DB is the bbolt database under the store, for the offline tools that
// copy or inspect the file.
func (s *Store) DB() *bbolt.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// View runs fn in a bbolt read transaction.
func (s *Store) View(ctx context.Context, fn func(store.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error { return fn(&boltTx{tx: tx}) })
}

// Update runs fn in a bbolt write transaction; bbolt fsyncs before the
// commit returns. A ctx that ends while fn runs rolls the transaction back.
func (s *Store) Update(ctx context.Context, fn func(store.WriteTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("update %s: %w", s.db.Path(), ErrReadOnly)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := fn(&boltTx{tx: tx, writable: true}); err != nil {
			return err
		}
		return ctx.Err()
	})
}

type boltTx struct {
	tx       *bbolt.Tx
	writable bool
	cache    subCache
}

// subCache keeps a transaction's handles on the chain it last touched and
// on that chain's sub-buckets, so that a group commit, or a read of several
// rows, looks each one up once (three nested buckets: origin, chain, sub)
// instead of for every row; in a write transaction the append-only ones
// keep FillPercent 1.0.
type subCache struct {
	chain  store.ChainKey
	bucket *bbolt.Bucket    // the chain's bucket
	subs   [5]*bbolt.Bucket // in the order of chainSubs
}

// subIndex is the position of a sub-bucket in chainSubs.
func subIndex(name []byte) int {
	for i, s := range chainSubs {
		if string(s) == string(name) {
			return i
		}
	}
	panic("bolt: unknown sub-bucket " + string(name))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

// postorder numbers the perfect nodes of the tree in the order an append-only
// log creates them (leaf 0, leaf 1, their parent, leaf 2, ...). Storing nodes
// under this number makes every write an append at the end of the key space,
// which keeps bbolt pages full (FillPercent 1.0) instead of splitting them.
//
// The nodes before (level, index) are those of the complete subtrees left of
// its first leaf s = index<<level (2s - popcount(s) of them) and those below
// it (2^(level+1) - 2).
func postorder(id compact.NodeID) uint64 {
	s := id.Index << id.Level
	return 2*s - uint64(bits.OnesCount64(s)) + (1 << (id.Level + 1)) - 2
}

// ChainBucket is the bucket of chain c in tx (ledger.origin.<origin>/
// ledger.chain.<name>), nil when there is none: for tools and tests that
// read or edit the file below the Store, as an operator with bbolt could.
// Its sub-buckets and keys are those of the package comment.
func ChainBucket(tx *bbolt.Tx, c store.ChainKey) *bbolt.Bucket {
	o := tx.Bucket(OriginBucketName(c.Origin))
	if o == nil {
		return nil
	}
	return o.Bucket(ChainBucketName(c.Name))
}

// ServerID is the home's server-id as stored in tx, "" before it is set.
func ServerID(tx *bbolt.Tx) string {
	id, _ := (&boltTx{tx: tx}).ServerID()
	return id
}

// ChainsBucket is the ledger.chains bucket: every chain's CBOR
// store.ChainMeta under ChainsKey.
func ChainsBucket(tx *bbolt.Tx) *bbolt.Bucket { return tx.Bucket(bucketChains) }

// ChainsKey is the key of chain c in the ledger.chains bucket.
func ChainsKey(c store.ChainKey) []byte { return chainsKey(c) }

// NodeKey is the key of a Merkle node in a chain's nodes bucket.
func NodeKey(id compact.NodeID) []byte { return u64(postorder(id)) }

func (t *boltTx) chainBucket(c store.ChainKey) *bbolt.Bucket { return ChainBucket(t.tx, c) }

func (t *boltTx) sub(c store.ChainKey, name []byte) (*bbolt.Bucket, error) {
	i := subIndex(name)
	if t.cache.bucket == nil || t.cache.chain != c {
		cb := t.chainBucket(c)
		if cb == nil {
			return nil, fmt.Errorf("chain %s: %w", c, store.ErrNoChain)
		}
		t.cache = subCache{chain: c, bucket: cb}
	}
	if b := t.cache.subs[i]; b != nil {
		return b, nil
	}
	b := t.cache.bucket.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("chain %s: bucket %s missing", c, name)
	}
	if t.writable {
		switch string(name) {
		case string(subEntries), string(subTimes), string(subNodes): // they only ever grow at their end
			b.FillPercent = 1.0
		}
	}
	t.cache.subs[i] = b
	return b, nil
}

func (t *boltTx) OnCommit(fn func()) { t.tx.OnCommit(fn) }

var errReadOnly = errors.New("bolt: write in a read transaction")
