package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/store/bolt"
)

// openStore opens DATAROOT/ledger.db exclusively (which proves no server
// runs on it) as a store. A writing tool migrates a file of an older layout,
// logging it on stderr as the server would.
func openStore(ctx context.Context, dataroot string) (*bolt.Store, error) {
	db, err := bolt.OpenDB(datadir.New(dataroot).DBPath(), time.Second)
	if err != nil {
		return nil, err
	}
	st, err := bolt.Open(ctx, db, bolt.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

// openStoreReadOnly opens DATAROOT/ledger.db exclusively for a tool that
// never writes (verify). A file of an older layout is not migrated: a copy
// of it is, in a temporary directory, and the returned store is that copy;
// release removes it. note, when not empty, says so for the user.
func openStoreReadOnly(ctx context.Context, dataroot string) (st *bolt.Store, release func() error, note string, err error) {
	db, err := bolt.OpenDB(datadir.New(dataroot).DBPath(), time.Second)
	if err != nil {
		return nil, nil, "", err
	}
	st, err = bolt.Open(ctx, db, bolt.Options{ReadOnly: true})
	if err == nil {
		return st, st.Close, "", nil
	}
	if !errors.Is(err, bolt.ErrOldLayout) {
		db.Close()
		return nil, nil, "", err
	}
	defer db.Close()
	tmp, err := os.MkdirTemp("", "vserv-verify-")
	if err != nil {
		return nil, nil, "", fmt.Errorf("temporary copy of %s: %w", db.Path(), err)
	}
	copyPath := filepath.Join(tmp, datadir.DBFile)
	if err := db.View(func(tx *bbolt.Tx) error { return tx.CopyFile(copyPath, 0o600) }); err != nil {
		os.RemoveAll(tmp)
		return nil, nil, "", fmt.Errorf("temporary copy of %s: %w", db.Path(), err)
	}
	cdb, err := bbolt.Open(copyPath, 0o600, &bbolt.Options{Timeout: time.Second})
	if err == nil {
		st, err = bolt.Open(ctx, cdb, bolt.Options{})
		if err != nil {
			cdb.Close()
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, "", fmt.Errorf("migrate a temporary copy of %s: %w", db.Path(), err)
	}
	release = func() error { return errors.Join(st.Close(), os.RemoveAll(tmp)) }
	return st, release, fmt.Sprintf("%s is in an older layout: verifying a migrated temporary copy (the file itself is left as it is; the next start of vserv migrates it)", db.Path()), nil
}
