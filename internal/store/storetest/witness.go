package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/vserv/vserv/internal/store"
)

func checkWitnessState(t *testing.T, s store.Store, origin string, want store.WitnessState, wantOK bool) {
	t.Helper()
	view(t, s, func(tx store.ReadTx) error {
		got, ok, err := tx.WitnessState(origin)
		if err != nil {
			return err
		}
		if ok != wantOK || got.Size != want.Size || got.Root != want.Root || !bytes.Equal(got.Note, want.Note) {
			t.Errorf("WitnessState(%q) = %+v, %v; want %+v, %v", origin, got, ok, want, wantOK)
		}
		return nil
	})
}

func testWitnessState(t *testing.T, s store.Store) {
	a, b := "log.example/a", "vserv/x/a" // b shares no prefix rule with a
	checkWitnessState(t, s, a, store.WitnessState{}, false)
	st1 := store.WitnessState{Size: 1, Root: [32]byte{1}, Note: []byte("note 1")}
	st2 := store.WitnessState{Size: 2, Root: [32]byte{2}, Note: []byte("note 2")}
	update(t, s, func(tx store.WriteTx) error { return tx.PutWitnessState(a, st1) })
	checkWitnessState(t, s, a, st1, true)
	checkWitnessState(t, s, b, store.WitnessState{}, false)
	update(t, s, func(tx store.WriteTx) error { return tx.PutWitnessState(a, st2) })
	checkWitnessState(t, s, a, st2, true)

	// The read inside the update sees the state the update replaces, and a
	// failed update leaves the old one.
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx store.WriteTx) error {
		got, ok, err := tx.WitnessState(a)
		if err != nil || !ok || got.Size != 2 {
			t.Errorf("WitnessState inside the update = %+v, %v, %v; want size 2", got, ok, err)
		}
		if err := tx.PutWitnessState(a, store.WitnessState{Size: 7}); err != nil {
			return err
		}
		if err := tx.AddWitnessFork(store.WitnessFork{Origin: a, Reason: "x"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	checkWitnessState(t, s, a, st2, true)
	view(t, s, func(tx store.ReadTx) error {
		return tx.WitnessForks(func(f store.WitnessFork) error {
			t.Errorf("a rolled-back fork is stored: %+v", f)
			return nil
		})
	})
}

func testWitnessForks(t *testing.T, s store.Store) {
	want := []store.WitnessFork{
		{Origin: "log.example/a", Ms: 1, Reason: "same size, other root", Held: []byte("h1"), Offered: []byte("o1")},
		{Origin: "vserv/x/c", Ms: 2, Reason: "bad consistency proof", Held: []byte("h2"), Offered: []byte("o2")},
	}
	for _, f := range want {
		update(t, s, func(tx store.WriteTx) error { return tx.AddWitnessFork(f) })
	}
	var got []store.WitnessFork
	view(t, s, func(tx store.ReadTx) error {
		return tx.WitnessForks(func(f store.WitnessFork) error {
			got = append(got, f)
			return nil
		})
	})
	if len(got) != len(want) {
		t.Fatalf("WitnessForks gave %d forks, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Origin != w.Origin || g.Ms != w.Ms || g.Reason != w.Reason || !bytes.Equal(g.Held, w.Held) || !bytes.Equal(g.Offered, w.Offered) {
			t.Errorf("fork %d = %+v, want %+v", i, g, w)
		}
	}
}
