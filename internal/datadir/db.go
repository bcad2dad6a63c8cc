package datadir

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrDataRootInUse is what OpenDB returns, wrapped, when another process
// holds the database.
var ErrDataRootInUse = errors.New("the data directory is in use by another vserv")

// OpenDB opens ledger.db (creating it, 0600, on first start), giving up
// after timeout if another process holds it: bbolt would otherwise wait
// forever on its flock. Holding it is what keeps a second vserv, or an
// offline tool, off a data directory in use.
func (d Dir) OpenDB(timeout time.Duration) (*bbolt.DB, error) {
	path := d.DBPath()
	db, err := bbolt.Open(path, FilePerm, &bbolt.Options{Timeout: timeout, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
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
