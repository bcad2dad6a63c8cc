package bolt

import (
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// OpenFile opens (creating) the bbolt file at path, waiting at most a second
// for another process's lock, and makes it a Store as Open does. It is for
// tests and tools that need a store of their own; the server opens its
// database itself, to tell the operator who holds the lock.
func OpenFile(ctx context.Context, path string, opts Options) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s, err := Open(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
