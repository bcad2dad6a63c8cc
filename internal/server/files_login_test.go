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

// File state belongs to the login that made it: an upload begun as alice
// cannot be finished after a logout and a login as bob (it would land in
// alice's home under bob's login), and bob starts at the top of his home.
func TestLogoutEndsTheUploadAndTheWorkingDirectory(t *testing.T) {
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	c := srv.LoginAs("alice")
	data := []byte("written after the login changed")
	if _, err := c.Call(ctx, "file", "x.txt", uint64(len(data)), testenv.Sum256(data)); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]any{{"mkdir", "sub"}, {"cd", "sub"}} {
		if _, err := c.Call(ctx, cmd[0].(string), cmd[1:]...); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "bob", testenv.FilePass("bob")); err != nil {
		t.Fatal(err)
	}
	vals, err := c.Call(ctx, "pwd")
	var pwd string
	if err != nil || wire.Unmarshal(vals[0], &pwd) != nil || pwd != "" {
		t.Errorf("bob's pwd after alice's cd = %q (%v), want \"\" (the top of bob's home)", pwd, err)
	}
	if _, err := c.Call(ctx, "data", uint64(0), data); !errors.Is(err, wire.ErrState) {
		t.Errorf("data after the login changed: err = %v, want ERR state (no upload in progress)", err)
	}
	for _, who := range []string{"alice", "bob"} {
		if _, err := os.Stat(filepath.Join(srv.Home(who), "x.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/x.txt exists (%v): the upload finished under another login", who, err)
		}
	}
}
