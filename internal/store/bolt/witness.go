package bolt

import (
	"encoding/binary"
	"fmt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// The witness state (store/witness.go) lives in two buckets of its own,
// created by the first write, so that files of layout 2 written before
// them need no migration (a missing bucket reads as empty):
//
//	replic.witness        origin → size (8 BE) ‖ root (32) ‖ signed note
//	replic.witness.forks  sequence (8 BE) → CBOR store.WitnessFork
var (
	bucketWitness      = []byte("replic.witness")
	bucketWitnessForks = []byte("replic.witness.forks")
)

func (t *boltTx) WitnessState(origin string) (store.WitnessState, bool, error) {
	b := t.tx.Bucket(bucketWitness)
	if b == nil {
		return store.WitnessState{}, false, nil
	}
	v := b.Get([]byte(origin))
	if v == nil {
		return store.WitnessState{}, false, nil
	}
	if len(v) < 40 {
		return store.WitnessState{}, false, fmt.Errorf("bolt: witness state of %q is %d bytes, want at least 40", origin, len(v))
	}
	st := store.WitnessState{Size: binary.BigEndian.Uint64(v[:8]), Note: v[40:]}
	copy(st.Root[:], v[8:40])
	return st, true, nil
}

func (t *boltTx) WitnessForks(fn func(store.WitnessFork) error) error {
	b := t.tx.Bucket(bucketWitnessForks)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var f store.WitnessFork
		if err := wire.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("bolt: witness fork %x: %w", k, err)
		}
		return fn(f)
	})
}

func (t *boltTx) PutWitnessState(origin string, st store.WitnessState) error {
	if !t.writable {
		return errReadOnly
	}
	if origin == "" {
		return fmt.Errorf("bolt: witness state without an origin")
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketWitness)
	if err != nil {
		return err
	}
	v := make([]byte, 0, 40+len(st.Note))
	v = append(append(append(v, u64(st.Size)...), st.Root[:]...), st.Note...)
	return b.Put([]byte(origin), v)
}

func (t *boltTx) AddWitnessFork(f store.WitnessFork) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketWitnessForks)
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := wire.Marshal(f)
	if err != nil {
		return err
	}
	return b.Put(u64(seq), v)
}
