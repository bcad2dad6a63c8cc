package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// mirrorServer starts a server whose data directory holds b, a batch of
// another home's chain mirrored through the ledger API (as replication
// will), filled while the server is stopped.
func mirrorServer(t *testing.T, b ledger.MirrorBatch) *testenv.Server {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Start(t)
	srv.InitAdmin()
	dir := srv.DataRoot
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	id, _, err := secure.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.OpenFile(ctx, datadir.New(dir).DBPath(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Mirror(ctx, b); err != nil {
		t.Fatalf("mirror into the data directory: %v", err)
	}
	l.Close()
	st.Close()
	return testenv.Start(t, testenv.WithDataRoot(dir))
}

// TestCheckpointCacheHoldsAHomeAndItsMirrorsToOneHistory: the client's
// checkpoint memory is per origin line, so checkpoint 5 of vserv/A/c seen
// at home A makes a mirror B that serves another, shorter history of
// vserv/A/c (signed with A's key too) a rollback, while a mirror serving
// A's own history is accepted; the other way round, a client that saw B's
// history first refuses A's. A client that knows no key of the home is
// told that the mirror's checkpoint goes unchecked.
func TestCheckpointCacheHoldsAHomeAndItsMirrorsToOneHistory(t *testing.T) {
	ctx := context.Background()
	a := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "a", 0, 5)...)
	aID := a.Admin.ServerID()
	full := verify.OriginLine(aID, "c")
	meta := store.ChainMeta{Origin: aID, Name: "c", Public: true}

	// A's own history, as a mirror gets it.
	entries, err := a.Admin.AbsRecords(ctx, "c", []int64{0, 1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	_, head5, err := a.Admin.Consistency(ctx, "c", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	good := mirrorServer(t, ledger.MirrorBatch{Meta: meta, Entries: entries, Checkpoint: []byte(head5), HomeKeys: []ed25519.PublicKey{a.Key}})

	// Another history of vserv/A/c, 3 entries, signed with A's key.
	aIdentity, _, err := secure.LoadOrCreateIdentity(a.Srv.DataRoot)
	if err != nil {
		t.Fatal(err)
	}
	fst, err := bolt.OpenFile(ctx, filepath.Join(t.TempDir(), "fork.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fst.Close()
	fork, err := ledger.Open(ctx, fst, ledger.Config{ServerID: aID, Signer: aIdentity.Key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer fork.Close()
	if err := fork.CreateChain(ctx, "c", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	for _, r := range testenv.Numbered(t, "fork", 0, 3) {
		if _, err := fork.Append(ctx, "c", [][]byte{r}, ledger.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	forked, _ := fork.AbsMany(ctx, "c", []int64{0, 1, 2}, nil)
	_, head3, _ := fork.Consistency(ctx, "c", 0, 0)
	bad := mirrorServer(t, ledger.MirrorBatch{Meta: meta, Entries: forked, Checkpoint: head3, HomeKeys: []ed25519.PublicKey{a.Key}})

	dial := func(srv *testenv.Server, kh string, homeKeys ...ed25519.PublicKey) (*client.Client, *[]string) {
		var mu sync.Mutex
		var notices []string
		c, err := testenv.DialAddr(t, srv.Addr, client.Options{KnownHosts: kh, HomeKeys: homeKeys, Notice: func(m string) {
			mu.Lock()
			defer mu.Unlock()
			notices = append(notices, m)
		}})
		if err != nil {
			t.Fatal(err)
		}
		return c, &notices
	}

	// A first, then the mirrors.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	ca, _ := dial(a.Srv, kh)
	if _, err := ca.Head(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	cg, _ := dial(good, kh)
	if n, err := cg.Head(ctx, full); err != nil || n != head5 {
		t.Fatalf("rhead %s at a mirror of the same history = %q, %v; want A's checkpoint 5", full, n, err)
	}
	cb, _ := dial(bad, kh)
	_, err = cb.Head(ctx, full)
	var rb *client.RollbackError
	if !errors.As(err, &rb) || rb.Origin != full || rb.Cached != head5 {
		t.Fatalf("rhead %s at a mirror of another history after A's checkpoint 5: %v; want a rollback against it", full, err)
	}
	if _, _, err := cb.Consistency(ctx, full, 0, 0); !errors.Is(err, client.ErrRollback) {
		t.Fatalf("rcons at the forked mirror: %v, want a rollback", err)
	}

	// The forked mirror first (A's key given), then A.
	kh2 := filepath.Join(t.TempDir(), "known_hosts")
	cb2, _ := dial(bad, kh2, a.Key)
	if n, err := cb2.Head(ctx, full); err != nil || n != string(head3) {
		t.Fatalf("rhead %s at the forked mirror, fresh cache: %q, %v", full, n, err)
	}
	ca2, _ := dial(a.Srv, kh2)
	if _, err := ca2.Head(ctx, "c"); !errors.As(err, &rb) || rb.Cached != string(head3) {
		t.Fatalf("rhead c at A after the forked mirror's checkpoint 3: %v; want a rollback", err)
	}

	// vcli verifies the mirrored chain with the home's key: from
	// --home-key, or known_hosts after contact with the home.
	_, errOut, code := good.Vcli("", nil, "verify", "chain", full)
	if code == 0 || !strings.Contains(errOut, "whose key is not known") {
		t.Errorf("vcli verify chain %s knowing no key of the home: exit %d, stderr %q", full, code, errOut)
	}
	out, errOut, code := good.Vcli("", nil, "--home-key", a.KeyText(), "verify", "chain", full)
	if code != 0 || !strings.Contains(out, "ok: chain c, 5 entries verified") {
		t.Errorf("vcli --home-key verify chain %s: exit %d\n%s%s", full, code, out, errOut)
	}
	out, errOut, code = good.Vcli("", nil, "--known-hosts", kh, "verify", "chain", full)
	if code != 0 || !strings.Contains(out, "ok: chain c, 5 entries verified") {
		t.Errorf("vcli verify chain %s with A in known_hosts: exit %d\n%s%s", full, code, out, errOut)
	}
	_, errOut, code = good.Vcli("", nil, "--home-key", "nokey", "verify", "chain", full)
	if code != 2 || !strings.Contains(errOut, "--home-key nokey") {
		t.Errorf("vcli --home-key nokey: exit %d, stderr %q; want a usage error", code, errOut)
	}

	// No key of the home known: not tracked, and the person is told.
	cb3, notices := dial(bad, filepath.Join(t.TempDir(), "known_hosts"))
	if _, err := cb3.Head(ctx, full); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(*notices, "\n"); !strings.Contains(got, "not checked against the checkpoint cache: no key of its home "+aID) {
		t.Errorf("notices %q, want one saying the checkpoint goes unchecked", got)
	}
}
