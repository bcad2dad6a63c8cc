package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// A deleted account's files do not pass to a new account of the same name:
// udel retires the home into <dataroot>/deleted-homes.
func TestUdelRetiresTheHomeSoANewAccountOfTheSameNameStartsEmpty(t *testing.T) {
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	bob := srv.LoginAs("bob")
	secret := []byte("bob's private note")
	if _, err := bob.Call(ctx, "file", "secret.txt", uint64(len(secret)), testenv.Sum256(secret)); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Call(ctx, "data", uint64(0), secret); err != nil {
		t.Fatal(err)
	}
	admin := srv.AdminClient()
	if err := admin.DeleteUser(ctx, "bob"); err != nil {
		t.Fatalf("udel bob: %v", err)
	}
	if _, err := admin.AddUser(ctx, "Bob", "another-password-1", false); err != nil {
		t.Fatalf("uadd Bob: %v", err)
	}
	newBob := srv.Login("Bob", "another-password-1")
	if _, err := newBob.Call(ctx, "stat", "secret.txt"); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("the new Bob stats the old bob's file: err = %v, want ERR notfound", err)
	}
	kept, err := filepath.Glob(filepath.Join(srv.DataRoot, "deleted-homes", "bob-*", "secret.txt"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("retired home: %v (%v), want one deleted-homes/bob-*/secret.txt for the operator", kept, err)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || string(b) != string(secret) {
		t.Errorf("retired file = %q (%v), want the old content", b, err)
	}
}
