package ledger

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Rollbacks: a database that is a consistent, correctly signed, shorter or
// older history passes every check inside it (TestTamperMatrix's last case).
// The heads file outside it is what makes the ledger refuse to sign on top.

// newHeadsEnv is newEnv with a heads file beside ledger.db.
func newHeadsEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, path: filepath.Join(dir, "ledger.db"), clock: &testClock{}, heads: filepath.Join(dir, HeadsFileName)}
	e.clock.ms.Store(1_700_000_000_000)
	e.open()
	if err := e.l.CreateChain(context.Background(), "t", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close() })
	return e
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tamperDB(t *testing.T, e *env, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	e.close()
	db := openDB(t, e.path)
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// deleteTail rolls chain t back to size n the way a careful operator would:
// entries and the newer checkpoints go, the older checkpoint stays newest.
func deleteTail(n uint64) func(tx *bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		entries, cps := chainBucket(tx, subEntries), chainBucket(tx, subCheckpoints)
		for s := n; entries.Get(u64(s)) != nil; s++ {
			if err := entries.Delete(u64(s)); err != nil {
				return err
			}
		}
		c := cps.Cursor()
		for k, _ := c.Seek(u64(n + 1)); k != nil; k, _ = c.Seek(u64(n + 1)) {
			if err := cps.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
}

func wantRollbackRefusal(t *testing.T, err error, want ...string) {
	t.Helper()
	we := testenv.WantCode(t, err, wire.CodeConflict, "")
	for _, w := range append(want, "looks like a restored or truncated database", "vserv resume") {
		if !strings.Contains(we.Text, w) {
			t.Errorf("refusal %q does not say %q", we.Text, w)
		}
	}
}

func TestRollbackIsRefusedByTheHeadsFile(t *testing.T) {
	cases := []struct {
		name string
		// roll rolls the stopped ledger back after 10 and then 30 entries.
		roll func(t *testing.T, e *env, db10 string)
		want []string
	}{
		{
			name: "tail deleted",
			roll: func(t *testing.T, e *env, _ string) { tamperDB(t, e, deleteTail(10)) },
			want: []string{"the database has size 10", "already signed size 30"},
		},
		{
			name: "tail deleted, no checkpoint of that size left",
			roll: func(t *testing.T, e *env, _ string) {
				tamperDB(t, e, func(tx *bbolt.Tx) error {
					if err := deleteTail(10)(tx); err != nil {
						return err
					}
					return chainBucket(tx, subCheckpoints).Delete(u64(10))
				})
			},
			want: []string{"the database holds 10 entries", "already signed size 30"},
		},
		{
			name: "older copy of ledger.db restored",
			roll: func(t *testing.T, e *env, db10 string) { e.close(); copyFile(t, db10, e.path) },
			want: []string{"the database has size 10", "already signed size 30"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newKeptHeadsEnv(t)
			db10 := filepath.Join(t.TempDir(), "ledger.db.10")
			e.close()
			copyFile(t, e.path, db10)
			e.open()
			e.appendN("t", 10, 20)
			tc.roll(t, e, db10)
			e.open()
			if size, _ := e.l.Size(ctx, "t"); size != 10 {
				t.Fatalf("after the rollback the chain has %d entries, want 10", size)
			}
			_, err := e.l.Append(ctx, "t", [][]byte{rec(t, 100, 1)}, AppendOptions{})
			wantRollbackRefusal(t, err, tc.want...)
			// A restart does not forget: the heads file kept its evidence.
			e.reopen()
			_, err = e.l.Append(ctx, "t", [][]byte{rec(t, 101, 1)}, AppendOptions{})
			wantRollbackRefusal(t, err, tc.want...)
		})
	}
}

// newKeptHeadsEnv is a heads env whose chain t has 10 entries.
func newKeptHeadsEnv(t *testing.T) *env {
	e := newHeadsEnv(t)
	e.appendN("t", 0, 10)
	// Kept, as milestones and cosigned checkpoints are: the rollback to it
	// is then consistent and passes every check inside the database.
	if err := e.l.KeepCheckpoint(ctx, "t", 10, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDeletedChainCannotBeRecreatedOverTheHeadsFile(t *testing.T) {
	e := newKeptHeadsEnv(t)
	tamperDB(t, e, func(tx *bbolt.Tx) error {
		return testenv.DeleteChain(tx, testServerID, "t")
	})
	e.open()
	if _, err := e.l.Chain("t"); wire.CodeOf(err) != wire.CodeNotFound {
		t.Fatalf("chain t after deleting it: %v, want ERR notfound", err)
	}
	err := e.l.CreateChain(ctx, "t", true, 0, "")
	wantRollbackRefusal(t, err, "chain t is missing from the database", "size 10")
}

func TestDeletedDefaultChainIsNotRecreatedEmpty(t *testing.T) {
	e := newHeadsEnv(t)
	if err := e.l.EnsureDefaultChains(ctx); err != nil {
		t.Fatal(err)
	}
	tamperDB(t, e, func(tx *bbolt.Tx) error {
		return testenv.DeleteChain(tx, testServerID, "audit")
	})
	e.open()
	if err := e.l.EnsureDefaultChains(ctx); err != nil {
		t.Fatalf("EnsureDefaultChains: %v (a lost chain is logged and skipped, not fatal)", err)
	}
	if _, err := e.l.Chain("audit"); wire.CodeOf(err) != wire.CodeNotFound {
		t.Fatalf("audit was recreated over the heads file (err %v)", err)
	}
}

// A crash between the commit and the heads file's rename leaves the file
// behind the database: that must be accepted, not taken for a rollback.
func TestHeadsFileBehindTheDatabaseIsAccepted(t *testing.T) {
	e := newKeptHeadsEnv(t)
	old := filepath.Join(t.TempDir(), "heads.10")
	copyFile(t, e.heads, old)
	e.appendN("t", 10, 20)
	e.close()
	copyFile(t, old, e.heads)
	e.open()
	if _, err := e.l.Append(ctx, "t", [][]byte{rec(t, 100, 1)}, AppendOptions{}); err != nil {
		t.Fatalf("append with a heads file behind the database: %v", err)
	}
	if err := e.l.SyncHeads(ctx); err != nil {
		t.Fatal(err)
	}
	heads, _, err := ReadHeads(e.heads)
	if err != nil {
		t.Fatal(err)
	}
	if got := heads["t"].Size; got != 31 {
		t.Fatalf("heads file records size %d for t, want 31", got)
	}
}

// The heads file, behind the database, still catches a database whose tree
// at the recorded size has another root: a fork.
func TestDatabaseForkedBelowTheHeadsFileIsRefused(t *testing.T) {
	e := newKeptHeadsEnv(t)
	db10 := filepath.Join(t.TempDir(), "ledger.db.10")
	heads10 := filepath.Join(t.TempDir(), "heads.10")
	e.close()
	copyFile(t, e.path, db10)
	e.open()
	e.appendN("t", 10, 5) // signed: size 15
	if err := e.l.SyncHeads(ctx); err != nil {
		t.Fatal(err)
	}
	copyFile(t, e.heads, heads10)
	// Back to size 10 and a different future, without the heads file.
	e.close()
	copyFile(t, db10, e.path)
	e.heads = ""
	e.open()
	e.appendN("t", 50, 10) // size 20, another entry at 10
	e.close()
	e.heads = filepath.Join(filepath.Dir(e.path), HeadsFileName)
	copyFile(t, heads10, e.heads)
	e.open()
	_, err := e.l.Append(ctx, "t", [][]byte{rec(t, 100, 1)}, AppendOptions{})
	wantRollbackRefusal(t, err, "tree at size 15 has root")
}

func TestVerifyExpectedReportsRollbacks(t *testing.T) {
	e := newKeptHeadsEnv(t)
	cp10, err := e.l.Head(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	e.appendN("t", 10, 20)
	cp30, err := e.l.Head(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	check := func(exps ...Expected) []Fault {
		t.Helper()
		st := openStore(t, e.path)
		defer st.Close()
		faults, err := VerifyExpected(ctx, st, testPub(), exps)
		if err != nil {
			t.Fatal(err)
		}
		return faults
	}
	e.close()
	if f := check(Expected{Source: "cp10", Note: cp10}, Expected{Source: "cp30", Note: cp30}); len(f) != 0 {
		t.Fatalf("intact database: faults %v", f)
	}
	tamperDB(t, e, deleteTail(10))
	f := check(Expected{Source: "cp10", Note: cp10}, Expected{Source: "cp30", Note: cp30})
	if len(f) != 1 || f[0].Chain != "t" || f[0].Seq != 30 ||
		!strings.Contains(f[0].What, "rollback: cp30: chain t: the database has size 10") ||
		!strings.Contains(f[0].What, "already signed size 30") {
		t.Fatalf("rolled-back database: faults %v, want one rollback fault at size 30 from cp30", f)
	}
	heads, _, err := ReadHeads(e.heads)
	if err != nil {
		t.Fatal(err)
	}
	f = check(Expected{Source: "heads file", Chain: "t", Head: heads["t"]})
	if len(f) != 1 || !strings.Contains(f[0].What, "rollback: heads file: chain t") {
		t.Fatalf("against the heads file: faults %v", f)
	}
	f = check(Expected{Source: "forged", Note: []byte(strings.Replace(string(cp30), "\n30\n", "\n31\n", 1))})
	if len(f) != 1 || !strings.Contains(f[0].What, "does not verify") {
		t.Fatalf("a forged checkpoint: faults %v", f)
	}
}
