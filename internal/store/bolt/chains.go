package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/transparency-dev/merkle/compact"
	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

func (t *boltTx) ServerID() (string, error) {
	b := t.tx.Bucket(bucketMeta)
	if b == nil {
		return "", nil
	}
	return string(b.Get(keyServerID)), nil
}

func (t *boltTx) Chains() ([]store.ChainMeta, error) {
	b := t.tx.Bucket(bucketChains)
	if b == nil {
		return nil, nil
	}
	var out []store.ChainMeta
	err := b.ForEach(func(k, v []byte) error {
		var m store.ChainMeta
		if err := wire.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("chain %q metadata: %w", k, err)
		}
		if m.Origin == "" || string(chainsKey(m.Key())) != string(k) {
			return fmt.Errorf("chain %q metadata names %s", k, m.Key())
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func (t *boltTx) Size(c store.ChainKey) (uint64, error) {
	b, err := t.sub(c, subEntries)
	if err != nil {
		return 0, err
	}
	k, _ := b.Cursor().Last()
	if k == nil {
		return 0, nil
	}
	return binary.BigEndian.Uint64(k) + 1, nil
}

func (t *boltTx) Entry(c store.ChainKey, seq uint64) ([]byte, error) {
	b, err := t.sub(c, subEntries)
	if err != nil {
		return nil, err
	}
	return b.Get(u64(seq)), nil
}

func (t *boltTx) Entries(c store.ChainKey, from uint64, fn func(uint64, []byte) (bool, error)) error {
	b, err := t.sub(c, subEntries)
	if err != nil {
		return err
	}
	cur := b.Cursor()
	for k, v := cur.Seek(u64(from)); k != nil; k, v = cur.Next() {
		if len(k) != 8 {
			return fmt.Errorf("chain %s: entry key of %d bytes", c, len(k))
		}
		more, err := fn(binary.BigEndian.Uint64(k), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *boltTx) LookupID(c store.ChainKey, id [16]byte) (store.IDRef, bool, error) {
	b, err := t.sub(c, subIDs)
	if err != nil {
		return store.IDRef{}, false, err
	}
	v := b.Get(id[:])
	if v == nil {
		return store.IDRef{}, false, nil
	}
	if len(v) != 40 {
		return store.IDRef{}, false, fmt.Errorf("chain %s: id index value of %d bytes", c, len(v))
	}
	ref := store.IDRef{Seq: binary.BigEndian.Uint64(v)}
	copy(ref.Hash[:], v[8:])
	return ref, true, nil
}

func (t *boltTx) Nodes(c store.ChainKey, ids []compact.NodeID) ([][]byte, error) {
	b, err := t.sub(c, subNodes)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	var k [8]byte
	for i, id := range ids {
		binary.BigEndian.PutUint64(k[:], postorder(id))
		out[i] = b.Get(k[:])
	}
	return out, nil
}

func decodeCheckpoint(k, v []byte) (store.StoredCheckpoint, error) {
	if len(k) != 8 || len(v) < 2 {
		return store.StoredCheckpoint{}, fmt.Errorf("checkpoint row of %d/%d bytes", len(k), len(v))
	}
	cp := store.StoredCheckpoint{Size: binary.BigEndian.Uint64(k), Keep: store.Keep(v[0] &^ cosignedFlag), Note: v[1:]}
	if v[0]&cosignedFlag == 0 {
		return cp, nil
	}
	// keep|flag, 4-byte note length, note, cosignature lines.
	if len(v) < 5 || uint64(binary.BigEndian.Uint32(v[1:5])) > uint64(len(v)-5) {
		return store.StoredCheckpoint{}, fmt.Errorf("cosigned checkpoint row of %d bytes", len(v))
	}
	n := binary.BigEndian.Uint32(v[1:5])
	cp.Note, cp.Cosignatures = v[5:5+n], v[5+n:]
	return cp, nil
}

// cosignedFlag, in a checkpoint row's keep byte, says that the note's length
// and the cosignature lines follow (docs/formats.md "Cosignatures"); rows
// without it are the older layout, unchanged.
const cosignedFlag = 0x80

func encodeCheckpoint(cp store.StoredCheckpoint) ([]byte, error) {
	if len(cp.Cosignatures) == 0 {
		return append([]byte{byte(cp.Keep)}, cp.Note...), nil
	}
	if len(cp.Note) > math.MaxUint32 {
		return nil, fmt.Errorf("checkpoint note of %d bytes", len(cp.Note))
	}
	v := append([]byte{byte(cp.Keep) | cosignedFlag}, binary.BigEndian.AppendUint32(nil, uint32(len(cp.Note)))...)
	return append(append(v, cp.Note...), cp.Cosignatures...), nil
}

func (t *boltTx) Checkpoint(c store.ChainKey, size uint64) (store.StoredCheckpoint, bool, error) {
	b, err := t.sub(c, subCheckpoints)
	if err != nil {
		return store.StoredCheckpoint{}, false, err
	}
	k := u64(size)
	v := b.Get(k)
	if v == nil {
		return store.StoredCheckpoint{}, false, nil
	}
	cp, err := decodeCheckpoint(k, v)
	return cp, err == nil, err
}

func (t *boltTx) LatestCheckpoint(c store.ChainKey) (store.StoredCheckpoint, bool, error) {
	b, err := t.sub(c, subCheckpoints)
	if err != nil {
		return store.StoredCheckpoint{}, false, err
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return store.StoredCheckpoint{}, false, nil
	}
	cp, err := decodeCheckpoint(k, v)
	return cp, err == nil, err
}

func (t *boltTx) Checkpoints(c store.ChainKey, fn func(store.StoredCheckpoint) error) error {
	b, err := t.sub(c, subCheckpoints)
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

func (t *boltTx) Times(c store.ChainKey, ms, seq uint64, fn func(store.TimeRef) (bool, error)) error {
	b, err := t.sub(c, subTimes)
	if err != nil {
		return err
	}
	cur := b.Cursor()
	for k, v := cur.Seek(append(u64(ms), u64(seq)...)); k != nil; k, v = cur.Next() {
		if len(k) != 16 || len(v) != 16 {
			return fmt.Errorf("chain %s: time index row of %d/%d bytes", c, len(k), len(v))
		}
		r := store.TimeRef{Ms: binary.BigEndian.Uint64(k), Seq: binary.BigEndian.Uint64(k[8:])}
		copy(r.ID[:], v)
		more, err := fn(r)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *boltTx) SetServerID(id string) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return b.Put(keyServerID, []byte(id))
}

func (t *boltTx) PutChain(meta store.ChainMeta) error {
	if meta.Origin == "" || meta.Name == "" {
		return fmt.Errorf("bolt: chain metadata without origin or name: %+v", meta)
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketChains)
	if err != nil {
		return err
	}
	v, err := wire.Marshal(meta)
	if err != nil {
		return err
	}
	if err := b.Put(chainsKey(meta.Key()), v); err != nil {
		return err
	}
	o, err := t.tx.CreateBucketIfNotExists(OriginBucketName(meta.Origin))
	if err != nil {
		return err
	}
	c, err := o.CreateBucketIfNotExists(ChainBucketName(meta.Name))
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

// LockHead only reads the size: bbolt has one writer at a time, so the
// transaction holds every head already.
func (t *boltTx) LockHead(c store.ChainKey) (uint64, error) { return t.Size(c) }

func (t *boltTx) Append(c store.ChainKey, rows []store.Row) error {
	e, err := t.sub(c, subEntries)
	if err != nil {
		return err
	}
	ids, err := t.sub(c, subIDs)
	if err != nil {
		return err
	}
	times, err := t.sub(c, subTimes)
	if err != nil {
		return err
	}
	// bbolt copies keys but keeps values until the commit: one allocation
	// holds the keys and values of every row's three index rows.
	const per = 8 + 16 + 40 + 16
	buf := make([]byte, 0, per*len(rows))
	for _, r := range rows {
		start := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, r.Seq)
		buf = append(buf, r.ID[:]...)
		buf = binary.BigEndian.AppendUint64(buf, r.Seq)
		buf = append(buf, r.RecordHash[:]...)
		buf = binary.BigEndian.AppendUint64(buf, r.Ms)
		buf = binary.BigEndian.AppendUint64(buf, r.Seq)
		row := buf[start:len(buf):len(buf)]
		seqKey, idBytes, idValue, timeKey := row[0:8], row[8:24:24], row[24:64:64], row[64:80]
		if err := e.Put(seqKey, r.Entry); err != nil {
			return err
		}
		if err := ids.Put(idBytes, idValue); err != nil {
			return err
		}
		if err := times.Put(timeKey, idBytes); err != nil {
			return err
		}
	}
	return nil
}

func (t *boltTx) PutNodes(c store.ChainKey, nodes []store.Node) error {
	b, err := t.sub(c, subNodes)
	if err != nil {
		return err
	}
	var k [8]byte
	for _, n := range nodes {
		binary.BigEndian.PutUint64(k[:], postorder(n.ID))
		if err := b.Put(k[:], n.Hash); err != nil {
			return err
		}
	}
	return nil
}

func (t *boltTx) PutCheckpoint(c store.ChainKey, cp store.StoredCheckpoint) error {
	b, err := t.sub(c, subCheckpoints)
	if err != nil {
		return err
	}
	v, err := encodeCheckpoint(cp)
	if err != nil {
		return err
	}
	return b.Put(u64(cp.Size), v)
}

func (t *boltTx) DeleteCheckpoint(c store.ChainKey, size uint64) error {
	b, err := t.sub(c, subCheckpoints)
	if err != nil {
		return err
	}
	return b.Delete(u64(size))
}

// boltKV is a chain's state bucket as an apps.KV. b is nil in a read
// transaction on a chain whose state was never written: every Get is absent.
type boltKV struct {
	b        *bbolt.Bucket
	writable bool
}

var errReadOnlyKV = errors.New("bolt: the rules' state is read-only in a read transaction")

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

func (t *boltTx) AppState(c store.ChainKey) (apps.KV, uint64, bool, error) {
	cb := t.chainBucket(c)
	if cb == nil {
		return nil, 0, false, fmt.Errorf("chain %s: %w", c, store.ErrNoChain)
	}
	var size uint64
	v := cb.Get(keyStateSize)
	switch {
	case v == nil:
	case len(v) == 8:
		size = binary.BigEndian.Uint64(v)
	default:
		return nil, 0, false, fmt.Errorf("chain %s: state size of %d bytes", c, len(v))
	}
	b := cb.Bucket(subState)
	if b == nil && t.writable {
		var err error
		if b, err = cb.CreateBucket(subState); err != nil {
			return nil, 0, false, err
		}
	}
	return boltKV{b: b, writable: t.writable}, size, v != nil, nil
}

func (t *boltTx) PutAppStateSize(c store.ChainKey, size uint64) error {
	cb := t.chainBucket(c)
	if cb == nil {
		return fmt.Errorf("chain %s: %w", c, store.ErrNoChain)
	}
	return cb.Put(keyStateSize, u64(size))
}

func (t *boltTx) ResetAppState(c store.ChainKey) error {
	cb := t.chainBucket(c)
	if cb == nil {
		return fmt.Errorf("chain %s: %w", c, store.ErrNoChain)
	}
	if cb.Bucket(subState) != nil {
		if err := cb.DeleteBucket(subState); err != nil {
			return err
		}
	}
	return cb.Delete(keyStateSize)
}
