package bolt

import (
	"fmt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// bucketForks holds fork evidence (store.Fork) seen while mirroring, one
// nested bucket per chain (named as in ledger.chains, <origin>/<name>),
// rows keyed by the nested bucket's sequence (8 BE), CBOR values. It is
// apart from the chain buckets: evidence outlives what it is about.
var bucketForks = []byte("ledger.forks")

// forkRow is a store.Fork as stored.
type forkRow struct {
	Ms      uint64 `cbor:"ms"`
	Reason  string `cbor:"reason"`
	Held    []byte `cbor:"held"`
	Offered []byte `cbor:"offered"`
}

func (t *boltTx) Forks(c store.ChainKey, fn func(store.Fork) error) error {
	top := t.tx.Bucket(bucketForks)
	if top == nil {
		return nil
	}
	b := top.Bucket(chainsKey(c))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var r forkRow
		if err := wire.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("chain %s: fork row %x: %w", c, k, err)
		}
		return fn(store.Fork{Ms: r.Ms, Reason: r.Reason, Held: r.Held, Offered: r.Offered})
	})
}

func (t *boltTx) PutFork(c store.ChainKey, f store.Fork) error {
	top, err := t.tx.CreateBucketIfNotExists(bucketForks)
	if err != nil {
		return err
	}
	b, err := top.CreateBucketIfNotExists(chainsKey(c))
	if err != nil {
		return err
	}
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := wire.Marshal(forkRow{Ms: f.Ms, Reason: f.Reason, Held: f.Held, Offered: f.Offered})
	if err != nil {
		return err
	}
	return b.Put(u64(n), v)
}
