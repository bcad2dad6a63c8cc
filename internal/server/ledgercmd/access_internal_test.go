package ledgercmd

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// countingStore is the real bolt store, counting the read transactions of
// the one part it is given to (the accounts).
type countingStore struct {
	store.Store
	views atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(store.ReadTx) error) error {
	c.views.Add(1)
	return c.Store.View(ctx, fn)
}

// servePrivateChain runs a TCP server with the ledger commands on a new
// data directory whose accounts go through a countingStore, with a private
// chain p: the parts opened as internal/node opens them (which imports this
// package), with cheap password hashing.
func servePrivateChain(t *testing.T) (addr string, accounts *auth.Store, counted *countingStore) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dir := datadir.New(t.TempDir())
	id, _, err := secure.LoadOrCreateIdentity(dir.Root())
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.OpenFile(ctx, dir.DBPath(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pool, err := secure.OpenPool(dir.Root(), id, 8, 24*time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := auth.LoadOrCreateSecretKey(dir.Root())
	if err != nil {
		t.Fatal(err)
	}
	counted = &countingStore{Store: st}
	accounts, err = auth.New(counted, auth.Options{Argon: auth.TestArgon2, SecretKey: secret, ServerID: id.ServerID, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := files.New(dir.FilesDir(), files.Quotas{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Logger: log, HeadsFile: dir.HeadsPath()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateChain(ctx, "p", false, 0, ""); err != nil {
		t.Fatal(err)
	}
	setup := dir.SetupToken()
	if _, err := setup.Ensure(false); err != nil {
		t.Fatal(err)
	}
	table := server.NewTable()
	Register(table)
	srv, err := server.New(server.Config{Logger: log}, server.Parts{Identity: id, Pool: pool, Accounts: accounts,
		Files: fs, Ledger: l, SetupToken: setup, Commands: table})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), accounts, counted
}

// rput on a private chain resolves it once: one ledger lookup (memory) and
// one access decision, a single read transaction of the accounts, where it
// took up to seven (visibility twice over the four rights, the write right,
// manage) before.
func TestRputOnAPrivateChainReadsTheAccountsOnce(t *testing.T) {
	addr, accounts, counted := servePrivateChain(t)
	ctx := context.Background()
	if _, err := accounts.Add(ctx, "walt", "walt-password-1", auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	if err := accounts.Grant(ctx, "walt", "p", auth.RightWrite); err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Add(ctx, "rita", "rita-password-1", auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	if err := accounts.Grant(ctx, "rita", "p", auth.RightRead); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want wire.Code
	}{{"walt", ""}, {"rita", wire.CodePerm}} {
		cl, err := testenv.DialAddr(t, addr, client.Options{NoKnownHosts: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Login(ctx, c.name, c.name+"-password-1"); err != nil {
			t.Fatal(err)
		}
		// The first command after the login fills the generation cache.
		if _, err := cl.Call(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		before := counted.views.Load()
		_, err = cl.Call(ctx, "rput", "p", wire.RawMessage(testenv.NewRecord(t, map[string]any{"by": c.name})))
		testenv.WantCode(t, err, c.want, c.name+": rput")
		if n := counted.views.Load() - before; n != 1 {
			t.Errorf("%s: rput read the accounts in %d transactions, want 1", c.name, n)
		}
	}
}
