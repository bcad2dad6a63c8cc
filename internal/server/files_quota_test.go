package server_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestFileQuotasRefuseAndLeaveNothing(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t, "--quota-bytes", "10000", "--quota-files", "3", "--quota-total", "15000")
	ctx := context.Background()
	alice, bob := srv.LoginAs("alice"), srv.LoginAs("bob")
	refused := func(c *client.Client, name string, n int, why string) {
		t.Helper()
		data := testenv.FileBytes(n, uint64(n))
		_, err := c.Upload(ctx, bytes.NewReader(data), int64(n), testenv.Sum256(data), name, nil)
		testenv.WantCode(t, err, wire.CodeLimit, why+" (fput)")
		_, err = c.Call(ctx, "file", name, uint64(n), testenv.Sum256(data))
		testenv.WantCode(t, err, wire.CodeLimit, why+" (file)")
		if _, err := c.Stat(ctx, name, nil); err == nil {
			t.Errorf("%s: %s exists after ERR limit", why, name)
		}
		if h, err := c.Hello(ctx); err != nil || h.ConnectionID == "" {
			t.Fatalf("%s: hello after the refusal: %v", why, err)
		}
	}

	mustUpload(t, alice, "a1", testenv.FileBytes(6000, 1), nil)
	refused(alice, "a2", 4001, "over the account's bytes")
	mustUpload(t, alice, "a2", testenv.FileBytes(4000, 2), nil) // exactly the limit
	refused(alice, "a3", 1, "account full to the byte")
	if err := alice.DeleteFile(ctx, "a2", nil); err != nil {
		t.Fatal(err)
	}
	mustUpload(t, alice, "a2", testenv.FileBytes(100, 3), nil)
	mustUpload(t, alice, "a3", testenv.FileBytes(100, 4), nil)
	refused(alice, "a4", 10, "over the account's file count")

	// alice holds 6200 bytes; bob may store up to 10000 himself, but only
	// 8800 more fit under the global 15000.
	refused(bob, "b1", 8801, "over the global limit")
	mustUpload(t, bob, "b1", testenv.FileBytes(8800, 5), nil)
	refused(bob, "b2", 1, "server full to the byte")

	for _, u := range []string{"alice", "bob"} {
		if temps := uploadTemps(t, srv.Home(u)); len(temps) != 0 {
			t.Errorf("%s: temporary files left by refused uploads: %v", u, temps)
		}
	}
}
