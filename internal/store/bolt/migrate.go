package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// BackupSuffix is appended to the database's path for the copy Open makes
// before it migrates a file of layout 1: ledger.db.layout1-backup.
const BackupSuffix = ".layout1-backup"

// ErrOldLayout is returned, wrapped, by a ReadOnly Open of a file that
// would have to be migrated first.
var ErrOldLayout = errors.New("start vserv once to migrate it (it keeps a backup), or use the release that wrote it")

// layoutOf reads the layout a file is in: 0 for a new file (nothing
// stored), 1 for one written before layouts were numbered.
func layoutOf(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta != nil {
		if v := meta.Get(keyLayout); v != nil {
			if len(v) != 8 {
				return 0, fmt.Errorf("layout of %d bytes", len(v))
			}
			return binary.BigEndian.Uint64(v), nil
		}
	}
	if meta == nil && tx.Bucket(bucketChains) == nil && tx.Bucket(bucketAccounts) == nil {
		return 0, nil
	}
	return 1, nil
}

// upgrade brings the file to Layout: a new file gets the buckets, a layout 1
// file is copied to BackupSuffix and migrated in one transaction.
func (s *Store) upgrade(ctx context.Context) error {
	var layout uint64
	if err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		layout, err = layoutOf(tx)
		return err
	}); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	switch {
	case layout == Layout && (s.readOnly || !s.missingBuckets()):
		return nil
	case layout == Layout:
		// A bucket added since the file was written (replic.peers).
	case layout > Layout:
		return fmt.Errorf("open store: %s is in layout %d, newer than this release's %d: run a newer vserv", s.db.Path(), layout, Layout)
	case s.readOnly && layout == 0:
		return nil // nothing stored: every read finds nothing
	case s.readOnly:
		return fmt.Errorf("open store: %s is in layout %d, older than this release's %d, and is opened read-only: %w", s.db.Path(), layout, Layout, ErrOldLayout)
	case layout == 1:
		start := time.Now()
		backup, err := s.backup()
		if err != nil {
			return fmt.Errorf("migrate %s: %w", s.db.Path(), err)
		}
		s.log.Info("migrating the database to a new layout", "path", s.db.Path(), "from", 1, "to", Layout, "backup", backup)
		var chains int
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			var err error
			chains, err = migrate1to2(tx)
			return err
		}); err != nil {
			return fmt.Errorf("migrate %s (unchanged; backup in %s): %w", s.db.Path(), backup, err)
		}
		s.log.Info("database migrated", "layout", Layout, "chains", chains, "took", time.Since(start).Round(time.Millisecond))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return createBuckets(tx) })
}

// topBuckets are the top-level buckets every transaction expects.
var topBuckets = [][]byte{bucketMeta, bucketChains, bucketAccounts, bucketRights, bucketTwoFA, bucketPeers}

// missingBuckets reports whether a top-level bucket is missing.
func (s *Store) missingBuckets() bool {
	missing := false
	_ = s.db.View(func(tx *bbolt.Tx) error {
		for _, name := range topBuckets {
			missing = missing || tx.Bucket(name) == nil
		}
		return nil
	})
	return missing
}

// createBuckets makes the top-level buckets every transaction expects and
// marks the file as Layout.
func createBuckets(tx *bbolt.Tx) error {
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyLayout); v == nil {
		return meta.Put(keyLayout, u64(Layout))
	}
	return nil
}

// backup copies the file, byte for byte, to <path>BackupSuffix: written to
// a temporary name, fsynced, renamed, so that the backup is either complete
// or absent. A byte-identical copy (not bbolt's Tx.WriteTo, which rewrites
// the meta pages and drops the file's unused tail) is what the previous
// release wrote, so restoring it is an exact rollback. Open runs before
// anyone else holds the Store and the file is locked to this process, so
// nothing writes while the copy is made.
func (s *Store) backup() (string, error) {
	path := s.db.Path() + BackupSuffix
	tmp := path + ".tmp"
	err := copyFile(s.db.Path(), tmp)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("backup to %s: %w", path, err)
	}
	return path, nil
}

// copyFile copies from to a new file to, fsynced.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// migrate1to2 keys every chain by (origin, name): the home's chains move,
// bucket and all, under ledger.origin.<server-id>, and ledger.chains is
// re-keyed with the origin in each value.
func migrate1to2(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	var origin string
	if meta != nil {
		origin = string(meta.Get(keyServerID))
	}
	chains := tx.Bucket(bucketChains)
	if chains == nil {
		return 0, createBuckets(tx)
	}
	if origin == "" {
		return 0, fmt.Errorf("layout 1 file with chains but no server-id")
	}
	var metas []store.ChainMeta
	err := chains.ForEach(func(k, v []byte) error {
		var m store.ChainMeta
		if err := wire.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("chain %q metadata: %w", k, err)
		}
		if m.Name != string(k) {
			return fmt.Errorf("chain %q metadata names %q", k, m.Name)
		}
		metas = append(metas, m)
		return nil
	})
	if err != nil {
		return 0, err
	}
	dst, err := tx.CreateBucketIfNotExists(OriginBucketName(origin))
	if err != nil {
		return 0, err
	}
	for _, m := range metas {
		name := ChainBucketName(m.Name)
		if tx.Bucket(name) == nil {
			return 0, fmt.Errorf("chain %q has metadata but no bucket", m.Name)
		}
		if err := tx.MoveBucket(name, nil, dst); err != nil {
			return 0, fmt.Errorf("move chain %q: %w", m.Name, err)
		}
		if err := chains.Delete([]byte(m.Name)); err != nil {
			return 0, err
		}
		m.Origin = origin
		v, err := wire.Marshal(m)
		if err != nil {
			return 0, err
		}
		if err := chains.Put(chainsKey(m.Key()), v); err != nil {
			return 0, err
		}
	}
	if err := createBuckets(tx); err != nil {
		return 0, err
	}
	return len(metas), tx.Bucket(bucketMeta).Put(keyLayout, u64(Layout))
}
