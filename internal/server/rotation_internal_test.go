package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/verify"
)

// A rotation before the server ever started is recorded too: the ledger is
// created under the first key, so the history starts at the key the
// server-id comes from, and a later rotation still opens cleanly (an
// unrecorded first replacement used to make every chain read-only at the
// next rotation).
func TestRotateIdentityBeforeFirstStartIsRecordedAndLaterRotationsWork(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	first, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := openTestStore(t, dir)
	r1, err := RotateIdentity(ctx, dir, db, nil)
	if err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	if !r1.Recorded || !r1.Old.Key.Equal(first.Key) {
		t.Fatalf("first rotation = recorded %v, old key is first %v; want recorded, from the first key", r1.Recorded, r1.Old.Key.Equal(first.Key))
	}
	r2, err := RotateIdentity(ctx, dir, db, nil)
	if err != nil || !r2.Recorded {
		t.Fatalf("second rotation: recorded %v, %v", r2 != nil && r2.Recorded, err)
	}
	l, err := ledger.Open(ctx, db, ledger.Config{ServerID: first.ServerID, Signer: r2.New.Key, Logger: slog.New(slog.DiscardHandler), FullCheckOnOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range l.Chains() {
		if c.ReadOnly != "" {
			t.Errorf("chain %s is read-only after two recorded rotations: %s", c.Name, c.ReadOnly)
		}
	}
	if size, err := l.Size(ctx, "keys"); err != nil || size != 2 {
		t.Errorf("keys chain size = %d (%v), want 2 key.rotate entries", size, err)
	}
}

// If the ledger refuses the key.rotate record, nothing changes: the old key
// is put back, so no key that nobody can follow to is left in place.
func TestRotateIdentityPutsTheOldKeyBackWhenTheLedgerRefuses(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	first, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := openTestStore(t, dir)
	// A ledger whose checkpoints the identity key did not sign: its keys
	// chain is read-only under that key.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	l, err := ledger.Open(ctx, db, ledger.Config{ServerID: first.ServerID, Signer: other, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureDefaultChains(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close()

	_, err = RotateIdentity(context.Background(), dir, db, nil)
	if err == nil || !strings.Contains(err.Error(), "old identity key was put back") || !strings.Contains(err.Error(), "keys chain is read-only") {
		t.Fatalf("rotate on a ledger that refuses it: err = %v, want the refusal and the key put back", err)
	}
	now, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil || !now.Key.Equal(first.Key) {
		t.Fatalf("identity.key after a refused rotation is not the old key (%v)", err)
	}
	l, err = ledger.Open(ctx, db, ledger.Config{ServerID: first.ServerID, Signer: other, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := l.Size(ctx, verify.KeysChain); err != nil || n != 0 {
		t.Fatalf("keys chain has %d entries (%v), want none", n, err)
	}
}

// openTestStore opens the store of dir's ledger.db, closed when the test ends.
func openTestStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	db, err := bolt.OpenDB(datadir.New(dir).DBPath(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(context.Background(), db, bolt.Options{})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
