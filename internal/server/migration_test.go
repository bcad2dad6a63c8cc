package server_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/canon"
	storebolt "github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
)

// downgradeToLayout1 rewrites a stopped server's ledger.db into layout 1,
// the layout of the releases before chains were keyed by origin
// (docs/formats.md §13): chain buckets at the top level, ledger.chains keyed
// by name with metadata without origin, no layout key.
func downgradeToLayout1(t *testing.T, dataRoot string) []byte {
	t.Helper()
	path := filepath.Join(dataRoot, "ledger.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		id := storebolt.ServerID(tx)
		if err := tx.Bucket([]byte("ledger.meta")).Delete([]byte("layout")); err != nil {
			return err
		}
		chains := storebolt.ChainsBucket(tx)
		old := map[string][]byte{}
		if err := chains.ForEach(func(k, v []byte) error { old[string(k)] = bytes.Clone(v); return nil }); err != nil {
			return err
		}
		origin := tx.Bucket(storebolt.OriginBucketName(id))
		for k, v := range old {
			var m map[string]any
			if err := canon.Unmarshal(v, &m); err != nil {
				return err
			}
			name := m["name"].(string)
			delete(m, "origin")
			b, err := canon.Marshal(m)
			if err != nil {
				return err
			}
			if err := chains.Delete([]byte(k)); err != nil {
				return err
			}
			if err := chains.Put([]byte(name), b); err != nil {
				return err
			}
			if err := tx.MoveBucket(storebolt.ChainBucketName(name), origin, nil); err != nil {
				return err
			}
		}
		return tx.DeleteBucket(storebolt.OriginBucketName(id))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A data directory of the previous release (ledger.db in layout 1) opens
// with this one: the first start migrates it after a byte-identical backup,
// every record and checkpoint is as before, accounts still log in, writes go
// on, and vserv verify is clean.
func TestDataDirectoryOfLayout1IsMigratedAtFirstStart(t *testing.T) {
	e := newLedgerEnv(t, []string{"t"})
	e.srv.AddUser("bob", "bob-password-1", false)
	recs := numbered(t, "n", 0, 5)
	put(t, e.admin, "t", false, recs...)
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = recordID(t, r)
	}
	before, err := e.admin.GetRecords(e.ctx, "t", ids)
	if err != nil {
		t.Fatal(err)
	}
	headBefore := map[string][]byte{}
	for _, ch := range []string{"t", "keys", "audit", "vote"} {
		vals, err := e.admin.Call(e.ctx, "rhead", ch)
		if err != nil {
			t.Fatalf("rhead %s: %v", ch, err)
		}
		headBefore[ch] = vals[0]
	}
	if err := e.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	layout1 := downgradeToLayout1(t, e.srv.DataRoot)

	// vserv verify never writes: it refuses a file it would have to migrate.
	vserv := testenv.Bin(t, "vserv")
	out, errOut, code := runCmd(t, vserv, "verify", "-q", "-r", e.srv.DataRoot)
	if code != 1 || !strings.Contains(errOut, "layout 1") || !strings.Contains(errOut, "start vserv once") {
		t.Fatalf("vserv verify on layout 1: exit %d, want 1 saying how to migrate; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	srv := testenv.Start(t, testenv.WithDataRoot(e.srv.DataRoot))
	waitLog(t, srv, "database migrated")
	backup, err := os.ReadFile(filepath.Join(e.srv.DataRoot, "ledger.db"+storebolt.BackupSuffix))
	if err != nil || !bytes.Equal(backup, layout1) {
		t.Fatalf("backup after the migration: %d bytes (%v), want the %d bytes of the layout 1 file", len(backup), err, len(layout1))
	}
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	after, err := admin.GetRecords(e.ctx, "t", ids)
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("record %d after the migration differs", i)
		}
	}
	for ch, want := range headBefore {
		vals, err := admin.Call(e.ctx, "rhead", ch)
		if err != nil || !bytes.Equal(vals[0], want) {
			t.Errorf("rhead %s after the migration: %v; want the checkpoint from before", ch, err)
		}
	}
	srv.Login("bob", "bob-password-1").Close()
	put(t, admin, "t", true, numbered(t, "n", 5, 2)...)
	if n := chainSize(t, admin, "t"); n != 7 {
		t.Errorf("size of t after one more rput = %d, want 7", n)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCmd(t, vserv, "verify", "-q", "-r", e.srv.DataRoot)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("vserv verify after the migration: exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// The second start finds layout 2 and migrates nothing.
	srv = testenv.Start(t, testenv.WithDataRoot(e.srv.DataRoot))
	srv.Login(testenv.AdminName, testenv.AdminPass).Close()
	if strings.Contains(srv.Stderr(), "migrating") {
		t.Errorf("second start migrated again:\n%s", srv.Stderr())
	}
}
