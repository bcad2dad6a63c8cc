package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrDataRootInUse is what OpenDB returns, wrapped, when another process
// holds the database.
var ErrDataRootInUse = errors.New("the data directory is in use by another vserv")

// OpenDB opens the bbolt file at path (creating it, 0600, on first start:
// datadir.Dir.DBPath), giving up after timeout if another process holds it:
// bbolt would otherwise wait forever on its flock. Holding it is what keeps
// a second vserv, or an offline tool, off a data directory in use.
func OpenDB(path string, timeout time.Duration) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if errors.Is(err, berrors.ErrTimeout) {
		who := ""
		if pid := lockHolder(path); pid > 0 {
			who = fmt.Sprintf(" (pid %d?)", pid)
		}
		return nil, fmt.Errorf("open %s: %w%s: stop it, or work on a copy", path, ErrDataRootInUse, who)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// OpenFile opens (creating) the bbolt file at path with OpenDB, waiting at
// most a second for another process's lock, and makes it a Store as Open
// does.
func OpenFile(ctx context.Context, path string, opts Options) (*Store, error) {
	db, err := OpenDB(path, time.Second)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
