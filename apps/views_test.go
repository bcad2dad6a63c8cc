package apps_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/verify"
)

// sameView fails unless got and want encode to the same deterministic CBOR.
func sameView(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := canon.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := canon.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		gd, _ := cbor.Diagnose(g)
		wd, _ := cbor.Diagnose(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gd, wd)
	}
}

func TestEIDIsBase32OfDomainSeparatedLeafHash(t *testing.T) {
	var leaf [32]byte
	for i := range leaf {
		leaf[i] = byte(i)
	}
	h := sha256.Sum256(append([]byte("vserv-eid-v1\n"), leaf[:]...))
	want := strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(h[:10]), "="))
	if got := apps.EID(leaf); got != want || got != "ijojgv4ovlo6j2lt" || !apps.ValidEID(got) {
		t.Fatalf("EID = %q, want %q (known answer ijojgv4ovlo6j2lt)", got, want)
	}
}

func TestRegisterAnswersTheEIDOfItsEntry(t *testing.T) {
	l := newLedger(t, "vote")
	res := l.must("vote.register", m{"voter_id": "alice"}, nil)
	if want := apps.EID(verify.LeafHash(l.entries[0])); res.EID != want {
		t.Fatalf("EID %q, want %q from the entry's leaf hash", res.EID, want)
	}
}

func TestRegisterWhoseEIDExistsIsRefused(t *testing.T) {
	s, _ := apps.For("vote")
	kv, c := apps.MapKV{}, apps.Chain{Name: "vote", Origin: testOrigin, Schema: "vote"}
	ev := apps.Event{Seq: 0, Time: t0, Type: "vote.register", Payload: map[string]any{"voter_id": "alice"}}
	if _, err := s.Apply(kv, c, ev); err != nil {
		t.Fatal(err)
	}
	ev.Seq, ev.Payload = 1, map[string]any{"voter_id": "bob"} // same leaf: an eid collision
	_, err := s.Apply(kv, c, ev)
	var re *apps.RuleError
	if !errors.As(err, &re) || re.Rule != "eid-new" {
		t.Fatalf("got %v, want rule eid-new", err)
	}
}

func TestRefusalTextNamesTheRule(t *testing.T) {
	l := newLedger(t, "vote")
	l.must("ballot.open", m{"ballot": "b1", "question": "q", "choices": []any{"yes", "no"}}, nil)
	eid := l.must("vote.register", m{"voter_id": "alice"}, nil).EID
	l.must("vote.cast", m{"eid": eid, "ballot": "b1", "choice": "yes"}, nil)
	_, err := l.apply("vote.cast", m{"eid": eid, "ballot": "b1", "choice": "no"}, nil, 0)
	if want := "vote.cast: voter " + eid + " already has an active cast on ballot b1"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// TestPayloadOfUnexpectedGoTypesIsRefused feeds Apply values a decoder
// never makes (a caller building events by hand): refused, no panic.
func TestPayloadOfUnexpectedGoTypesIsRefused(t *testing.T) {
	for _, schema := range apps.Schemas {
		s, _ := apps.For(schema)
		for _, typ := range []string{"ballot.open", "vote.cast", "fund.open", "donation.in", "alloc", "transfer", "vote.withdraw"} {
			for _, p := range []any{nil, 5, map[string]any{"ballot": 5, "fund": int(1), "amount": int(3), "eid": nil, "account": []string{"a"}},
				map[any]any{"ballot": "b1"}, map[string]any{"amount": math.Inf(1), "from": "a", "to": "b", "account": "a"}} {
				_, err := s.Apply(apps.MapKV{}, apps.Chain{Schema: schema}, apps.Event{Type: typ, Payload: p})
				if !errors.Is(err, apps.ErrRefused) {
					t.Errorf("%s %s %v: got %v, want a refusal", schema, typ, p, err)
				}
			}
		}
	}
}

func TestVoteViews(t *testing.T) {
	l := newLedger(t, "vote")
	l.must("ballot.open", m{"ballot": "b1", "question": "Budget?", "choices": []any{"yes", "no"}, "closes": uint64(t0 + 100_000)}, nil)
	l.must("ballot.open", m{"ballot": "b2", "question": "Chair?", "choices": []any{"ann", "ben"}}, nil)
	alice := l.must("vote.register", m{"voter_id": "alice"}, nil).EID
	bob := l.must("vote.register", m{"voter_id": "bob", "key": pubText(keyV)}, nil).EID
	carol := l.must("vote.register", m{"voter_id": "carol"}, nil).EID
	l.must("vote.cast", m{"eid": alice, "ballot": "b1", "choice": "yes"}, nil)
	l.must("vote.cast", m{"eid": bob, "ballot": "b1", "choice": "no"}, keyV)
	l.must("vote.cast", m{"eid": carol, "ballot": "b1", "choice": "yes"}, nil)
	l.must("vote.cast", m{"eid": alice, "ballot": "b2", "choice": "ben"}, nil)
	l.must("ballot.close", m{"ballot": "b2"}, nil)
	l.must("vote.withdraw", m{"eid": alice}, nil) // ends the b1 cast; the b2 cast stands
	l.must("vote.uncast", m{"eid": carol, "ballot": "b1"}, nil)

	sameView(t, "tally b1", l.view("tally", m{"ballot": "b1"}), m{
		"ballot": "b1", "question": "Budget?", "choices": m{"yes": uint64(0), "no": uint64(1)},
		"open": true, "closes": uint64(t0 + 100_000), "registered": uint64(3), "active": uint64(2)})
	sameView(t, "tally b2", l.view("tally", m{"ballot": "b2"}), m{
		"ballot": "b2", "question": "Chair?", "choices": m{"ann": uint64(0), "ben": uint64(1)},
		"open": false, "closes": nil, "registered": uint64(3), "active": uint64(2)})
	sameView(t, "voter alice", l.view("voter", m{"voter_id": "alice"}), m{
		"voter_id": "alice", "eid": alice, "key": nil, "withdrawn": true, "next": nil,
		"events": []any{
			m{"seq": uint64(2), "type": "vote.register"},
			m{"seq": uint64(5), "type": "vote.cast", "ballot": "b1", "choice": "yes"},
			m{"seq": uint64(8), "type": "vote.cast", "ballot": "b2", "choice": "ben"},
			m{"seq": uint64(10), "type": "vote.withdraw"},
		}})
	sameView(t, "voter bob page", l.view("voter", m{"eid": bob, "limit": uint64(1)}), m{
		"voter_id": "bob", "eid": bob, "key": pubText(keyV), "withdrawn": false, "next": uint64(1),
		"events": []any{m{"seq": uint64(3), "type": "vote.register"}}})
	sameView(t, "ballots", l.view("ballots", nil), m{"ballots": []any{"b1", "b2"}, "total": uint64(2), "next": nil})
	sameView(t, "ballots page", l.view("ballots", m{"from": uint64(1), "limit": uint64(1)}), m{"ballots": []any{"b2"}, "total": uint64(2), "next": nil})
	sameView(t, "voters page", l.view("voters", m{"limit": uint64(2)}), m{"voters": []any{alice, bob}, "total": uint64(3), "next": uint64(2)})

	// Once the entry time passes closes, the tally shows the ballot closed.
	l.must("vote.register", m{"voter_id": "dave"}, nil)
	if _, err := l.apply("vote.register", m{"voter_id": "erin"}, nil, t0+100_000); err != nil {
		t.Fatal(err)
	}
	if open := l.view("tally", m{"ballot": "b1"})["open"]; open != false {
		t.Errorf("b1 open = %v after closes, want false", open)
	}
}

func TestViewErrors(t *testing.T) {
	l := newLedger(t, "vote")
	l.must("ballot.open", m{"ballot": "b1", "question": "q", "choices": []any{"yes", "no"}}, nil)
	for _, tc := range []struct {
		name string
		args map[string]any
		want error
	}{
		{"nosuch", nil, apps.ErrNoView},
		{"tally", nil, apps.ErrViewArgs},
		{"tally", m{"ballot": "B1"}, apps.ErrViewArgs},
		{"tally", m{"ballot": "b1", "x": 1}, apps.ErrViewArgs},
		{"tally", m{"ballot": "b9"}, apps.ErrNotFound},
		{"voter", m{"eid": "aaaaaaaaaaaaaaaa"}, apps.ErrNotFound},
		{"voter", m{"voter_id": "nobody"}, apps.ErrNotFound},
		{"voter", m{"eid": "aaaaaaaaaaaaaaaa", "voter_id": "x"}, apps.ErrViewArgs},
		{"voter", m{"eid": 5}, apps.ErrViewArgs},
		{"ballots", m{"limit": uint64(0)}, apps.ErrViewArgs},
		{"ballots", m{"limit": uint64(1001)}, apps.ErrViewArgs},
		{"ballots", m{"from": -1}, apps.ErrViewArgs},
		{"ballots", m{"page": uint64(1)}, apps.ErrViewArgs},
	} {
		if _, err := l.s.View(l.kv, l.c, tc.name, tc.args); !errors.Is(err, tc.want) {
			t.Errorf("view %s %v: got %v, want %v", tc.name, tc.args, err, tc.want)
		}
	}
}

func TestFundView(t *testing.T) {
	l := newLedger(t, "donation")
	l.must("fund.open", m{"fund": "f1", "name": "Relief", "unit": "EUR-cent", "publisher": testPublisher}, nil)
	l.must("donation.in", m{"fund": "f1", "amount": uint64(700), "donor": validUID}, nil)
	l.must("donation.in", m{"fund": "f1", "amount": uint64(300)}, nil)
	l.must("donation.out", m{"fund": "f1", "amount": uint64(250), "purpose": "tents"}, nil)
	l.must("fund.close", m{"fund": "f1"}, nil)
	sameView(t, "fund", l.view("fund", m{"fund": "f1"}), m{
		"fund": "f1", "name": "Relief", "unit": "EUR-cent", "publisher": testPublisher, "open": false,
		"in": uint64(1000), "out": uint64(250), "balance": uint64(750), "donations": uint64(2), "disbursements": uint64(1)})
	sameView(t, "funds", l.view("funds", nil), m{"funds": []any{"f1"}, "total": uint64(1), "next": nil})
}

func TestAccountView(t *testing.T) {
	l := newLedger(t, "resource")
	l.must("account.open", m{"account": "a", "unit": "cpu-s", "owner": "team a"}, nil)
	l.must("account.open", m{"account": "k", "unit": "cpu-s", "key": pubText(keyV)}, nil)
	l.must("alloc", m{"account": "a", "amount": uint64(100)}, nil)
	l.must("transfer", m{"from": "a", "to": "k", "amount": uint64(40)}, nil)
	l.must("consume", m{"account": "k", "amount": uint64(15)}, ed25519.PrivateKey(keyV))
	sameView(t, "account a", l.view("account", m{"account": "a"}), m{
		"account": "a", "unit": "cpu-s", "owner": "team a", "key": nil, "open": true,
		"balance": uint64(60), "allocated": uint64(100), "consumed": uint64(0)})
	sameView(t, "account k", l.view("account", m{"account": "k"}), m{
		"account": "k", "unit": "cpu-s", "owner": nil, "key": pubText(keyV), "open": true,
		"balance": uint64(25), "allocated": uint64(0), "consumed": uint64(15)})
	sameView(t, "accounts", l.view("accounts", nil), m{"accounts": []any{"a", "k"}, "total": uint64(2), "next": nil})
}
