package bolt

import (
	"bytes"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// rightsKey is the rights bucket's key: home 0x00 chain. Home names cannot
// hold a NUL, so one account's keys are exactly those with its prefix.
func rightsKey(home, chain string) []byte { return []byte(home + "\x00" + chain) }

func (t *boltTx) bucket(name []byte) (*bbolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bolt: bucket %s missing", name)
	}
	return b, nil
}

func (t *boltTx) get(bucket []byte, key []byte) ([]byte, error) {
	b, err := t.bucket(bucket)
	if err != nil {
		return nil, err
	}
	return b.Get(key), nil
}

func (t *boltTx) put(bucket, key, v []byte) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

func (t *boltTx) del(bucket, key []byte) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

func (t *boltTx) Account(home string) ([]byte, error) { return t.get(bucketAccounts, []byte(home)) }

func (t *boltTx) Accounts(fn func(home string, rec []byte) error) error {
	b, err := t.bucket(bucketAccounts)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

func (t *boltTx) AccountCount() (int, error) {
	b, err := t.bucket(bucketAccounts)
	if err != nil {
		return 0, err
	}
	n := 0
	// Stats walks every page; a cursor over the keys is as cheap and exact.
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n, nil
}

func (t *boltTx) Right(home, chain string) ([]byte, error) {
	return t.get(bucketRights, rightsKey(home, chain))
}

func (t *boltTx) Rights(home string, fn func(chain string, v []byte) error) error {
	b, err := t.bucket(bucketRights)
	if err != nil {
		return err
	}
	prefix := rightsKey(home, "")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(string(k[len(prefix):]), v); err != nil {
			return err
		}
	}
	return nil
}

func (t *boltTx) TwoFA(home string) ([]byte, error) { return t.get(bucketTwoFA, []byte(home)) }

func (t *boltTx) PutAccount(home string, rec []byte) error {
	return t.put(bucketAccounts, []byte(home), rec)
}

func (t *boltTx) DeleteAccount(home string) error { return t.del(bucketAccounts, []byte(home)) }

func (t *boltTx) NextGeneration() (uint64, error) {
	if !t.writable {
		return 0, errReadOnly
	}
	b, err := t.bucket(bucketAccounts)
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}

func (t *boltTx) PutRight(home, chain string, v []byte) error {
	return t.put(bucketRights, rightsKey(home, chain), v)
}

func (t *boltTx) DeleteRight(home, chain string) error {
	return t.del(bucketRights, rightsKey(home, chain))
}

func (t *boltTx) DeleteRights(home string) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := t.bucket(bucketRights)
	if err != nil {
		return err
	}
	prefix := rightsKey(home, "")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return fmt.Errorf("delete rights %q: %w", k, err)
		}
	}
	return nil
}

func (t *boltTx) PutTwoFA(home string, v []byte) error {
	return t.put(bucketTwoFA, []byte(home), v)
}

func (t *boltTx) DeleteTwoFA(home string) error { return t.del(bucketTwoFA, []byte(home)) }
