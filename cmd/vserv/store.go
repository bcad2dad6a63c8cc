package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/store/bolt"
)

// openStore opens DATAROOT/ledger.db exclusively (which proves no server
// runs on it) as a store. A writing tool migrates a file of an older layout,
// logging it on stderr as the server would; a read-only one (verify)
// refuses it instead.
func openStore(ctx context.Context, dataroot string, readOnly bool) (*bolt.Store, error) {
	db, err := datadir.New(dataroot).OpenDB(time.Second)
	if err != nil {
		return nil, err
	}
	st, err := bolt.Open(ctx, db, bolt.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), ReadOnly: readOnly})
	if err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}
