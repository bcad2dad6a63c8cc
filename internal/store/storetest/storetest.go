// Package storetest is the conformance suite of store.Store: what every
// storage backend must do, written against the interfaces only, so that
// store/bolt and any later backend (PostgreSQL) run the very same tests.
//
// A backend's test calls Run with a function that opens a new, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... }, storetest.WithReopen(...))
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vserv/vserv/internal/store"
)

// Option adds to what Run checks.
type Option func(*suite)

// WithReopen gives the suite a way to close a store and open the same data
// again, for the checks that must hold across a restart (NextGeneration).
func WithReopen(reopen func(t *testing.T, s store.Store) store.Store) Option {
	return func(su *suite) { su.reopen = reopen }
}

type suite struct {
	open   func(t *testing.T) store.Store
	reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the conformance suite. open must return a new, empty store each
// time it is called, closed when the test ends.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	su := &suite{open: open}
	for _, o := range opts {
		o(su)
	}
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"ServerIDIsEmptyUntilSet", testServerID},
		{"AppendedRowsReadBackInOrder", testAppends},
		{"IDIndexFindsEverySeqAndHash", testIDIndex},
		{"TimeIndexSeeksAndStops", testTimeIndex},
		{"NodesReadInOneBatchMissingIsNil", testNodes},
		{"CheckpointsLatestBySizeDeleteAndKeepFlags", testCheckpoints},
		{"ChainsOfTwoOriginsAreIndependent", testChains},
		{"UnknownChainIsErrNoChain", testNoChain},
		{"ForksKeptPerChainInOrderEvenWithoutTheChain", testForks},
		{"AppStateRoundTripsAndResets", testAppState},
		{"AccountsPutGetDelete", testAccounts},
		{"RightsArePerAccountEvenForPrefixNames", testRights},
		{"TwoFAPutGetDelete", testTwoFA},
		{"PeersPutGetDeleteList", testPeers},
		{"NextGenerationStrictlyIncreases", testGenerations},
		{"OnCommitRunsOnlyAfterCommit", testOnCommit},
		{"FailedUpdateLeavesNoTrace", testRollback},
		{"CancelledUpdateLeavesNoTrace", testCancelled},
		{"WitnessStatePerOriginOverwritesAndRollsBack", testWitnessState},
		{"WitnessForksAppendInOrder", testWitnessForks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, su.open(t)) })
	}
	if su.reopen != nil {
		t.Run("NextGenerationStrictlyIncreasesAcrossReopen", func(t *testing.T) {
			s := su.open(t)
			a := nextGen(t, s)
			s = su.reopen(t, s)
			if b := nextGen(t, s); b <= a {
				t.Fatalf("NextGeneration after reopen = %d, want more than %d", b, a)
			}
		})
		t.Run("WitnessStateSurvivesReopen", func(t *testing.T) {
			s := su.open(t)
			want := store.WitnessState{Size: 9, Root: [32]byte{9}, Note: []byte("note 9")}
			update(t, s, func(tx store.WriteTx) error { return tx.PutWitnessState("log.example/a", want) })
			s = su.reopen(t, s)
			checkWitnessState(t, s, "log.example/a", want, true)
		})
	}
}

var ctx = context.Background()

var (
	originA = "a0000000000000000000000000000000000000000000000000000000000000aa"
	originB = "b0000000000000000000000000000000000000000000000000000000000000bb"
	chainA  = store.ChainKey{Origin: originA, Name: "t"}
	chainB  = store.ChainKey{Origin: originB, Name: "t"}
)

func update(t *testing.T, s store.Store, fn func(store.WriteTx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s store.Store, fn func(store.ReadTx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func putChain(t *testing.T, s store.Store, c store.ChainKey) {
	t.Helper()
	update(t, s, func(tx store.WriteTx) error {
		return tx.PutChain(store.ChainMeta{Origin: c.Origin, Name: c.Name, Public: true})
	})
}

func row(seq uint64) store.Row {
	r := store.Row{Seq: seq, Entry: fmt.Appendf(nil, "entry %d", seq), Ms: 1000 + seq/2}
	r.ID[0], r.ID[15] = 0x77, byte(seq)
	r.RecordHash[0], r.RecordHash[31] = 0x55, byte(seq)
	return r
}

func rows(from, n uint64) []store.Row {
	out := make([]store.Row, 0, n)
	for s := from; s < from+n; s++ {
		out = append(out, row(s))
	}
	return out
}

func testServerID(t *testing.T, s store.Store) {
	view(t, s, func(tx store.ReadTx) error {
		if id, err := tx.ServerID(); err != nil || id != "" {
			t.Errorf("ServerID of a new store = %q, %v; want empty", id, err)
		}
		return nil
	})
	update(t, s, func(tx store.WriteTx) error { return tx.SetServerID(originA) })
	view(t, s, func(tx store.ReadTx) error {
		if id, err := tx.ServerID(); err != nil || id != originA {
			t.Errorf("ServerID = %q, %v; want %s", id, err, originA)
		}
		return nil
	})
}

func testAppends(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	view(t, s, func(tx store.ReadTx) error {
		if n, err := tx.Size(chainA); err != nil || n != 0 {
			t.Errorf("Size of a new chain = %d, %v; want 0", n, err)
		}
		return nil
	})
	update(t, s, func(tx store.WriteTx) error { return tx.Append(chainA, rows(0, 3)) })
	update(t, s, func(tx store.WriteTx) error { return tx.Append(chainA, rows(3, 4)) })
	view(t, s, func(tx store.ReadTx) error {
		if n, err := tx.Size(chainA); err != nil || n != 7 {
			t.Errorf("Size after 3+4 rows = %d, %v; want 7", n, err)
		}
		for seq := range uint64(7) {
			e, err := tx.Entry(chainA, seq)
			if err != nil || !bytes.Equal(e, row(seq).Entry) {
				t.Errorf("Entry %d = %q, %v; want %q", seq, e, err, row(seq).Entry)
			}
		}
		if e, err := tx.Entry(chainA, 7); err != nil || e != nil {
			t.Errorf("Entry past the end = %q, %v; want nil", e, err)
		}
		var seqs []uint64
		err := tx.Entries(chainA, 2, func(seq uint64, e []byte) (bool, error) {
			if !bytes.Equal(e, row(seq).Entry) {
				t.Errorf("Entries gave %q at seq %d", e, seq)
			}
			seqs = append(seqs, seq)
			return seq < 5, nil
		})
		if err != nil || !slices.Equal(seqs, []uint64{2, 3, 4, 5}) {
			t.Errorf("Entries from 2 until seq 5 = %v, %v; want [2 3 4 5]", seqs, err)
		}
		stop := errors.New("stop")
		if err := tx.Entries(chainA, 0, func(uint64, []byte) (bool, error) { return true, stop }); !errors.Is(err, stop) {
			t.Errorf("Entries does not return fn's error: %v", err)
		}
		return nil
	})
}

func testIDIndex(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	update(t, s, func(tx store.WriteTx) error { return tx.Append(chainA, rows(0, 5)) })
	view(t, s, func(tx store.ReadTx) error {
		for seq := range uint64(5) {
			r := row(seq)
			ref, ok, err := tx.LookupID(chainA, r.ID)
			if err != nil || !ok || ref.Seq != seq || ref.Hash != r.RecordHash {
				t.Errorf("LookupID of row %d = %+v %v %v", seq, ref, ok, err)
			}
		}
		if _, ok, err := tx.LookupID(chainA, [16]byte{1}); err != nil || ok {
			t.Errorf("LookupID of an unknown id = %v, %v; want not found", ok, err)
		}
		return nil
	})
}

func testTimeIndex(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	update(t, s, func(tx store.WriteTx) error { return tx.Append(chainA, rows(0, 6)) }) // ms 1000 1000 1001 1001 1002 1002
	view(t, s, func(tx store.ReadTx) error {
		var got []store.TimeRef
		err := tx.Times(chainA, 1001, 3, func(r store.TimeRef) (bool, error) {
			got = append(got, r)
			return len(got) < 2, nil
		})
		want := []store.TimeRef{{Ms: 1001, Seq: 3, ID: row(3).ID}, {Ms: 1002, Seq: 4, ID: row(4).ID}}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Times from (1001, 3), two rows = %+v, %v; want %+v", got, err, want)
		}
		n := 0
		err = tx.Times(chainA, 2000, 0, func(store.TimeRef) (bool, error) { n++; return true, nil })
		if err != nil || n != 0 {
			t.Errorf("Times past the last row gave %d rows, %v", n, err)
		}
		return nil
	})
}

func testNodes(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	ids := []compact.NodeID{compact.NewNodeID(0, 0), compact.NewNodeID(0, 1), compact.NewNodeID(1, 0), compact.NewNodeID(0, 2)}
	hash := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 32) }
	update(t, s, func(tx store.WriteTx) error {
		nodes := make([]store.Node, len(ids))
		for i, id := range ids {
			nodes[i] = store.Node{ID: id, Hash: hash(i)}
		}
		return tx.PutNodes(chainA, nodes)
	})
	view(t, s, func(tx store.ReadTx) error {
		ask := []compact.NodeID{ids[2], compact.NewNodeID(2, 0), ids[0], ids[3], compact.NewNodeID(0, 9)}
		got, err := tx.Nodes(chainA, ask)
		want := [][]byte{hash(2), nil, hash(0), hash(3), nil}
		if err != nil || !slices.EqualFunc(got, want, bytes.Equal) || got[1] != nil || got[4] != nil {
			t.Errorf("Nodes in the order asked, missing nil = %x, %v; want %x", got, err, want)
		}
		if got, err := tx.Nodes(chainA, nil); err != nil || len(got) != 0 {
			t.Errorf("Nodes of none = %v, %v", got, err)
		}
		return nil
	})
}

func testCheckpoints(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	view(t, s, func(tx store.ReadTx) error {
		if _, ok, err := tx.LatestCheckpoint(chainA); err != nil || ok {
			t.Errorf("LatestCheckpoint of a new chain: %v, %v; want none", ok, err)
		}
		return nil
	})
	cps := []store.StoredCheckpoint{
		{Size: 0, Note: []byte("note 0"), Keep: store.KeepMilestone},
		{Size: 5, Note: []byte("note 5")},
		{Size: 1000, Note: []byte("note 1000"), Keep: store.KeepMilestone | store.KeepExplicit},
		{Size: 1002, Note: []byte("note 1002"), Keep: store.KeepExplicit, Cosignatures: []byte("— w1 abc\n— w2 def\n")},
	}
	update(t, s, func(tx store.WriteTx) error {
		for _, cp := range cps {
			if err := tx.PutCheckpoint(chainA, cp); err != nil {
				return err
			}
		}
		return tx.DeleteCheckpoint(chainA, 5)
	})
	kept := []store.StoredCheckpoint{cps[0], cps[2], cps[3]}
	view(t, s, func(tx store.ReadTx) error {
		for _, want := range kept {
			got, ok, err := tx.Checkpoint(chainA, want.Size)
			if err != nil || !ok || !sameCheckpoint(got, want) {
				t.Errorf("Checkpoint %d = %+v %v %v; want %+v", want.Size, got, ok, err, want)
			}
		}
		if _, ok, err := tx.Checkpoint(chainA, 5); err != nil || ok {
			t.Errorf("deleted checkpoint 5 still found (%v)", err)
		}
		latest, ok, err := tx.LatestCheckpoint(chainA)
		if err != nil || !ok || !sameCheckpoint(latest, cps[3]) {
			t.Errorf("LatestCheckpoint = %+v %v %v; want size 1002", latest, ok, err)
		}
		var all []store.StoredCheckpoint
		err = tx.Checkpoints(chainA, func(cp store.StoredCheckpoint) error {
			cp.Note, cp.Cosignatures = bytes.Clone(cp.Note), bytes.Clone(cp.Cosignatures)
			all = append(all, cp)
			return nil
		})
		if err != nil || !slices.EqualFunc(all, kept, sameCheckpoint) {
			t.Errorf("Checkpoints = %+v, %v; want %+v by increasing size", all, err, kept)
		}
		return nil
	})
	// Replacing a checkpoint (a cosigned note, a keep flag) overwrites it.
	update(t, s, func(tx store.WriteTx) error {
		return tx.PutCheckpoint(chainA, store.StoredCheckpoint{Size: 0, Note: []byte("note 0 cosigned"), Keep: store.KeepExplicit})
	})
	view(t, s, func(tx store.ReadTx) error {
		got, _, err := tx.Checkpoint(chainA, 0)
		if err != nil || string(got.Note) != "note 0 cosigned" || got.Keep != store.KeepExplicit {
			t.Errorf("replaced checkpoint 0 = %+v, %v", got, err)
		}
		return nil
	})
}

func sameCheckpoint(a, b store.StoredCheckpoint) bool {
	return a.Size == b.Size && a.Keep == b.Keep && bytes.Equal(a.Note, b.Note) && bytes.Equal(a.Cosignatures, b.Cosignatures)
}

func testChains(t *testing.T, s store.Store) {
	metaA := store.ChainMeta{Origin: originA, Name: "t", Public: true, PoWBits: 16, Schema: "vote", Authority: []string{"key one", "key two"}}
	metaB := store.ChainMeta{Origin: originB, Name: "t", ServerWritten: true}
	metaA2 := store.ChainMeta{Origin: originA, Name: "u"}
	update(t, s, func(tx store.WriteTx) error {
		for _, m := range []store.ChainMeta{metaB, metaA2, metaA} {
			if err := tx.PutChain(m); err != nil {
				return err
			}
		}
		if err := tx.Append(chainA, rows(0, 3)); err != nil {
			return err
		}
		return tx.Append(chainB, []store.Row{{Seq: 0, Entry: []byte("b's own"), ID: row(0).ID, RecordHash: [32]byte{9}}})
	})
	view(t, s, func(tx store.ReadTx) error {
		metas, err := tx.Chains()
		want := []store.ChainMeta{metaA, metaA2, metaB}
		if err != nil || !slices.EqualFunc(metas, want, sameMeta) {
			t.Errorf("Chains = %+v, %v; want %+v (by origin, then name)", metas, err, want)
		}
		na, _ := tx.Size(chainA)
		nb, _ := tx.Size(chainB)
		eb, _ := tx.Entry(chainB, 0)
		ref, _, _ := tx.LookupID(chainB, row(0).ID)
		if na != 3 || nb != 1 || string(eb) != "b's own" || ref.Hash != [32]byte{9} {
			t.Errorf("one name under two origins: sizes %d and %d (want 3, 1), B's entry %q, B's id ref %+v", na, nb, eb, ref)
		}
		return nil
	})
	// PutChain on an existing chain replaces its metadata, not its entries.
	metaA.Public, metaA.Authority = false, nil
	update(t, s, func(tx store.WriteTx) error { return tx.PutChain(metaA) })
	view(t, s, func(tx store.ReadTx) error {
		metas, _ := tx.Chains()
		n, _ := tx.Size(chainA)
		if len(metas) != 3 || !sameMeta(metas[0], metaA) || n != 3 {
			t.Errorf("after replacing A's metadata: %+v, size %d", metas, n)
		}
		return nil
	})
}

func sameMeta(a, b store.ChainMeta) bool {
	return a.Origin == b.Origin && a.Name == b.Name && a.Public == b.Public && a.PoWBits == b.PoWBits &&
		a.Schema == b.Schema && slices.Equal(a.Authority, b.Authority) && a.ServerWritten == b.ServerWritten
}

func testNoChain(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	missing := store.ChainKey{Origin: originB, Name: "t"}
	view(t, s, func(tx store.ReadTx) error {
		if _, err := tx.Size(missing); !errors.Is(err, store.ErrNoChain) {
			t.Errorf("Size of a chain of another origin: %v, want ErrNoChain", err)
		}
		if _, err := tx.Entry(store.ChainKey{Origin: originA, Name: "nope"}, 0); !errors.Is(err, store.ErrNoChain) {
			t.Errorf("Entry of an unknown chain: %v, want ErrNoChain", err)
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.WriteTx) error { return tx.Append(missing, rows(0, 1)) }); !errors.Is(err, store.ErrNoChain) {
		t.Errorf("Append to an unknown chain: %v, want ErrNoChain", err)
	}
}

func testAppState(t *testing.T, s store.Store) {
	putChain(t, s, chainA)
	view(t, s, func(tx store.ReadTx) error {
		kv, _, ok, err := tx.AppState(chainA)
		if err != nil || ok {
			t.Errorf("AppState of a new chain: ok %v, %v; want never written", ok, err)
		}
		if v, err := kv.Get([]byte("k")); err != nil || v != nil {
			t.Errorf("Get in a state never written = %q, %v", v, err)
		}
		return nil
	})
	update(t, s, func(tx store.WriteTx) error {
		kv, _, _, err := tx.AppState(chainA)
		if err != nil {
			return err
		}
		if err := kv.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		return tx.PutAppStateSize(chainA, 42)
	})
	view(t, s, func(tx store.ReadTx) error {
		kv, size, ok, err := tx.AppState(chainA)
		if err != nil || !ok || size != 42 {
			t.Errorf("AppState = size %d ok %v, %v; want 42", size, ok, err)
			return nil
		}
		if v, err := kv.Get([]byte("k")); err != nil || string(v) != "v" {
			t.Errorf("Get k = %q, %v; want v", v, err)
		}
		if err := kv.Put([]byte("k"), []byte("w")); err == nil {
			t.Error("Put in a read transaction's state succeeded")
		}
		return nil
	})
	view(t, s, func(tx store.ReadTx) error {
		kv, _, _, _ := tx.AppState(chainA)
		if v, _ := kv.Get([]byte("k")); string(v) != "v" {
			t.Errorf("a refused Put in a View changed k to %q", v)
		}
		return nil
	})
	update(t, s, func(tx store.WriteTx) error { return tx.ResetAppState(chainA) })
	view(t, s, func(tx store.ReadTx) error {
		kv, _, ok, err := tx.AppState(chainA)
		if err != nil || ok {
			t.Errorf("AppState after reset: ok %v, %v; want never written", ok, err)
		}
		if v, _ := kv.Get([]byte("k")); v != nil {
			t.Errorf("k after reset = %q", v)
		}
		return nil
	})
}

func testAccounts(t *testing.T, s store.Store) {
	update(t, s, func(tx store.WriteTx) error {
		for _, h := range []string{"bob", "ann", "anna"} {
			if err := tx.PutAccount(h, []byte("rec "+h)); err != nil {
				return err
			}
		}
		return tx.PutAccount("bob", []byte("rec bob 2"))
	})
	update(t, s, func(tx store.WriteTx) error { return tx.DeleteAccount("anna") })
	view(t, s, func(tx store.ReadTx) error {
		if r, err := tx.Account("bob"); err != nil || string(r) != "rec bob 2" {
			t.Errorf("Account bob = %q, %v", r, err)
		}
		if r, err := tx.Account("anna"); err != nil || r != nil {
			t.Errorf("deleted account anna = %q, %v; want nil", r, err)
		}
		var homes []string
		err := tx.Accounts(func(home string, rec []byte) error {
			if string(rec) != "rec "+home && home != "bob" {
				t.Errorf("Accounts gave %q for %s", rec, home)
			}
			homes = append(homes, home)
			return nil
		})
		if err != nil || !slices.Equal(homes, []string{"ann", "bob"}) {
			t.Errorf("Accounts = %v, %v; want [ann bob] by home name", homes, err)
		}
		if n, err := tx.AccountCount(); err != nil || n != 2 {
			t.Errorf("AccountCount = %d, %v; want 2", n, err)
		}
		return nil
	})
}

func testRights(t *testing.T, s store.Store) {
	update(t, s, func(tx store.WriteTx) error {
		for _, r := range [][3]string{{"ann", "t", "read"}, {"ann", "u", "write"}, {"anna", "t", "manage"}, {"an", "t", "read"}} {
			if err := tx.PutRight(r[0], r[1], []byte(r[2])); err != nil {
				return err
			}
		}
		return nil
	})
	rightsOf := func(tx store.ReadTx, home string) map[string]string {
		m := map[string]string{}
		if err := tx.Rights(home, func(chain string, v []byte) error { m[chain] = string(v); return nil }); err != nil {
			t.Errorf("Rights %s: %v", home, err)
		}
		return m
	}
	view(t, s, func(tx store.ReadTx) error {
		if got := rightsOf(tx, "ann"); len(got) != 2 || got["t"] != "read" || got["u"] != "write" {
			t.Errorf("Rights ann = %v; want t:read u:write only (not anna's)", got)
		}
		if v, err := tx.Right("anna", "t"); err != nil || string(v) != "manage" {
			t.Errorf("Right anna t = %q, %v", v, err)
		}
		if v, err := tx.Right("ann", "x"); err != nil || v != nil {
			t.Errorf("Right ann x = %q, %v; want nil", v, err)
		}
		return nil
	})
	update(t, s, func(tx store.WriteTx) error {
		if err := tx.DeleteRights("ann"); err != nil {
			return err
		}
		return tx.DeleteRight("an", "t")
	})
	view(t, s, func(tx store.ReadTx) error {
		if got := rightsOf(tx, "ann"); len(got) != 0 {
			t.Errorf("Rights ann after DeleteRights = %v", got)
		}
		if got := rightsOf(tx, "anna"); len(got) != 1 || got["t"] != "manage" {
			t.Errorf("DeleteRights ann touched anna's: %v", got)
		}
		if got := rightsOf(tx, "an"); len(got) != 0 {
			t.Errorf("Rights an after DeleteRight = %v", got)
		}
		return nil
	})
}

func testTwoFA(t *testing.T, s store.Store) {
	update(t, s, func(tx store.WriteTx) error {
		if err := tx.PutTwoFA("ann", []byte("secret")); err != nil {
			return err
		}
		return tx.PutTwoFA("bob", []byte("other"))
	})
	update(t, s, func(tx store.WriteTx) error { return tx.DeleteTwoFA("bob") })
	view(t, s, func(tx store.ReadTx) error {
		if v, err := tx.TwoFA("ann"); err != nil || string(v) != "secret" {
			t.Errorf("TwoFA ann = %q, %v", v, err)
		}
		if v, err := tx.TwoFA("bob"); err != nil || v != nil {
			t.Errorf("TwoFA bob after delete = %q, %v", v, err)
		}
		return nil
	})
}

func testPeers(t *testing.T, s store.Store) {
	view(t, s, func(tx store.ReadTx) error {
		if v, err := tx.Peer("mirror\x00b:6666"); err != nil || v != nil {
			t.Errorf("Peer in an empty store = %q, %v; want nil", v, err)
		}
		return nil
	})
	update(t, s, func(tx store.WriteTx) error {
		for _, k := range []string{"mirror\x00b:6666", "home\x00a:6666", "mirror\x00b:66"} {
			if err := tx.PutPeer(k, []byte("peer "+k)); err != nil {
				return err
			}
		}
		return tx.PutPeer("home\x00a:6666", []byte("replaced"))
	})
	update(t, s, func(tx store.WriteTx) error {
		if err := tx.DeletePeer("mirror\x00b:66"); err != nil {
			return err
		}
		return tx.DeletePeer("never\x00there") // not an error
	})
	view(t, s, func(tx store.ReadTx) error {
		if v, err := tx.Peer("home\x00a:6666"); err != nil || string(v) != "replaced" {
			t.Errorf("Peer home a = %q, %v; want \"replaced\"", v, err)
		}
		if v, err := tx.Peer("mirror\x00b:66"); err != nil || v != nil {
			t.Errorf("Peer after DeletePeer = %q, %v; want nil", v, err)
		}
		var keys []string
		err := tx.Peers(func(key string, v []byte) error {
			keys = append(keys, key)
			return nil
		})
		if want := []string{"home\x00a:6666", "mirror\x00b:6666"}; err != nil || !slices.Equal(keys, want) {
			t.Errorf("Peers = %q, %v; want %q, by key", keys, err, want)
		}
		return nil
	})
}

func nextGen(t *testing.T, s store.Store) uint64 {
	t.Helper()
	var g uint64
	update(t, s, func(tx store.WriteTx) error {
		var err error
		g, err = tx.NextGeneration()
		return err
	})
	return g
}

func testGenerations(t *testing.T, s store.Store) {
	var inOne [3]uint64
	update(t, s, func(tx store.WriteTx) error {
		for i := range inOne {
			var err error
			if inOne[i], err = tx.NextGeneration(); err != nil {
				return err
			}
		}
		return nil
	})
	last := inOne[2]
	if inOne[0] >= inOne[1] || inOne[1] >= inOne[2] {
		t.Fatalf("NextGeneration in one transaction = %v, want strictly increasing", inOne)
	}
	for range 3 {
		g := nextGen(t, s)
		if g <= last {
			t.Fatalf("NextGeneration = %d after %d", g, last)
		}
		last = g
	}
}

func testOnCommit(t *testing.T, s store.Store) {
	var ran []string
	update(t, s, func(tx store.WriteTx) error {
		tx.OnCommit(func() { ran = append(ran, "first") })
		tx.OnCommit(func() { ran = append(ran, "second") })
		if len(ran) != 0 {
			t.Error("OnCommit ran before the transaction ended")
		}
		return tx.SetServerID(originA)
	})
	if !slices.Equal(ran, []string{"first", "second"}) {
		t.Errorf("after commit, ran %v; want [first second]", ran)
	}
	ran = nil
	err := s.Update(ctx, func(tx store.WriteTx) error {
		tx.OnCommit(func() { ran = append(ran, "rolled back") })
		return errors.New("refused")
	})
	if err == nil || len(ran) != 0 {
		t.Errorf("after a rollback (%v), ran %v; want nothing", err, ran)
	}
}

// writeEverything writes one of each kind of row a store holds, to check
// that a rollback undoes every one.
func writeEverything(tx store.WriteTx) error {
	steps := []func() error{
		func() error { return tx.SetServerID(originB) },
		func() error { return tx.PutChain(store.ChainMeta{Origin: originB, Name: "new"}) },
		func() error { return tx.Append(chainA, rows(2, 3)) },
		func() error {
			return tx.PutNodes(chainA, []store.Node{{ID: compact.NewNodeID(0, 2), Hash: make([]byte, 32)}})
		},
		func() error {
			return tx.PutCheckpoint(chainA, store.StoredCheckpoint{Size: 5, Note: []byte("n5")})
		},
		func() error { return tx.DeleteCheckpoint(chainA, 2) },
		func() error {
			kv, _, _, err := tx.AppState(chainA)
			if err == nil {
				err = kv.Put([]byte("k"), []byte("changed"))
			}
			return err
		},
		func() error { return tx.PutAppStateSize(chainA, 5) },
		func() error { return tx.PutAccount("bob", []byte("rec")) },
		func() error { return tx.DeleteAccount("ann") },
		func() error { return tx.PutRight("bob", "t", []byte("read")) },
		func() error { return tx.DeleteRights("ann") },
		func() error { return tx.PutTwoFA("bob", []byte("2fa")) },
		func() error { return tx.DeleteTwoFA("ann") },
		func() error { return tx.PutPeer("mirror\x00b", []byte("new")) },
		func() error { return tx.DeletePeer("home\x00a") },
		func() error { _, err := tx.NextGeneration(); return err },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
	}
	return nil
}

// rollbackBase is the state writeEverything's rollback must leave.
func rollbackBase(t *testing.T, s store.Store) {
	update(t, s, func(tx store.WriteTx) error {
		if err := tx.SetServerID(originA); err != nil {
			return err
		}
		if err := tx.PutChain(store.ChainMeta{Origin: originA, Name: "t"}); err != nil {
			return err
		}
		if err := tx.Append(chainA, rows(0, 2)); err != nil {
			return err
		}
		if err := tx.PutCheckpoint(chainA, store.StoredCheckpoint{Size: 2, Note: []byte("n2")}); err != nil {
			return err
		}
		kv, _, _, err := tx.AppState(chainA)
		if err != nil {
			return err
		}
		if err := kv.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		if err := tx.PutAppStateSize(chainA, 2); err != nil {
			return err
		}
		if err := tx.PutAccount("ann", []byte("rec ann")); err != nil {
			return err
		}
		if err := tx.PutRight("ann", "t", []byte("write")); err != nil {
			return err
		}
		if err := tx.PutPeer("home\x00a", []byte("peer a")); err != nil {
			return err
		}
		return tx.PutTwoFA("ann", []byte("2fa ann"))
	})
}

// checkRollbackBase checks that the store holds rollbackBase's state, and
// nothing of writeEverything.
func checkRollbackBase(t *testing.T, s store.Store) {
	t.Helper()
	view(t, s, func(tx store.ReadTx) error {
		var faults []string
		fail := func(format string, args ...any) { faults = append(faults, fmt.Sprintf(format, args...)) }
		if id, _ := tx.ServerID(); id != originA {
			fail("server-id %q", id)
		}
		if metas, _ := tx.Chains(); len(metas) != 1 || metas[0].Key() != chainA {
			fail("chains %+v", metas)
		}
		if n, _ := tx.Size(chainA); n != 2 {
			fail("size %d", n)
		}
		if _, ok, _ := tx.LookupID(chainA, row(3).ID); ok {
			fail("id of a rolled back row found")
		}
		if h, _ := tx.Nodes(chainA, []compact.NodeID{compact.NewNodeID(0, 2)}); len(h) != 1 || h[0] != nil {
			fail("node of the rollback stored: %x", h)
		}
		if cp, ok, _ := tx.LatestCheckpoint(chainA); !ok || cp.Size != 2 || string(cp.Note) != "n2" {
			fail("latest checkpoint %+v %v", cp, ok)
		}
		kv, at, ok, _ := tx.AppState(chainA)
		if v, _ := kv.Get([]byte("k")); !ok || at != 2 || string(v) != "v" {
			fail("app state at %d ok %v k %q", at, ok, v)
		}
		if r, _ := tx.Account("bob"); r != nil {
			fail("account bob %q", r)
		}
		if r, _ := tx.Account("ann"); string(r) != "rec ann" {
			fail("account ann %q", r)
		}
		if v, _ := tx.Right("ann", "t"); string(v) != "write" {
			fail("right ann t %q", v)
		}
		if v, _ := tx.Right("bob", "t"); v != nil {
			fail("right bob t %q", v)
		}
		if v, _ := tx.TwoFA("ann"); string(v) != "2fa ann" {
			fail("2fa ann %q", v)
		}
		if v, _ := tx.TwoFA("bob"); v != nil {
			fail("2fa bob %q", v)
		}
		if v, _ := tx.Peer("home\x00a"); string(v) != "peer a" {
			fail("peer home a %q", v)
		}
		if v, _ := tx.Peer("mirror\x00b"); v != nil {
			fail("peer mirror b %q", v)
		}
		for _, f := range faults {
			t.Errorf("after the rolled back Update: %s", f)
		}
		return nil
	})
}

func testRollback(t *testing.T, s store.Store) {
	rollbackBase(t, s)
	refused := errors.New("refused after writing")
	err := s.Update(ctx, func(tx store.WriteTx) error {
		if err := writeEverything(tx); err != nil {
			t.Fatal(err)
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	checkRollbackBase(t, s)
}

func testCancelled(t *testing.T, s store.Store) {
	rollbackBase(t, s)
	cctx, cancel := context.WithCancel(ctx)
	err := s.Update(cctx, func(tx store.WriteTx) error {
		if err := writeEverything(tx); err != nil {
			t.Fatal(err)
		}
		cancel() // the caller gives up while the transaction runs
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with its ctx cancelled returned %v, want context.Canceled", err)
	}
	checkRollbackBase(t, s)
	ran := false
	err = s.Update(cctx, func(store.WriteTx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Update on a cancelled ctx: %v, fn ran %v; want context.Canceled without running", err, ran)
	}
	if err := s.View(cctx, func(store.ReadTx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("View on a cancelled ctx: %v, want context.Canceled", err)
	}
}

func testForks(t *testing.T, s store.Store) {
	f1 := store.Fork{Ms: 7, Reason: "same size, other root", Held: []byte("held note\n"), Offered: []byte("offered note\n")}
	f2 := store.Fork{Ms: 9, Reason: "bad consistency proof", Offered: []byte("second\n")}
	fb := store.Fork{Ms: 8, Reason: "other chain", Held: []byte("b")}
	update(t, s, func(tx store.WriteTx) error {
		// chainA is not created: evidence does not need the chain.
		if err := tx.PutFork(chainA, f1); err != nil {
			return err
		}
		return tx.PutFork(chainB, fb)
	})
	update(t, s, func(tx store.WriteTx) error { return tx.PutFork(chainA, f2) })
	failed := s.Update(context.Background(), func(tx store.WriteTx) error {
		if err := tx.PutFork(chainA, store.Fork{Reason: "rolled back"}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if failed == nil {
		t.Fatal("Update whose fn failed returned nil")
	}
	forks := func(c store.ChainKey) []store.Fork {
		var out []store.Fork
		view(t, s, func(tx store.ReadTx) error {
			return tx.Forks(c, func(f store.Fork) error {
				f.Held, f.Offered = bytes.Clone(f.Held), bytes.Clone(f.Offered)
				out = append(out, f)
				return nil
			})
		})
		return out
	}
	same := func(a, b store.Fork) bool {
		return a.Ms == b.Ms && a.Reason == b.Reason && bytes.Equal(a.Held, b.Held) && bytes.Equal(a.Offered, b.Offered)
	}
	if got := forks(chainA); !slices.EqualFunc(got, []store.Fork{f1, f2}, same) {
		t.Errorf("Forks(A) = %+v, want %+v then %+v (oldest first, the rolled-back one absent)", got, f1, f2)
	}
	if got := forks(chainB); !slices.EqualFunc(got, []store.Fork{fb}, same) {
		t.Errorf("Forks(B) = %+v, want only %+v", got, fb)
	}
	if got := forks(store.ChainKey{Origin: originA, Name: "none"}); len(got) != 0 {
		t.Errorf("Forks of a chain without evidence = %+v, want none", got)
	}
}
