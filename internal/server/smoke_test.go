package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
)

func TestFirstAdminAddUserAndLogin(t *testing.T) {
	srv := testenv.Start(t)
	ctx := context.Background()
	admin := srv.AdminClient()
	if _, err := admin.AddUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatalf("uadd bob: %v", err)
	}
	bob := srv.Login("bob", "bob-password")
	h, err := bob.Hello(ctx)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	if h.ServerID != bob.ServerID() || len(h.ConnectionID) != 16 {
		t.Errorf("hello = %+v, want server-id %s and a 16-character connection id", h, bob.ServerID())
	}
	if _, err := bob.ListUsers(ctx, "all"); !errors.Is(err, client.ErrPerm) {
		t.Errorf("ulist as a plain user: err = %v, want ERR perm", err)
	}
}
