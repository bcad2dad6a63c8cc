package server_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// The server's committer against the rules of package apps, through real
// TCP: random events (valid and invalid mixed) go to a fresh schema chain
// from a few connections at once in random batches, so that group commits
// mix them; then every view the server answers must equal a replay of the
// chain's entries, the views must keep the schemas' invariants, and exactly
// the accepted records must be in the chain, once each.

// propChecks is the number of rapid checks per schema unless -rapid.checks
// (or RAPID_CHECKS) says otherwise: each check makes a chain on a real
// server, so rapid's default of 100 is too slow. A failing check shrinks
// for at most propShrink, likewise.
const (
	propChecks = "25"
	propShrink = "10s"
)

// rapidDefault sets a rapid flag for the test unless the command line or
// the environment set it, and restores it after.
func rapidDefault(t *testing.T, name, env, val string) {
	if _, ok := os.LookupEnv(env); ok {
		return
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	f := flag.Lookup(name)
	if set || f == nil {
		return
	}
	old := f.Value.String()
	if err := f.Value.Set(val); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

// propConns is the number of concurrent connections sending batches.
const propConns = 3

// propEvent is one drawn event; payload gets the eids registered so far,
// for events that refer to a voter by index.
type propEvent struct {
	typ     string
	payload func(eids []string) map[string]any
}

func fixed(typ string, p map[string]any) propEvent {
	return propEvent{typ, func([]string) map[string]any { return p }}
}

// propSchema is how to draw the events of one schema and which items the
// drawn events can touch.
type propSchema struct {
	prologue []propEvent
	draw     func(t *rapid.T) propEvent
	items    func(eids []string) []apps.Query // every item the events could touch, existing or not
	lists    []string
}

func drawPropAmount(t *rapid.T) uint64 {
	// Mostly small amounts, so that some overdraw and some do not; 0 (no
	// amount) and a few near 2^64, so that sums overflow.
	v := rapid.Uint64Range(0, 15).Draw(t, "amount")
	if v > 12 {
		return math.MaxUint64 - (v - 13)
	}
	return v
}

const bogusEID = "aaaaaaaaaaaaaaaa"

var propSchemas = map[string]propSchema{
	"vote": {
		prologue: []propEvent{
			fixed("ballot.open", map[string]any{"ballot": "b0", "question": "q", "choices": []any{"x", "y"}}),
			fixed("ballot.open", map[string]any{"ballot": "b1", "question": "q", "choices": []any{"x", "y"}}),
			fixed("vote.register", map[string]any{"voter_id": "p0"}),
			fixed("vote.register", map[string]any{"voter_id": "p1"}),
		},
		draw: func(t *rapid.T) propEvent {
			b := rapid.SampledFrom([]string{"b0", "b1", "b2"}).Draw(t, "ballot")
			vi := rapid.IntRange(0, 3).Draw(t, "voter") // an index into the eids known at send time
			eid := func(eids []string) string {
				if vi < len(eids) {
					return eids[vi]
				}
				return bogusEID
			}
			// rapid favours small numbers: the commonest events come first.
			switch rapid.IntRange(0, 7).Draw(t, "op") {
			case 0, 1, 2:
				c := rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, "choice")
				return propEvent{"vote.cast", func(e []string) map[string]any {
					return map[string]any{"eid": eid(e), "ballot": b, "choice": c}
				}}
			case 3:
				return propEvent{"vote.uncast", func(e []string) map[string]any { return map[string]any{"eid": eid(e), "ballot": b} }}
			case 4:
				return fixed("vote.register", map[string]any{"voter_id": rapid.SampledFrom([]string{"v1", "v2", "p0"}).Draw(t, "voter_id")})
			case 5:
				return propEvent{"vote.withdraw", func(e []string) map[string]any { return map[string]any{"eid": eid(e)} }}
			case 6:
				p := map[string]any{"ballot": b, "question": "q", "choices": []any{"x", "y"}}
				if rapid.Bool().Draw(t, "closed-from-start") {
					p["closes"] = uint64(1)
				}
				return fixed("ballot.open", p)
			default:
				return fixed("ballot.close", map[string]any{"ballot": b})
			}
		},
		items: func(eids []string) []apps.Query {
			var qs []apps.Query
			for _, b := range []string{"b0", "b1", "b2"} {
				qs = append(qs, apps.Query{Name: "tally", Args: map[string]any{"ballot": b}})
			}
			for _, e := range append([]string{bogusEID}, eids...) {
				qs = append(qs, apps.Query{Name: "voter", Args: map[string]any{"eid": e}})
			}
			for _, id := range []string{"p0", "p1", "v1", "v2", "v3"} {
				qs = append(qs, apps.Query{Name: "voter", Args: map[string]any{"voter_id": id}})
			}
			return qs
		},
		lists: []string{"ballots", "voters"},
	},
	"donation": {
		prologue: []propEvent{
			fixed("fund.open", map[string]any{"fund": "f0", "name": "n", "unit": "EUR-cent"}),
			fixed("donation.in", map[string]any{"fund": "f0", "amount": uint64(10)}),
		},
		draw: func(t *rapid.T) propEvent {
			f := rapid.SampledFrom([]string{"f0", "f1"}).Draw(t, "fund")
			amount := drawPropAmount(t)
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0, 1:
				return fixed("donation.in", map[string]any{"fund": f, "amount": amount})
			case 2, 3:
				return fixed("donation.out", map[string]any{"fund": f, "amount": amount, "purpose": "p"})
			case 4:
				return fixed("fund.open", map[string]any{"fund": f, "name": "n", "unit": "EUR-cent"})
			default:
				return fixed("fund.close", map[string]any{"fund": f})
			}
		},
		items: func([]string) []apps.Query {
			return []apps.Query{{Name: "fund", Args: map[string]any{"fund": "f0"}}, {Name: "fund", Args: map[string]any{"fund": "f1"}}}
		},
		lists: []string{"funds"},
	},
	"resource": {
		prologue: []propEvent{
			fixed("account.open", map[string]any{"account": "a", "unit": "cpu-s"}),
			fixed("account.open", map[string]any{"account": "b", "unit": "cpu-s"}),
			fixed("alloc", map[string]any{"account": "a", "amount": uint64(10)}),
		},
		draw: func(t *rapid.T) propEvent {
			names := []string{"a", "b", "c"}
			a := rapid.SampledFrom(names).Draw(t, "account")
			b := rapid.SampledFrom([]string{"b", "a", "c"}).Draw(t, "to")
			amount := drawPropAmount(t)
			switch rapid.IntRange(0, 7).Draw(t, "op") {
			case 0, 1:
				return fixed("alloc", map[string]any{"account": a, "amount": amount})
			case 2, 3:
				return fixed("transfer", map[string]any{"from": a, "to": b, "amount": amount})
			case 4, 5:
				return fixed("consume", map[string]any{"account": a, "amount": amount})
			case 6:
				return fixed("account.open", map[string]any{"account": a, "unit": rapid.SampledFrom([]string{"cpu-s", "gpu-s"}).Draw(t, "unit")})
			default:
				return fixed("account.close", map[string]any{"account": a})
			}
		},
		items: func([]string) []apps.Query {
			var qs []apps.Query
			for _, a := range []string{"a", "b", "c"} {
				qs = append(qs, apps.Query{Name: "account", Args: map[string]any{"account": a}})
			}
			return qs
		},
		lists: []string{"accounts"},
	},
}

// propBatch is one rput and what became of it.
type propBatch struct {
	conn   int
	events []propEvent
	recs   [][]byte
	types  []string
	pays   []map[string]any
	ids    []string
	res    []rputResult
	err    error
}

// TestCommitterViewsAlwaysEqualAReplayOfTheChain sends random event
// sequences to fresh schema chains of one real vserv, from concurrent
// connections in random batches, and checks that (a) every view the server
// answers equals the view a replay of the chain's entries (rabs) computes,
// (b) the server's views keep the invariants (no second active cast of an
// eid on a ballot, no fund or account overdrawn, amounts conserved), and
// (c) every accepted record is in the chain exactly once at the seq rput
// answered and no record of a refused batch is.
func TestCommitterViewsAlwaysEqualAReplayOfTheChain(t *testing.T) {
	rapidDefault(t, "rapid.checks", "RAPID_CHECKS", propChecks)
	rapidDefault(t, "rapid.shrinktime", "RAPID_SHRINKTIME", propShrink)
	e := newAppsEnv(t)
	conns := make([]*client.Client, propConns)
	for i := range conns {
		conns[i] = e.Srv.AdminClient()
		t.Cleanup(func() { conns[i].Close() })
	}
	origin := e.Admin.ServerID()
	n := 0
	for _, schema := range apps.Schemas {
		t.Run(schema, func(t *testing.T) {
			s, err := apps.For(schema)
			if err != nil {
				t.Fatal(err)
			}
			ps := propSchemas[schema]
			rapid.Check(t, func(rt *rapid.T) {
				n++
				c := apps.Chain{Name: fmt.Sprintf("prop-%s-%d", schema, n), Origin: origin, Schema: schema}
				if err := e.mkchain(c.Name, map[string]any{"public": true, "schema": schema, "pow_bits": 0}); err != nil {
					rt.Fatalf("mkchain %s: %v", c.Name, err)
				}
				batches := drawBatches(rt, ps)
				var (
					mu   sync.Mutex
					eids []string
				)
				send := func(b *propBatch) {
					mu.Lock()
					known := eids[:len(eids):len(eids)]
					mu.Unlock()
					for _, ev := range b.events {
						p := ev.payload(known)
						rec, err := client.NewRecord(p, ev.typ, 0, client.RecordOptions{})
						if err != nil {
							b.err = err
							return
						}
						r, err := verify.CheckRecord(rec)
						if err != nil {
							b.err = err
							return
						}
						b.recs, b.types, b.pays, b.ids = append(b.recs, rec), append(b.types, ev.typ), append(b.pays, p), append(b.ids, r.ID)
					}
					b.res, b.err = rput(e.Ctx, conns[b.conn], c.Name, b.recs...)
					mu.Lock()
					for _, r := range b.res {
						if r.EID != "" {
							eids = append(eids, r.EID)
						}
					}
					mu.Unlock()
				}
				// The prologue goes first, one batch, then every connection
				// sends its batches in order, all connections at once.
				send(batches[0])
				var wg sync.WaitGroup
				for ci := range propConns {
					wg.Go(func() {
						for _, b := range batches[1:] {
							if b.conn == ci {
								send(b)
							}
						}
					})
				}
				wg.Wait()
				checkCommitted(rt, e, s, c, ps, batches, eids)
			})
		})
	}
}

// drawBatches draws the prologue batch and 5–40 more events split into
// batches of 1–4 events, each on a drawn connection.
func drawBatches(t *rapid.T, ps propSchema) []*propBatch {
	batches := []*propBatch{{events: ps.prologue}}
	n := rapid.IntRange(5, 40).Draw(t, "events")
	for n > 0 {
		// Mostly single events, so that most are judged on their own.
		size := min(n, rapid.SampledFrom([]int{1, 1, 1, 1, 2, 3, 4}).Draw(t, "batch size"))
		b := &propBatch{conn: rapid.IntRange(0, propConns-1).Draw(t, "conn")}
		for range size {
			b.events = append(b.events, ps.draw(t))
		}
		batches = append(batches, b)
		n -= size
	}
	return batches
}

func checkCommitted(t *rapid.T, e *appsEnv, s apps.Schema, c apps.Chain, ps propSchema, batches []*propBatch, eids []string) {
	// (c) accepted batches are in the chain, refused ones are not.
	size, err := e.Admin.ChainSize(e.Ctx, c.Name)
	if err != nil {
		t.Fatalf("rsize: %v", err)
	}
	seqs := make([]int64, size)
	for i := range seqs {
		seqs[i] = int64(i)
	}
	var entries [][]byte
	if size > 0 {
		if entries, err = e.Admin.AbsRecords(e.Ctx, c.Name, seqs); err != nil {
			t.Fatalf("rabs: %v", err)
		}
	}
	at := map[string][]uint64{} // record id → the seqs holding it
	for i, en := range entries {
		_, rec, err := verify.ParseEntry(en)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		at[rec.ID] = append(at[rec.ID], uint64(i))
	}
	accepted := 0
	for bi, b := range batches {
		var we *wire.Error
		switch {
		case b.err == nil:
			accepted += len(b.ids)
			for i, id := range b.ids {
				if len(at[id]) != 1 || at[id][0] != b.res[i].Seq || b.res[i].ID != id {
					t.Fatalf("batch %d record %d (%s %v) accepted at seq %d is at seqs %v of the chain", bi, i, b.types[i], b.pays[i], b.res[i].Seq, at[id])
				}
			}
		case errors.As(b.err, &we) && we.Code == wire.CodeInvalid:
			for i, id := range b.ids {
				if len(at[id]) != 0 {
					t.Fatalf("batch %d record %d (%s %v) refused (%v) is at seqs %v of the chain", bi, i, b.types[i], b.pays[i], b.err, at[id])
				}
			}
		default:
			t.Fatalf("batch %d: %v, want acceptance or a rule's refusal (ERR invalid)", bi, b.err)
		}
	}
	if uint64(accepted) != size {
		t.Fatalf("%d records accepted, the chain has %d entries", accepted, size)
	}

	// (a) every view equals the replay's.
	kv := apps.MapKV{}
	if next, err := apps.Replay(kv, c, 0, entries); err != nil || next != size {
		t.Fatalf("replay of the chain stopped at %d of %d: %v", next, size, err)
	}
	qs, err := s.Queries(kv)
	if err != nil {
		t.Fatal(err)
	}
	qs = append(qs, ps.items(eids)...)
	for _, l := range ps.lists {
		qs = append(qs, apps.Query{Name: l})
	}
	views := map[string]map[string]any{} // query → the server's view
	for _, q := range qs {
		want, err := apps.ViewBytes(s, kv, c, q)
		if err != nil {
			t.Fatal(err)
		}
		got, at, err := e.Admin.ViewRaw(e.Ctx, c.Name, q.Name, q.Args)
		if want == nil {
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeNotFound {
				t.Fatalf("view %s: %x, %v; the replay has no such item (want ERR notfound)", q, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("view %s: %v", q, err)
		}
		if !bytes.Equal(got, want) || at != size {
			t.Fatalf("view at size %d (chain size %d), server vs replay: %v", at, size, apps.Difference{Query: q, A: got, B: want})
		}
		if views[q.String()], _, err = e.Admin.View(e.Ctx, c.Name, q.Name, q.Args); err != nil {
			t.Fatal(err)
		}
	}

	// (b) the invariants, on the server's views.
	switch c.Schema {
	case "vote":
		checkVoteViews(t, views)
	case "donation":
		for q, v := range views {
			if v["fund"] != nil && (v["out"].(uint64) > v["in"].(uint64) || v["balance"] != v["in"].(uint64)-v["out"].(uint64)) {
				t.Fatalf("%s: %v: overdrawn", q, v)
			}
		}
	case "resource":
		checkResourceViews(t, views, batches)
	}
}

// checkVoteViews replays each voter's events from its view: no cast while
// one is active on that ballot, no uncast without one, nothing after a
// withdraw; and each ballot's tally counts its active casts.
func checkVoteViews(t *rapid.T, views map[string]map[string]any) {
	active := map[string]int{}   // ballot → voters with an active cast, not withdrawn
	withdrew := map[string]int{} // ballot → withdrawn voters that had one
	seen := map[string]bool{}
	for q, v := range views {
		eid, ok := v["eid"].(string)
		if !ok || seen[eid] {
			continue
		}
		seen[eid] = true
		if v["next"] != nil {
			t.Fatalf("%s: more than one page of events", q)
		}
		casts := map[string]bool{}
		gone := false
		for _, x := range v["events"].([]any) {
			ev := x.(map[string]any)
			b, _ := ev["ballot"].(string)
			if gone {
				t.Fatalf("%s: event %v after the voter's withdraw", q, ev)
			}
			switch ev["type"] {
			case "vote.cast":
				if casts[b] {
					t.Fatalf("%s: a second active cast of %s on ballot %s", q, eid, b)
				}
				casts[b] = true
			case "vote.uncast":
				if !casts[b] {
					t.Fatalf("%s: an uncast of %s on ballot %s without an active cast", q, eid, b)
				}
				delete(casts, b)
			case "vote.withdraw":
				gone = true
			}
		}
		if gone != v["withdrawn"].(bool) {
			t.Fatalf("%s: withdrawn %v, events %v", q, v["withdrawn"], v["events"])
		}
		for b := range casts {
			if gone {
				withdrew[b]++ // its cast stays counted only if the ballot had closed
			} else {
				active[b]++
			}
		}
	}
	for q, v := range views {
		b, ok := v["ballot"].(string)
		if !ok {
			continue
		}
		var total uint64
		for _, n := range v["choices"].(map[string]any) {
			total += n.(uint64)
		}
		if total < uint64(active[b]) || total > uint64(active[b]+withdrew[b]) {
			t.Fatalf("%s: tally %v counts %d casts, the voters' views have %d active (+%d of withdrawn voters)", q, v["choices"], total, active[b], withdrew[b])
		}
	}
}

// checkResourceViews checks that every unit is conserved: the accepted
// allocs of accounts of a unit equal the balances plus the consumption.
func checkResourceViews(t *rapid.T, views map[string]map[string]any, batches []*propBatch) {
	unit := map[string]string{}
	have := map[string]*big.Int{}
	for _, v := range views {
		a, ok := v["account"].(string)
		if !ok {
			continue
		}
		u := v["unit"].(string)
		unit[a] = u
		if have[u] == nil {
			have[u] = new(big.Int)
		}
		have[u].Add(have[u], new(big.Int).SetUint64(v["balance"].(uint64)))
		have[u].Add(have[u], new(big.Int).SetUint64(v["consumed"].(uint64)))
	}
	allocated := map[string]*big.Int{}
	for _, b := range batches {
		if b.err != nil {
			continue
		}
		for i, typ := range b.types {
			if typ != "alloc" {
				continue
			}
			u := unit[b.pays[i]["account"].(string)]
			if allocated[u] == nil {
				allocated[u] = new(big.Int)
			}
			allocated[u].Add(allocated[u], new(big.Int).SetUint64(b.pays[i]["amount"].(uint64)))
		}
	}
	for u, h := range have {
		a := allocated[u]
		if a == nil {
			a = new(big.Int)
		}
		if a.Cmp(h) != 0 {
			t.Fatalf("unit %s: %v allocated, balances plus consumption %v", u, a, h)
		}
	}
}
