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

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

func TestRotateIdentityWithoutLedgerOnlyReplacesTheKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := RotateIdentity(context.Background(), dir, db, nil)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if r.Recorded || !r.Old.Key.Equal(first.Key) {
		t.Fatalf("rotation = recorded %v, old key is first %v; want not recorded, from the first key", r.Recorded, r.Old.Key.Equal(first.Key))
	}
	now, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil || !now.Key.Equal(r.New.Key) {
		t.Fatalf("identity.key after the rotation is not the new key (%v)", err)
	}
}

// If the ledger refuses the key.rotate record, nothing changes: the old key
// is put back, so no key that nobody can follow to is left in place.
func TestRotateIdentityPutsTheOldKeyBackWhenTheLedgerRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A ledger whose checkpoints the identity key did not sign: its keys
	// chain is read-only under that key.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	l, err := ledger.Open(db, ledger.Config{ServerID: first.ServerID, Signer: other, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	l, err = ledger.Open(db, ledger.Config{ServerID: first.ServerID, Signer: other, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := l.Size(verify.KeysChain); err != nil || n != 0 {
		t.Fatalf("keys chain has %d entries (%v), want none", n, err)
	}
}
