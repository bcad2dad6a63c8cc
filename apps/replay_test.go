package apps_test

import (
	"errors"
	"testing"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/verify"
)

func votingLedger(t *testing.T) *ledger {
	l := newLedger(t, "vote", keyA)
	l.must("ballot.open", m{"ballot": "b1", "question": "q", "choices": []any{"yes", "no"}}, keyA)
	eid := l.must("vote.register", m{"voter_id": "vera", "key": pubText(keyV)}, keyA).EID
	l.must("vote.cast", m{"eid": eid, "ballot": "b1", "choice": "yes"}, keyV)
	return l
}

func TestReplayFromZeroEqualsIncrementalState(t *testing.T) {
	l := votingLedger(t)
	fresh := apps.MapKV{}
	next, err := apps.Replay(fresh, l.c, 0, l.entries)
	if err != nil || next != 3 {
		t.Fatalf("Replay = %d, %v; want 3, nil", next, err)
	}
	if diffs, err := apps.Compare(l.s, l.c, l.kv, fresh); err != nil || len(diffs) != 0 {
		t.Fatalf("Compare = %v, %v; want no differences", diffs, err)
	}
	// Replay continues from where it stopped.
	part := apps.MapKV{}
	if n, err := apps.Replay(part, l.c, 0, l.entries[:1]); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if n, err := apps.Replay(part, l.c, 1, l.entries[1:]); err != nil || n != 3 || maps(part) != maps(fresh) {
		t.Fatalf("replay in two parts: %d, %v, same state %v", n, err, maps(part) == maps(fresh))
	}
}

func TestCompareReportsTheDifferingViews(t *testing.T) {
	l := votingLedger(t)
	short := apps.MapKV{}
	if _, err := apps.Replay(short, l.c, 0, l.entries[:2]); err != nil {
		t.Fatal(err)
	}
	diffs, err := apps.Compare(l.s, l.c, l.kv, short)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range diffs {
		names = append(names, d.Query.Name)
	}
	if len(diffs) != 2 || names[0] != "tally" || names[1] != "voter" {
		t.Fatalf("differences %v, want the tally of b1 and the voter", diffs)
	}
}

func TestReplayRefusesEntriesOutOfPlace(t *testing.T) {
	l := votingLedger(t)
	bad := append([]byte(nil), l.entries[1]...)
	bad[len(bad)-1] ^= 1 // breaks the signature or the encoding
	other := votingLedger(t)
	other.c.Origin = "ffffffffffffffffffffffffffffffff"
	for _, tc := range []struct {
		name    string
		c       apps.Chain
		next    uint64
		entries [][]byte
		at      uint64
	}{
		{"SkippedEntry", l.c, 0, [][]byte{l.entries[0], l.entries[2]}, 1},
		{"WrongStart", l.c, 5, l.entries, 5},
		{"Tampered", l.c, 0, [][]byte{l.entries[0], bad}, 1},
		{"NotAnEntry", l.c, 0, [][]byte{{0xa0}}, 0},
		{"OtherOrigin", other.c, 0, l.entries, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := apps.Replay(apps.MapKV{}, tc.c, tc.next, tc.entries)
			var re *apps.ReplayError
			if !errors.As(err, &re) || re.Seq != tc.at || n != tc.at {
				t.Fatalf("Replay = %d, %v; want a *ReplayError at %d", n, err, tc.at)
			}
		})
	}
}

func TestReplayNamesTheRuleOfARecordedEventTheRulesRefuse(t *testing.T) {
	// A server that appended a second cast: the recount must say so.
	l := votingLedger(t)
	cast := l.entries[2]
	e, _, _ := verify.ParseEntry(cast)
	e.Seq, e.Prev = 3, verify.LeafHash(cast)
	again := verify.AppendEntry(nil, *e)
	_, err := apps.Replay(apps.MapKV{}, l.c, 0, append(l.entries, again))
	var rule *apps.RuleError
	if !errors.As(err, &rule) || rule.Rule != "one-active-cast" {
		t.Fatalf("got %v, want the one-active-cast rule", err)
	}
}

func TestForUnknownSchemaIsAnError(t *testing.T) {
	if _, err := apps.For("poll"); !errors.Is(err, apps.ErrNoSchema) {
		t.Fatalf("For(poll) = %v, want ErrNoSchema", err)
	}
	for _, name := range apps.Schemas {
		if s, err := apps.For(name); err != nil || s.Name() != name {
			t.Errorf("For(%s) = %v, %v", name, s, err)
		}
	}
}

func TestParseAuthority(t *testing.T) {
	a, v := pubText(keyA), pubText(keyV)
	if keys, err := apps.ParseAuthority([]string{a, v}); err != nil || len(keys) != 2 || apps.KeyText(keys[1]) != v {
		t.Fatalf("ParseAuthority = %v, %v", keys, err)
	}
	if keys, err := apps.ParseAuthority(nil); err != nil || len(keys) != 0 {
		t.Fatalf("no keys: %v, %v", keys, err)
	}
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = pubText(testKey(string(rune('a' + i))))
	}
	for _, bad := range [][]string{{a, a}, {"AAAA"}, {a[:43]}, seventeen} {
		if _, err := apps.ParseAuthority(bad); !errors.Is(err, apps.ErrAuthority) {
			t.Errorf("ParseAuthority(%d keys) = %v, want ErrAuthority", len(bad), err)
		}
	}
	if _, err := apps.ParseAuthority(seventeen[:16]); err != nil {
		t.Errorf("16 keys: %v", err)
	}
}

// failingKV is a caller's store that breaks: Get or Put fail with errDisk.
type failingKV struct {
	apps.MapKV
	failGet, failPut bool
}

var errDisk = errors.New("disk on fire")

func (f *failingKV) Get(k []byte) ([]byte, error) {
	if f.failGet {
		return nil, errDisk
	}
	return f.MapKV.Get(k)
}

func (f *failingKV) Put(k, v []byte) error {
	if f.failPut {
		return errDisk
	}
	return f.MapKV.Put(k, v)
}

func TestStoreFailureIsNotARefusal(t *testing.T) {
	s, _ := apps.For("vote")
	ev := apps.Event{Type: "vote.register", Payload: map[string]any{"voter_id": "alice"}}
	for _, f := range []*failingKV{{MapKV: apps.MapKV{}, failGet: true}, {MapKV: apps.MapKV{}, failPut: true}} {
		_, err := s.Apply(f, apps.Chain{Schema: "vote"}, ev)
		if !errors.Is(err, errDisk) || errors.Is(err, apps.ErrRefused) {
			t.Errorf("got %v, want the store's error and no refusal", err)
		}
	}
}
