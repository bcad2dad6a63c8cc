package apps_test

import (
	"crypto/ed25519"
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/vserv/vserv/apps"
)

// replayEquals replays l's accepted entries from entry 0 into a fresh MapKV
// and requires every view, and every stored byte, to equal l's incremental
// state.
func replayEquals(t *rapid.T, l *ledger) {
	fresh := apps.MapKV{}
	next, err := apps.Replay(fresh, l.c, 0, l.entries)
	if err != nil || next != uint64(len(l.entries)) {
		t.Fatalf("replay of the accepted entries stopped at %d: %v", next, err)
	}
	diffs, err := apps.Compare(l.s, l.c, l.kv, fresh)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("view differs after replay: %v", d)
	}
	if maps(fresh) != maps(l.kv) {
		t.Fatalf("replayed state differs from the incremental state")
	}
}

var signers = []ed25519.PrivateKey{nil, keyV, keyA, keyX}

func drawSigner(t *rapid.T) ed25519.PrivateKey { return rapid.SampledFrom(signers).Draw(t, "signer") }

func drawAmount(t *rapid.T) uint64 {
	return rapid.OneOf(rapid.Uint64Range(0, 20), rapid.Uint64Range(math.MaxUint64-5, math.MaxUint64)).Draw(t, "amount")
}

// nextTime advances the entry time by 0–3 s, so that windows close mid-run.
func nextTime(t *rapid.T, l *ledger) uint64 { return l.time + rapid.Uint64Range(0, 3000).Draw(t, "dt") }

// TestVoteNeverDoubleCastsAndReplayAgrees applies random vote events and
// checks, against a model built from the accepted ones only, that no eid
// ever has two active casts on a ballot, that only registered, active
// voters cast on open ballots, that tallies count exactly the active casts,
// and that a replay from entry 0 gives the same state.
func TestVoteNeverDoubleCastsAndReplayAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		authority := rapid.Bool().Draw(t, "authority")
		var l *ledger
		if authority {
			l = newLedger(t, "vote", keyA)
		} else {
			l = newLedger(t, "vote")
		}
		type bal struct {
			closed bool
			closes uint64 // 0: none
		}
		ballots := map[string]*bal{}
		open := func(b *bal, tm uint64) bool { return !b.closed && (b.closes == 0 || tm < b.closes) }
		active := map[string]map[string]string{} // eid → ballot → choice
		withdrawn := map[string]bool{}
		names := []string{"b0", "b1", "b2"}
		choices := []string{"x", "y", "z"}
		// A prologue opens ballots and registers voters, so that random
		// events find something to act on.
		for _, b := range names[:2] {
			l.must("ballot.open", m{"ballot": b, "question": "q", "choices": []any{"x", "y"}}, keyA)
			ballots[b] = &bal{}
		}
		for i, id := range []string{"p0", "p1", "p2"} {
			p := m{"voter_id": id}
			if i == 2 {
				p["key"] = pubText(keyV)
			}
			active[l.must("vote.register", p, keyA).EID] = map[string]string{}
		}
		n := rapid.IntRange(1, 60).Draw(t, "events")
		for range n {
			eid := rapid.SampledFrom(append(l.eids[:len(l.eids):len(l.eids)], "aaaaaaaaaaaaaaaa")).Draw(t, "eid")
			b := rapid.SampledFrom(names).Draw(t, "ballot")
			by, tm := drawSigner(t), nextTime(t, l)
			var typ string
			var p m
			switch rapid.IntRange(0, 7).Draw(t, "op") {
			case 6, 7:
				typ, p = "ballot.open", m{"ballot": b, "question": "q", "choices": []any{"x", "y"}}
				if rapid.Bool().Draw(t, "closes") {
					p["closes"] = tm + rapid.Uint64Range(0, 20000).Draw(t, "window")
				}
			case 5:
				typ, p = "ballot.close", m{"ballot": b}
			case 4:
				typ, p = "vote.register", m{"voter_id": rapid.SampledFrom([]string{"v0", "v1", "v2", "v3"}).Draw(t, "voter_id")}
				if rapid.Bool().Draw(t, "keyed") {
					p["key"] = pubText(keyV)
				}
			case 0, 1:
				typ, p = "vote.cast", m{"eid": eid, "ballot": b, "choice": rapid.SampledFrom(choices).Draw(t, "choice")}
			case 2:
				typ, p = "vote.uncast", m{"eid": eid, "ballot": b}
			case 3:
				typ, p = "vote.withdraw", m{"eid": eid}
			}
			if _, err := l.apply(typ, p, by, tm); err != nil {
				continue
			}
			switch typ {
			case "ballot.open":
				c, _ := p["closes"].(uint64)
				if c == 0 && p["closes"] != nil {
					c = 1 // closes 0: closed from the start
				}
				ballots[b] = &bal{closes: c}
			case "ballot.close":
				ballots[b].closed = true
			case "vote.register":
				active[l.eids[len(l.eids)-1]] = map[string]string{}
			case "vote.cast":
				if ballots[b] == nil || !open(ballots[b], tm) || withdrawn[eid] {
					t.Fatalf("cast accepted on a closed or unknown ballot or by a withdrawn voter")
				}
				if _, dup := active[eid][b]; dup {
					t.Fatalf("a second active cast of %s on %s was accepted", eid, b)
				}
				active[eid][b] = p["choice"].(string)
			case "vote.uncast":
				if _, ok := active[eid][b]; !ok || !open(ballots[b], tm) {
					t.Fatalf("uncast accepted without an active cast on an open ballot")
				}
				delete(active[eid], b)
			case "vote.withdraw":
				if withdrawn[eid] {
					t.Fatalf("second withdraw accepted")
				}
				withdrawn[eid] = true
				for bb := range active[eid] {
					if open(ballots[bb], tm) {
						delete(active[eid], bb)
					}
				}
			}
		}
		for name := range ballots {
			want := map[string]uint64{"x": 0, "y": 0}
			for _, casts := range active {
				if c, ok := casts[name]; ok {
					want[c]++
				}
			}
			got := l.view("tally", m{"ballot": name})["choices"].(map[string]any)
			for c, w := range want {
				if got[c] != w {
					t.Fatalf("tally %s: %s = %v, want %d", name, c, got[c], w)
				}
			}
		}
		replayEquals(t, l)
	})
}

// TestDonationNeverOverdrawsAndReplayAgrees checks that no accepted
// disbursement exceeds the fund's balance, no donation reaches a closed
// fund, the fund view matches the model, and a replay agrees.
func TestDonationNeverOverdrawsAndReplayAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := newLedger(t, "donation")
		type fnd struct {
			in, out uint64
			closed  bool
		}
		funds := map[string]*fnd{}
		n := rapid.IntRange(1, 40).Draw(t, "events")
		for range n {
			f := rapid.SampledFrom([]string{"f0", "f1"}).Draw(t, "fund")
			amount := drawAmount(t)
			var typ string
			var p m
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				typ, p = "fund.open", m{"fund": f, "name": "n", "unit": "EUR-cent"}
			case 1:
				typ, p = "donation.in", m{"fund": f, "amount": amount}
			case 2:
				typ, p = "donation.out", m{"fund": f, "amount": amount, "purpose": "p"}
			case 3:
				typ, p = "fund.close", m{"fund": f}
			}
			if _, err := l.apply(typ, p, drawSigner(t), nextTime(t, l)); err != nil {
				continue
			}
			switch typ {
			case "fund.open":
				funds[f] = &fnd{}
			case "donation.in":
				if funds[f].closed || funds[f].in+amount < funds[f].in {
					t.Fatalf("donation to a closed fund or past 2^64 accepted")
				}
				funds[f].in += amount
			case "donation.out":
				if amount > funds[f].in-funds[f].out {
					t.Fatalf("overdrawing disbursement of %d accepted", amount)
				}
				funds[f].out += amount
			case "fund.close":
				funds[f].closed = true
			}
		}
		for name, f := range funds {
			v := l.view("fund", m{"fund": name})
			if v["in"] != f.in || v["out"] != f.out || v["balance"] != f.in-f.out || v["open"] != !f.closed {
				t.Fatalf("fund %s view %v, want in %d out %d closed %v", name, v, f.in, f.out, f.closed)
			}
		}
		replayEquals(t, l)
	})
}

// TestResourceNeverGoesNegativeAndReplayAgrees checks that no accepted
// transfer or consumption exceeds the balance, units never mix, and the
// account views match the model, and that a replay agrees.
func TestResourceNeverGoesNegativeAndReplayAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := newLedger(t, "resource")
		type acc struct {
			unit              string
			balance, consumed uint64
			closed            bool
		}
		accts := map[string]*acc{}
		names := []string{"a", "b", "c"}
		n := rapid.IntRange(1, 40).Draw(t, "events")
		for range n {
			a := rapid.SampledFrom(names).Draw(t, "account")
			b := rapid.SampledFrom(names).Draw(t, "to")
			amount := drawAmount(t)
			var typ string
			var p m
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0:
				typ, p = "account.open", m{"account": a, "unit": rapid.SampledFrom([]string{"cpu-s", "gpu-s"}).Draw(t, "unit")}
				if rapid.Bool().Draw(t, "keyed") {
					p["key"] = pubText(keyV)
				}
			case 1:
				typ, p = "alloc", m{"account": a, "amount": amount}
			case 2:
				typ, p = "transfer", m{"from": a, "to": b, "amount": amount}
			case 3:
				typ, p = "consume", m{"account": a, "amount": amount}
			case 4:
				typ, p = "account.close", m{"account": a}
			}
			if _, err := l.apply(typ, p, drawSigner(t), nextTime(t, l)); err != nil {
				continue
			}
			switch typ {
			case "account.open":
				accts[a] = &acc{unit: p["unit"].(string)}
			case "alloc":
				accts[a].balance += amount
			case "transfer":
				if amount > accts[a].balance || a == b || accts[a].unit != accts[b].unit || accts[a].closed || accts[b].closed {
					t.Fatalf("transfer of %d from %s to %s accepted against the rules", amount, a, b)
				}
				accts[a].balance -= amount
				accts[b].balance += amount
			case "consume":
				if amount > accts[a].balance {
					t.Fatalf("consumption of %d from %s with %d accepted", amount, a, accts[a].balance)
				}
				accts[a].balance -= amount
				accts[a].consumed += amount
			case "account.close":
				if accts[a].balance != 0 {
					t.Fatalf("close of %s with balance %d accepted", a, accts[a].balance)
				}
				accts[a].closed = true
			}
		}
		for name, a := range accts {
			v := l.view("account", m{"account": name})
			if v["balance"] != a.balance || v["consumed"] != a.consumed || v["open"] != !a.closed {
				t.Fatalf("account %s view %v, want balance %d consumed %d closed %v", name, v, a.balance, a.consumed, a.closed)
			}
		}
		replayEquals(t, l)
	})
}
