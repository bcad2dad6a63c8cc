package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
)

// newTestServer returns a server on the parts of a new data directory at
// dataroot, opened as internal/node opens them (which this package's tests
// cannot import) but with cheap password hashing, cfg.Now and cfg.Logger;
// the test's cleanup closes them. The unit tests here drive handlers on it
// without a socket; every integration test starts the real binary instead
// (internal/testenv).
func newTestServer(t *testing.T, dataroot string, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir := datadir.New(dataroot)
	id, _, err := secure.LoadOrCreateIdentity(dir.Root())
	if err != nil {
		t.Fatal(err)
	}
	st := openTestStore(t, dir.Root())
	pool, err := secure.OpenPool(dir.Root(), id, 8, 24*time.Hour, cfg.Now)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := auth.LoadOrCreateSecretKey(dir.Root())
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := auth.New(st, auth.Options{
		Argon: auth.TestArgon2, Production: cfg.Production, SecretKey: secret,
		ServerID: id.ServerID, Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := files.New(dir.FilesDir(), files.Quotas{}, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	l, err := ledger.Open(context.Background(), st, ledger.Config{
		ServerID: id.ServerID, Signer: id.Key, Now: cfg.Now, Logger: cfg.Logger,
		FullCheckOnOpen: true, HeadsFile: dir.HeadsPath(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.EnsureDefaultChains(context.Background()); err != nil {
		t.Fatal(err)
	}
	setup := dir.SetupToken()
	if _, err := setup.Ensure(true); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Parts{
		Identity: id, Pool: pool, Accounts: accounts, Files: fs, Ledger: l,
		SetupToken: setup, KeyRotations: RotationReceipts(context.Background(), l, cfg.Logger),
		Commands: NewTable(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
