package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/internal/wire"
	bolt "go.etcd.io/bbolt"
)

// bbolt layout. Every bucket name starts with "ledger." because other
// packages keep their own buckets in the same file.
//
//	ledger.meta                 "server-id" → text
//	ledger.chains               chain name → CBOR ChainMeta
//	ledger.chain.<name>/entries seq (8 bytes BE) → entry bytes
//	ledger.chain.<name>/ids     record id (16 bytes) → seq (8 BE) ‖ record hash (32)
//	ledger.chain.<name>/times   ms (8 BE) ‖ seq (8 BE) → record id (16)
//	ledger.chain.<name>/nodes   postorder number (8 BE) → 32-byte hash
//	ledger.chain.<name>/checkpoints size (8 BE) → keep flags (1) ‖ note
//	ledger.chain.<name>/state   the rules' state of a schema chain (apps.KV keys)
//	ledger.chain.<name> "state-size" → size (8 BE) the state reflects
//
// state and state-size are written in the same transaction as the entries,
// so the views are never behind the chain; a database from before schemas
// has neither, and Open rebuilds them.
//
// entries, times and nodes only ever grow at their end, so they are written
// with FillPercent 1.0.
var (
	bucketMeta     = []byte("ledger.meta")
	bucketChains   = []byte("ledger.chains")
	keyServerID    = []byte("server-id")
	subEntries     = []byte("entries")
	subIDs         = []byte("ids")
	subTimes       = []byte("times")
	subNodes       = []byte("nodes")
	subCheckpoints = []byte("checkpoints")
	chainSubs      = [][]byte{subEntries, subIDs, subTimes, subNodes, subCheckpoints}
	subState       = []byte("state")
	keyStateSize   = []byte("state-size")
)

func chainBucketName(chain string) []byte { return []byte("ledger.chain." + chain) }

// BoltStore is the Store on a bbolt database.
type BoltStore struct{ db *bolt.DB }

// NewBoltStore returns the Store of db.
func NewBoltStore(db *bolt.DB) *BoltStore { return &BoltStore{db: db} }

func (s *BoltStore) View(fn func(ReadTx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx: tx}) })
}

func (s *BoltStore) Update(fn func(WriteTx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx: tx, wc: &writeCache{}}) })
}

type boltTx struct {
	tx *bolt.Tx
	wc *writeCache // write transactions only
}

// writeCache keeps a write transaction's handles on the sub-buckets of the
// chain it last touched, so a group commit looks each one up once instead of
// for every record, and the append-only ones keep FillPercent 1.0.
type writeCache struct {
	chain string
	subs  [5]*bolt.Bucket // in the order of chainSubs
}

// subIndex is the position of a sub-bucket in chainSubs.
func subIndex(name []byte) int {
	for i, s := range chainSubs {
		if string(s) == string(name) {
			return i
		}
	}
	panic("ledger: unknown sub-bucket " + string(name))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

var errNoChain = errors.New("no such chain in the store")

func (t boltTx) sub(chain string, name []byte) (*bolt.Bucket, error) {
	if t.wc == nil {
		return t.lookupSub(chain, name)
	}
	i := subIndex(name)
	if t.wc.chain != chain {
		t.wc.chain, t.wc.subs = chain, [5]*bolt.Bucket{}
	}
	if b := t.wc.subs[i]; b != nil {
		return b, nil
	}
	b, err := t.lookupSub(chain, name)
	if err != nil {
		return nil, err
	}
	switch string(name) {
	case string(subEntries), string(subTimes), string(subNodes): // they only ever grow at their end
		b.FillPercent = 1.0
	}
	t.wc.subs[i] = b
	return b, nil
}

func (t boltTx) lookupSub(chain string, name []byte) (*bolt.Bucket, error) {
	c := t.tx.Bucket(chainBucketName(chain))
	if c == nil {
		return nil, fmt.Errorf("chain %q: %w", chain, errNoChain)
	}
	b := c.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("chain %q: bucket %s missing", chain, name)
	}
	return b, nil
}

func (t boltTx) ServerID() (string, error) {
	b := t.tx.Bucket(bucketMeta)
	if b == nil {
		return "", nil
	}
	return string(b.Get(keyServerID)), nil
}

func (t boltTx) Chains() ([]ChainMeta, error) {
	b := t.tx.Bucket(bucketChains)
	if b == nil {
		return nil, nil
	}
	var out []ChainMeta
	err := b.ForEach(func(k, v []byte) error {
		var m ChainMeta
		if err := wire.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("chain %q metadata: %w", k, err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func (t boltTx) Size(chain string) (uint64, error) {
	b, err := t.sub(chain, subEntries)
	if err != nil {
		return 0, err
	}
	k, _ := b.Cursor().Last()
	if k == nil {
		return 0, nil
	}
	return binary.BigEndian.Uint64(k) + 1, nil
}

func (t boltTx) Entry(chain string, seq uint64) ([]byte, error) {
	b, err := t.sub(chain, subEntries)
	if err != nil {
		return nil, err
	}
	return b.Get(u64(seq)), nil
}

func (t boltTx) Entries(chain string, from uint64, fn func(uint64, []byte) (bool, error)) error {
	b, err := t.sub(chain, subEntries)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("chain %q: entry key of %d bytes", chain, len(k))
		}
		more, err := fn(binary.BigEndian.Uint64(k), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t boltTx) LookupID(chain string, id [16]byte) (IDRef, bool, error) {
	b, err := t.sub(chain, subIDs)
	if err != nil {
		return IDRef{}, false, err
	}
	v := b.Get(id[:])
	if v == nil {
		return IDRef{}, false, nil
	}
	if len(v) != 40 {
		return IDRef{}, false, fmt.Errorf("chain %q: id index value of %d bytes", chain, len(v))
	}
	ref := IDRef{Seq: binary.BigEndian.Uint64(v)}
	copy(ref.Hash[:], v[8:])
	return ref, true, nil
}

func (t boltTx) Node(chain string, id compact.NodeID) ([]byte, error) {
	b, err := t.sub(chain, subNodes)
	if err != nil {
		return nil, err
	}
	return b.Get(u64(postorder(id))), nil
}

func decodeCheckpoint(k, v []byte) (StoredCheckpoint, error) {
	if len(k) != 8 || len(v) < 2 {
		return StoredCheckpoint{}, fmt.Errorf("checkpoint row of %d/%d bytes", len(k), len(v))
	}
	return StoredCheckpoint{Size: binary.BigEndian.Uint64(k), Keep: Keep(v[0]), Note: v[1:]}, nil
}

func (t boltTx) Checkpoint(chain string, size uint64) (StoredCheckpoint, bool, error) {
	b, err := t.sub(chain, subCheckpoints)
	if err != nil {
		return StoredCheckpoint{}, false, err
	}
	k := u64(size)
	v := b.Get(k)
	if v == nil {
		return StoredCheckpoint{}, false, nil
	}
	cp, err := decodeCheckpoint(k, v)
	return cp, err == nil, err
}

func (t boltTx) LatestCheckpoint(chain string) (StoredCheckpoint, bool, error) {
	b, err := t.sub(chain, subCheckpoints)
	if err != nil {
		return StoredCheckpoint{}, false, err
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return StoredCheckpoint{}, false, nil
	}
	cp, err := decodeCheckpoint(k, v)
	return cp, err == nil, err
}

func (t boltTx) Checkpoints(chain string, fn func(StoredCheckpoint) error) error {
	b, err := t.sub(chain, subCheckpoints)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		cp, err := decodeCheckpoint(k, v)
		if err != nil {
			return err
		}
		return fn(cp)
	})
}

func (t boltTx) Times(chain string, ms, seq uint64, fn func(TimeRef) (bool, error)) error {
	b, err := t.sub(chain, subTimes)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, v := c.Seek(append(u64(ms), u64(seq)...)); k != nil; k, v = c.Next() {
		if len(k) != 16 || len(v) != 16 {
			return fmt.Errorf("chain %q: time index row of %d/%d bytes", chain, len(k), len(v))
		}
		r := TimeRef{Ms: binary.BigEndian.Uint64(k), Seq: binary.BigEndian.Uint64(k[8:])}
		copy(r.ID[:], v)
		more, err := fn(r)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t boltTx) SetServerID(id string) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return b.Put(keyServerID, []byte(id))
}

func (t boltTx) PutChain(meta ChainMeta) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketChains)
	if err != nil {
		return err
	}
	v, err := wire.Marshal(meta)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(meta.Name), v); err != nil {
		return err
	}
	c, err := t.tx.CreateBucketIfNotExists(chainBucketName(meta.Name))
	if err != nil {
		return err
	}
	for _, s := range chainSubs {
		if _, err := c.CreateBucketIfNotExists(s); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) Append(chain string, seq uint64, entry []byte, id [16]byte, recordHash [32]byte, ms uint64) error {
	e, err := t.sub(chain, subEntries)
	if err != nil {
		return err
	}
	ids, err := t.sub(chain, subIDs)
	if err != nil {
		return err
	}
	times, err := t.sub(chain, subTimes)
	if err != nil {
		return err
	}
	// bbolt copies keys but keeps values until the commit: one allocation
	// holds the keys and values of the three rows.
	buf := make([]byte, 0, 8+16+40+16)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = append(buf, id[:]...)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = append(buf, recordHash[:]...)
	buf = binary.BigEndian.AppendUint64(buf, ms)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	seqKey, idBytes, idValue, timeKey := buf[0:8], buf[8:24:24], buf[24:64:64], buf[64:80]
	if err := e.Put(seqKey, entry); err != nil {
		return err
	}
	if err := ids.Put(idBytes, idValue); err != nil {
		return err
	}
	return times.Put(timeKey, idBytes)
}

func (t boltTx) PutNode(chain string, id compact.NodeID, hash []byte) error {
	b, err := t.sub(chain, subNodes)
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], postorder(id))
	return b.Put(k[:], hash)
}

func (t boltTx) PutCheckpoint(chain string, cp StoredCheckpoint) error {
	b, err := t.sub(chain, subCheckpoints)
	if err != nil {
		return err
	}
	return b.Put(u64(cp.Size), append([]byte{byte(cp.Keep)}, cp.Note...))
}

func (t boltTx) DeleteCheckpoint(chain string, size uint64) error {
	b, err := t.sub(chain, subCheckpoints)
	if err != nil {
		return err
	}
	return b.Delete(u64(size))
}

// boltKV is a chain's state bucket as an apps.KV. b is nil in a read
// transaction on a chain whose state was never written: every Get is absent.
type boltKV struct {
	b        *bolt.Bucket
	writable bool
}

var errReadOnlyKV = errors.New("ledger: the rules' state is read-only in a read transaction")

func (k boltKV) Get(key []byte) ([]byte, error) {
	if k.b == nil {
		return nil, nil
	}
	return k.b.Get(key), nil
}

func (k boltKV) Put(key, val []byte) error {
	if !k.writable || k.b == nil {
		return errReadOnlyKV
	}
	return k.b.Put(key, val)
}

func (t boltTx) AppState(chain string) (apps.KV, uint64, bool, error) {
	c := t.tx.Bucket(chainBucketName(chain))
	if c == nil {
		return nil, 0, false, fmt.Errorf("chain %q: %w", chain, errNoChain)
	}
	var size uint64
	v := c.Get(keyStateSize)
	switch {
	case v == nil:
	case len(v) == 8:
		size = binary.BigEndian.Uint64(v)
	default:
		return nil, 0, false, fmt.Errorf("chain %q: state size of %d bytes", chain, len(v))
	}
	b := c.Bucket(subState)
	if b == nil && t.wc != nil {
		var err error
		if b, err = c.CreateBucket(subState); err != nil {
			return nil, 0, false, err
		}
	}
	return boltKV{b: b, writable: t.wc != nil}, size, v != nil, nil
}

func (t boltTx) PutAppStateSize(chain string, size uint64) error {
	c := t.tx.Bucket(chainBucketName(chain))
	if c == nil {
		return fmt.Errorf("chain %q: %w", chain, errNoChain)
	}
	return c.Put(keyStateSize, u64(size))
}

func (t boltTx) ResetAppState(chain string) error {
	c := t.tx.Bucket(chainBucketName(chain))
	if c == nil {
		return fmt.Errorf("chain %q: %w", chain, errNoChain)
	}
	if c.Bucket(subState) != nil {
		if err := c.DeleteBucket(subState); err != nil {
			return err
		}
	}
	return c.Delete(keyStateSize)
}
