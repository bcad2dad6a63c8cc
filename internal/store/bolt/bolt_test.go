package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/store/storetest"
	"github.com/vserv/vserv/internal/wire"
)

var ctx = context.Background()

func openDB(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func openStore(t *testing.T, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	db := openDB(t, path)
	s, err := bolt.Open(ctx, db, opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	open := func(t *testing.T) store.Store {
		s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	reopen := func(t *testing.T, old store.Store) store.Store {
		path := old.(*bolt.Store).DB().Path()
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		return open2(t, path)
	}
	storetest.Run(t, open, storetest.WithReopen(reopen))
}

func open2(t *testing.T, path string) store.Store {
	s := openStore(t, path, bolt.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// The layout 1 file of the releases before this one, built with bbolt the
// way internal/ledger's store_bolt.go and internal/auth wrote it.

const layout1ID = "c0000000000000000000000000000000000000000000000000000000000000cc"

// layout1Meta is the chain metadata of layout 1: no origin.
type layout1Meta struct {
	Name          string   `cbor:"name"`
	Public        bool     `cbor:"public"`
	PoWBits       int      `cbor:"pow_bits"`
	Schema        string   `cbor:"schema"`
	Authority     []string `cbor:"authority,omitempty"`
	ServerWritten bool     `cbor:"server_written"`
}

func be64(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func id16(n byte) []byte { return bytes.Repeat([]byte{n}, 16) }

// writeLayout1 fills db as the previous release left it: chains vote (a
// schema chain with its state) and audit, two accounts with rights and one
// with 2FA, account generations up to 3.
func writeLayout1(t *testing.T, db *bbolt.DB, extra func(tx *bbolt.Tx) error) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("ledger.meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("server-id"), []byte(layout1ID)); err != nil {
			return err
		}
		chains, err := tx.CreateBucket([]byte("ledger.chains"))
		if err != nil {
			return err
		}
		for _, m := range []layout1Meta{
			{Name: "vote", Public: true, PoWBits: 16, Schema: "vote", Authority: []string{"k1"}},
			{Name: "audit", ServerWritten: true},
		} {
			v, err := wire.Marshal(m)
			if err != nil {
				return err
			}
			if err := chains.Put([]byte(m.Name), v); err != nil {
				return err
			}
			c, err := tx.CreateBucket([]byte("ledger.chain." + m.Name))
			if err != nil {
				return err
			}
			subs := map[string]*bbolt.Bucket{}
			for _, s := range []string{"entries", "ids", "times", "nodes", "checkpoints"} {
				if subs[s], err = c.CreateBucket([]byte(s)); err != nil {
					return err
				}
			}
			for seq := range uint64(3) {
				n := byte(seq + 1)
				puts := []struct {
					b    string
					k, v []byte
				}{
					{"entries", be64(seq), []byte(m.Name + " entry " + string('0'+rune(seq)))},
					{"ids", id16(n), append(be64(seq), bytes.Repeat([]byte{n}, 32)...)},
					{"times", append(be64(1000+seq), be64(seq)...), id16(n)},
					{"nodes", bolt.NodeKey(compact.NewNodeID(0, seq)), bytes.Repeat([]byte{n + 10}, 32)},
				}
				for _, p := range puts {
					if err := subs[p.b].Put(p.k, p.v); err != nil {
						return err
					}
				}
			}
			if err := subs["checkpoints"].Put(be64(0), append([]byte{1}, "note 0"...)); err != nil {
				return err
			}
			if err := subs["checkpoints"].Put(be64(3), append([]byte{0}, "note 3"...)); err != nil {
				return err
			}
			if m.Schema != "" {
				st, err := c.CreateBucket([]byte("state"))
				if err != nil {
					return err
				}
				if err := st.Put([]byte("bt\x00b1"), []byte("counts")); err != nil {
					return err
				}
				if err := c.Put([]byte("state-size"), be64(3)); err != nil {
					return err
				}
			}
		}
		accounts, err := tx.CreateBucket([]byte("auth.accounts"))
		if err != nil {
			return err
		}
		rights, err := tx.CreateBucket([]byte("auth.rights"))
		if err != nil {
			return err
		}
		twofa, err := tx.CreateBucket([]byte("auth.twofa"))
		if err != nil {
			return err
		}
		for range 3 {
			if _, err := accounts.NextSequence(); err != nil {
				return err
			}
		}
		for _, kv := range [][2]string{{"ann", "rec ann"}, {"bob", "rec bob"}} {
			if err := accounts.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		if err := rights.Put([]byte("ann\x00vote"), []byte("write")); err != nil {
			return err
		}
		if err := rights.Put([]byte("bob\x00audit"), []byte("read")); err != nil {
			return err
		}
		if err := twofa.Put([]byte("ann"), []byte("2fa ann")); err != nil {
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// layout1File writes a layout 1 ledger.db and returns its path and bytes.
func layout1File(t *testing.T, extra func(tx *bbolt.Tx) error) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := openDB(t, path)
	writeLayout1(t, db, extra)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

func TestMigrationFromLayout1KeepsEveryRowUnderTheNewKeys(t *testing.T) {
	path, before := layout1File(t, nil)
	var log bytes.Buffer
	s := openStore(t, path, bolt.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer s.Close()

	backup, err := os.ReadFile(path + bolt.BackupSuffix)
	if err != nil {
		t.Fatalf("no backup after the migration: %v", err)
	}
	if !bytes.Equal(backup, before) {
		t.Fatalf("backup (%d bytes) is not byte-identical to the file before the migration (%d bytes)", len(backup), len(before))
	}
	for _, want := range []string{"migrating the database to a new layout", "database migrated", "chains=2"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("migration log does not say %q:\n%s", want, log.String())
		}
	}
	vote := store.ChainKey{Origin: layout1ID, Name: "vote"}
	audit := store.ChainKey{Origin: layout1ID, Name: "audit"}
	err = s.View(ctx, func(tx store.ReadTx) error {
		if id, _ := tx.ServerID(); id != layout1ID {
			t.Errorf("server-id %q", id)
		}
		metas, err := tx.Chains()
		if err != nil {
			return err
		}
		if len(metas) != 2 || metas[0].Key() != audit || metas[1].Key() != vote ||
			!metas[1].Public || metas[1].PoWBits != 16 || metas[1].Schema != "vote" || len(metas[1].Authority) != 1 || !metas[0].ServerWritten {
			t.Errorf("chains after migration: %+v", metas)
		}
		for _, c := range []store.ChainKey{vote, audit} {
			n, err := tx.Size(c)
			if err != nil || n != 3 {
				t.Errorf("%s: size %d, %v", c, n, err)
			}
			for seq := range uint64(3) {
				e, _ := tx.Entry(c, seq)
				ref, ok, _ := tx.LookupID(c, [16]byte(id16(byte(seq+1))))
				h, _ := tx.Nodes(c, []compact.NodeID{compact.NewNodeID(0, seq)})
				if string(e) != c.Name+" entry "+string('0'+rune(seq)) || !ok || ref.Seq != seq || len(h) != 1 || h[0] == nil || h[0][0] != byte(seq+11) {
					t.Errorf("%s seq %d after migration: entry %q, id %+v %v, node %x", c, seq, e, ref, ok, h)
				}
			}
			var times []store.TimeRef
			if err := tx.Times(c, 0, 0, func(r store.TimeRef) (bool, error) { times = append(times, r); return true, nil }); err != nil || len(times) != 3 || times[2].Ms != 1002 {
				t.Errorf("%s time index: %+v, %v", c, times, err)
			}
			cp, ok, _ := tx.LatestCheckpoint(c)
			cp0, ok0, _ := tx.Checkpoint(c, 0)
			if !ok || cp.Size != 3 || string(cp.Note) != "note 3" || !ok0 || cp0.Keep != store.KeepMilestone {
				t.Errorf("%s checkpoints: latest %+v, 0 %+v", c, cp, cp0)
			}
		}
		kv, at, ok, err := tx.AppState(vote)
		if err != nil {
			return err
		}
		v, _ := kv.Get([]byte("bt\x00b1"))
		if !ok || at != 3 || string(v) != "counts" {
			t.Errorf("vote state after migration: at %d ok %v value %q", at, ok, v)
		}
		if r, _ := tx.Account("ann"); string(r) != "rec ann" {
			t.Errorf("account ann %q", r)
		}
		if n, _ := tx.AccountCount(); n != 2 {
			t.Errorf("%d accounts", n)
		}
		if v, _ := tx.Right("ann", "vote"); string(v) != "write" {
			t.Errorf("right ann vote %q", v)
		}
		if v, _ := tx.TwoFA("ann"); string(v) != "2fa ann" {
			t.Errorf("2fa ann %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.WriteTx) error {
		g, err := tx.NextGeneration()
		if err == nil && g <= 3 {
			t.Errorf("NextGeneration after migration = %d, want past the old file's 3", g)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.DB().View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte("ledger.meta")).Get([]byte("layout")); !bytes.Equal(v, be64(bolt.Layout)) {
			t.Errorf("layout key %x, want %d", v, bolt.Layout)
		}
		if tx.Bucket([]byte("ledger.chain.vote")) != nil {
			t.Error("the layout 1 chain bucket is still at the top level")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenDoesNotMigrateAgain(t *testing.T) {
	path, _ := layout1File(t, nil)
	s := openStore(t, path, bolt.Options{})
	if err := s.Update(ctx, func(tx store.WriteTx) error {
		return tx.Append(store.ChainKey{Origin: layout1ID, Name: "audit"}, []store.Row{{Seq: 3, Entry: []byte("after")}})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(path + bolt.BackupSuffix); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s = openStore(t, path, bolt.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer s.Close()
	if _, err := os.Stat(path + bolt.BackupSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second open made a backup again (%v)", err)
	}
	if log.Len() > 0 {
		t.Errorf("second open logged:\n%s", log.String())
	}
	err := s.View(ctx, func(tx store.ReadTx) error {
		n, err := tx.Size(store.ChainKey{Origin: layout1ID, Name: "audit"})
		if n != 4 {
			t.Errorf("audit size %d after reopen, want 4", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFailedMigrationLeavesTheFileUnchanged(t *testing.T) {
	cases := []struct {
		name  string
		extra func(tx *bbolt.Tx) error
		want  string
	}{
		{"chain metadata without bucket", func(tx *bbolt.Tx) error {
			v, _ := wire.Marshal(layout1Meta{Name: "lost"})
			return tx.Bucket([]byte("ledger.chains")).Put([]byte("lost"), v)
		}, `chain "lost" has metadata but no bucket`},
		{"metadata naming another chain", func(tx *bbolt.Tx) error {
			v, _ := wire.Marshal(layout1Meta{Name: "other"})
			return tx.Bucket([]byte("ledger.chains")).Put([]byte("odd"), v)
		}, `metadata names "other"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, before := layout1File(t, tc.extra)
			db := openDB(t, path)
			_, err := bolt.Open(ctx, db, bolt.Options{})
			db.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "unchanged") {
				t.Fatalf("Open of a broken layout 1 file: %v, want an error saying %q and that the file is unchanged", err, tc.want)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Every page, the meta pages included, as before.
			if !bytes.Equal(after, before) {
				t.Fatal("a failed migration changed ledger.db")
			}
		})
	}
}

func TestReadOnlyOpenRefusesLayout1AndWritesNothing(t *testing.T) {
	path, before := layout1File(t, nil)
	db := openDB(t, path)
	_, err := bolt.Open(ctx, db, bolt.Options{ReadOnly: true})
	db.Close()
	if err == nil || !strings.Contains(err.Error(), "layout 1") || !strings.Contains(err.Error(), "start vserv once") {
		t.Fatalf("read-only Open of a layout 1 file: %v, want a refusal that says how to migrate", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("read-only Open changed ledger.db")
	}
	if _, err := os.Stat(path + bolt.BackupSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open made a backup (%v)", err)
	}
	// On a file of this layout, a read-only store reads and refuses writes.
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	p := s.DB().Path()
	s.Close()
	s = openStore(t, p, bolt.Options{ReadOnly: true})
	defer s.Close()
	if err := s.View(ctx, func(tx store.ReadTx) error { _, err := tx.Chains(); return err }); err != nil {
		t.Errorf("View on a read-only store: %v", err)
	}
	if err := s.Update(ctx, func(tx store.WriteTx) error { return tx.SetServerID(layout1ID) }); !errors.Is(err, bolt.ErrReadOnly) {
		t.Errorf("Update on a read-only store: %v, want ErrReadOnly", err)
	}
}

func TestLayout2FileWithoutThePeerTableGetsItAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openStore(t, path, bolt.Options{})
	if err := s.DB().Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("replic.peers")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro := openStore(t, path, bolt.Options{ReadOnly: true})
	if err := ro.View(ctx, func(tx store.ReadTx) error {
		v, err := tx.Peer("mirror\x00b:6666")
		if err != nil || v != nil {
			t.Errorf("read-only Peer without the bucket = %q, %v; want nil, nil", v, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ro.Close()

	s = openStore(t, path, bolt.Options{})
	if err := s.Update(ctx, func(tx store.WriteTx) error { return tx.PutPeer("mirror\x00b:6666", []byte("p")) }); err != nil {
		t.Fatalf("PutPeer after reopening a file without the peer table: %v", err)
	}
	s.Close()
}
