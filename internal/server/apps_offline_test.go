package server_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/store"
	storebolt "github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// What happens to the rules' state behind the server's back: a forbidden
// event written into ledger.db directly, a state bucket lost, a data
// directory from the release before schemas. The bucket layout is
// internal/store/bolt's (docs/formats.md), reached into on purpose.

// editDB stops nothing: the server must be stopped. It runs fn in one bbolt
// write transaction on the data directory's ledger.db.
func editDB(t *testing.T, dataRoot string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataRoot, "ledger.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// voteChainT makes chain t with schema vote, a ballot, a voter and its cast,
// and stops the server.
func voteChainT(t *testing.T) (*appsEnv, string) {
	e := newAppsEnv(t)
	if err := e.mkchain("t", map[string]any{"public": true, "schema": "vote"}); err != nil {
		t.Fatal(err)
	}
	e.mustPut(e.Admin, "t", e.event("t", "ballot.open", map[string]any{"ballot": "b1", "question": "?", "choices": []any{"yes", "no"}}, nil))
	eid := e.mustPut(e.Admin, "t", e.event("t", "vote.register", map[string]any{"voter_id": "alice"}, nil))[0].EID
	e.mustPut(e.Admin, "t", e.event("t", "vote.cast", map[string]any{"eid": eid, "ballot": "b1", "choice": "yes"}, nil))
	return e, eid
}

func TestForbiddenEventWrittenBehindTheCommitterFailsVerify(t *testing.T) {
	e, eid := voteChainT(t)
	second := e.event("t", "vote.cast", map[string]any{"eid": eid, "ballot": "b1", "choice": "no"}, nil)
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// The second cast, appended as the committer would have: entry 3 linked
	// to entry 2, then every leaf, node and id redone.
	editDB(t, e.Srv.DataRoot, func(tx *bolt.Tx) error {
		entries := testenv.LedgerBucket(tx, "t", "entries")
		last, _, err := verify.ParseEntry(entries.Get(testenv.BE64(2)))
		if err != nil {
			return err
		}
		b, err := verify.EncodeEntry(verify.Entry{V: verify.EntryVersion, Seq: 3, Time: last.Time + 1,
			Chain: "t", Origin: last.Origin, Record: second})
		if err != nil {
			return err
		}
		if err := entries.Put(testenv.BE64(3), b); err != nil {
			return err
		}
		testenv.RehashAll(t, tx, "t")
		return nil
	})
	out, errOut, code := testenv.RunCmd(t, testenv.Bin(t, "vserv"), "verify", "-q", "-r", e.Srv.DataRoot)
	if code != 1 {
		t.Fatalf("vserv verify: exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	want := "chain t seq 3: rules: the recorded event breaks rule one-active-cast: vote.cast: "
	if !strings.Contains(out, want) {
		t.Fatalf("vserv verify does not report %q; it printed:\n%s", want, out)
	}
}

func TestCleanSchemaChainsPassVerify(t *testing.T) {
	e, _ := voteChainT(t)
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := testenv.RunCmd(t, testenv.Bin(t, "vserv"), "verify", "-q", "-r", e.Srv.DataRoot)
	if code != 0 {
		t.Fatalf("vserv verify of an untouched data directory: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestStoredViewAlteredFailsVerify(t *testing.T) {
	e, _ := voteChainT(t)
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Any change to a stored state value must show as a view that differs
	// from the replay.
	editDB(t, e.Srv.DataRoot, func(tx *bolt.Tx) error {
		st := testenv.ChainBucket(tx, "", "t").Bucket([]byte("state"))
		var changed bool
		c := st.Cursor()
		for k, v := c.First(); k != nil && !changed; k, v = c.Next() {
			var n uint64
			if canon.Unmarshal(v, &n) == nil && n == 1 {
				nv, _ := canon.Marshal(uint64(7)) // a count of one made seven
				if err := st.Put(bytes.Clone(k), nv); err != nil {
					return err
				}
				changed = true
				break
			}
			var m map[string]any
			if canon.Unmarshal(v, &m) != nil {
				continue
			}
			for f, x := range m {
				if x == uint64(1) {
					m[f] = uint64(7) // a count of one made seven
					nv, err := canon.Marshal(m)
					if err != nil {
						return err
					}
					if err := st.Put(bytes.Clone(k), nv); err != nil {
						return err
					}
					changed = true
					break
				}
			}
		}
		if !changed {
			t.Fatal("no stored state value holds a count to alter")
		}
		return nil
	})
	out, errOut, code := testenv.RunCmd(t, testenv.Bin(t, "vserv"), "verify", "-q", "-r", e.Srv.DataRoot)
	if code != 1 || !strings.Contains(out, "rules: stored views differ from the replay") {
		t.Fatalf("vserv verify after a stored view was altered: exit %d, want 1 naming the view; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestViewsRebuiltAtStartWhenStateIsMissing(t *testing.T) {
	e, _ := voteChainT(t)
	before, size := e.mustView("t", "tally", map[string]any{"ballot": "b1"})
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	editDB(t, e.Srv.DataRoot, func(tx *bolt.Tx) error {
		c := testenv.ChainBucket(tx, "", "t")
		if err := c.DeleteBucket([]byte("state")); err != nil {
			return err
		}
		return c.Delete([]byte("state-size"))
	})
	srv := testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	testenv.WaitLog(t, srv, "rebuilding the views of a chain from its entries")
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	after, at, err := view(e.Ctx, admin, "t", "tally", map[string]any{"ballot": "b1"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := canon.Marshal(before)
	b, _ := canon.Marshal(after)
	if at != size || !bytes.Equal(a, b) {
		t.Fatalf("rebuilt tally %v at %d, want %v at %d", after, at, before, size)
	}
}

// TestOldDataDirGetsDefaultSchemas: a data directory of the release before
// schemas has vote, donation and resource without one; at start the empty
// ones get theirs, and one that already holds records keeps none and says so.
func TestOldDataDirGetsDefaultSchemas(t *testing.T) {
	e := newAppsEnv(t)
	// pow_bits 16 on the default chains: solved by the client's helper.
	rec, err := client.NewRecord(map[string]any{"fund": "f", "name": "F", "unit": "EUR-cent"}, "fund.open", 16, client.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, e.Admin, "donation", false, rec)
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	editDB(t, e.Srv.DataRoot, func(tx *bolt.Tx) error {
		chains := storebolt.ChainsBucket(tx)
		for _, name := range []string{"vote", "donation", "resource"} {
			key := storebolt.ChainsKey(store.ChainKey{Origin: storebolt.ServerID(tx), Name: name})
			var m map[string]any
			if err := canon.Unmarshal(chains.Get(key), &m); err != nil {
				return err
			}
			m["schema"] = ""
			b, err := canon.Marshal(m)
			if err != nil {
				return err
			}
			if err := chains.Put(key, b); err != nil {
				return err
			}
			c := testenv.ChainBucket(tx, "", name)
			if c.Bucket([]byte("state")) != nil {
				if err := c.DeleteBucket([]byte("state")); err != nil {
					return err
				}
			}
			if err := c.Delete([]byte("state-size")); err != nil {
				return err
			}
		}
		return nil
	})
	srv := testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	testenv.WaitLog(t, srv, "default chain keeps no schema")
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	vals, err := admin.Call(e.Ctx, "chains")
	if err != nil {
		t.Fatal(err)
	}
	var chains []map[string]any
	if err := canon.Unmarshal(vals[0], &chains); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"vote": "vote", "resource": "resource", "donation": nil}
	for _, c := range chains {
		if w, ok := want[c["name"].(string)]; ok && c["schema"] != w {
			t.Errorf("after start on an old data directory, chain %s has schema %v, want %v", c["name"], c["schema"], w)
		}
	}
	if !strings.Contains(srv.Stderr(), `chain=donation`) {
		t.Errorf("the log does not name donation:\n%s", srv.Stderr())
	}
}
