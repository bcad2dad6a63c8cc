package apps_test

import (
	"errors"
	"testing"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/canon"
)

var fuzzTypes = []string{
	"ballot.open", "ballot.close", "vote.register", "vote.cast", "vote.uncast", "vote.withdraw",
	"fund.open", "donation.in", "donation.out", "fund.close",
	"account.open", "alloc", "transfer", "consume", "account.close",
}

// FuzzApplyNeverPanics decodes arbitrary CBOR as a payload and applies it as
// every event type to a populated state: Apply accepts or refuses with a
// *RuleError, never panics, and a refusal leaves the state unchanged.
func FuzzApplyNeverPanics(f *testing.F) {
	for _, p := range []any{
		m{"ballot": "b1", "question": "q", "choices": []any{"x", "y"}},
		m{"eid": "aaaaaaaaaaaaaaaa", "ballot": "b1", "choice": "x"},
		m{"fund": "f1", "amount": uint64(1), "donor": m{"uid": "u" + "a0"}},
		m{"from": "a", "to": "b", "amount": uint64(18446744073709551615)},
		m{"account": "a", "amount": -1, "note": "x", "extra": m{}},
	} {
		b, _ := canon.Marshal(p)
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, typ uint8) {
		var p any
		if canon.Unmarshal(data, &p) != nil {
			return
		}
		typName := fuzzTypes[int(typ)%len(fuzzTypes)]
		for _, schema := range apps.Schemas {
			l := newLedger(t, schema)
			switch schema {
			case "vote":
				l.must("ballot.open", m{"ballot": "b1", "question": "q", "choices": []any{"x", "y"}}, nil)
				l.must("vote.register", m{"voter_id": "v"}, nil)
			case "donation":
				l.must("fund.open", m{"fund": "f1", "name": "n", "unit": "u"}, nil)
			case "resource":
				l.must("account.open", m{"account": "a", "unit": "u"}, nil)
				l.must("alloc", m{"account": "a", "amount": uint64(5)}, nil)
			}
			before := maps(l.kv)
			_, err := l.s.Apply(l.kv, l.c, apps.Event{Seq: l.seq, Time: l.time + 1, Type: typName, Payload: l.subst(p)})
			if err != nil {
				if !errors.Is(err, apps.ErrRefused) {
					t.Fatalf("%s %s: not a refusal: %v", schema, typName, err)
				}
				if maps(l.kv) != before {
					t.Fatalf("%s %s: refusal changed the state", schema, typName)
				}
			}
		}
	})
}
