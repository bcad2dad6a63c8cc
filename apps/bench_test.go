package apps_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/vserv/vserv/apps"
)

// leafOf is a stand-in leaf hash, distinct per seq (the benchmarks apply
// events directly, without building entries).
func leafOf(seq uint64) [32]byte { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, seq)) }

type benchChain struct {
	s    apps.Schema
	c    apps.Chain
	kv   apps.MapKV
	seq  uint64
	eids []string
}

func (bc *benchChain) apply(tb testing.TB, typ string, p map[string]any) apps.Result {
	res, err := bc.s.Apply(bc.kv, bc.c, apps.Event{Seq: bc.seq, Time: t0 + bc.seq, Leaf: leafOf(bc.seq), Type: typ, Payload: p})
	if err != nil {
		tb.Fatal(err)
	}
	bc.seq++
	return res
}

func newVoteBench(tb testing.TB, ballots, voters int) *benchChain {
	s, _ := apps.For("vote")
	bc := &benchChain{s: s, c: apps.Chain{Name: "vote", Origin: testOrigin, Schema: "vote"}, kv: apps.MapKV{}}
	for i := range ballots {
		bc.apply(tb, "ballot.open", map[string]any{"ballot": fmt.Sprintf("b%d", i), "question": "Adopt the budget?", "choices": []any{"yes", "no", "abstain"}})
	}
	for i := range voters {
		bc.eids = append(bc.eids, bc.apply(tb, "vote.register", map[string]any{"voter_id": fmt.Sprintf("voter-%d", i)}).EID)
	}
	return bc
}

// BenchmarkApplyVoteCast is the committer's rule check and state update of
// one vote.cast (in-memory KV; the server adds its store's cost).
func BenchmarkApplyVoteCast(b *testing.B) {
	const voters = 100_000
	bc := newVoteBench(b, b.N/voters+1, voters)
	choices := []string{"yes", "no", "abstain"}
	payloads := make([]map[string]any, b.N)
	for i := range payloads {
		payloads[i] = map[string]any{"eid": bc.eids[i%voters], "ballot": fmt.Sprintf("b%d", i/voters), "choice": choices[i%3]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bc.apply(b, "vote.cast", payloads[i])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "casts/s")
}

var (
	millionOnce sync.Once
	million     *benchChain
)

// millionVotes is a vote chain of 1,000,000 events: 10 ballots, 495,000
// voters and 495,000 casts (and 10,000 uncasts).
func millionVotes(b *testing.B) *benchChain {
	millionOnce.Do(func() {
		const voters = 495_000
		bc := newVoteBench(b, 10, voters)
		for i := range voters {
			bc.apply(b, "vote.cast", map[string]any{"eid": bc.eids[i], "ballot": fmt.Sprintf("b%d", i%10), "choice": "yes"})
		}
		for i := range 10_000 {
			bc.apply(b, "vote.uncast", map[string]any{"eid": bc.eids[i], "ballot": fmt.Sprintf("b%d", i%10)})
		}
		if bc.seq != 1_000_010 {
			b.Fatalf("built %d events", bc.seq)
		}
		million = bc
	})
	return million
}

// BenchmarkViewAt1MEvents answers views of a chain of a million events:
// each is O(size of the view), independent of the chain's length.
func BenchmarkViewAt1MEvents(b *testing.B) {
	bc := millionVotes(b)
	for _, q := range []apps.Query{
		{Name: "tally", Args: map[string]any{"ballot": "b3"}},
		{Name: "voter", Args: map[string]any{"eid": bc.eids[123_456]}},
		{Name: "voter", Args: map[string]any{"voter_id": "voter-123456"}},
		{Name: "ballots"},
		{Name: "voters", Args: map[string]any{"from": uint64(400_000), "limit": uint64(1000)}},
	} {
		b.Run(q.String(), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := bc.s.View(bc.kv, bc.c, q.Name, q.Args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplay is recount's cost per entry: parse the entry, check the
// record (and its signature when signed), apply the rules. Entries are
// vote.cast records, unsigned.
func BenchmarkReplay(b *testing.B) {
	const voters = 1000
	l := newLedger(b, "vote")
	for i := range b.N/voters + 1 {
		l.must("ballot.open", m{"ballot": fmt.Sprintf("b%d", i), "question": "q", "choices": []any{"yes", "no"}}, nil)
	}
	for i := range voters {
		l.must("vote.register", m{"voter_id": fmt.Sprintf("voter-%d", i)}, nil)
	}
	head := len(l.entries)
	for i := range b.N {
		l.must("vote.cast", m{"eid": l.eids[i%voters], "ballot": fmt.Sprintf("b%d", i/voters), "choice": "yes"}, nil)
	}
	kv := apps.MapKV{}
	if _, err := apps.Replay(kv, l.c, 0, l.entries[:head]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := apps.Replay(kv, l.c, uint64(head), l.entries[head:]); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkReplayElection is recount's cost per entry on an election-day
// chain: one ballot, then per voter a vote.register and one vote.cast
// (b.N entries in all), unsigned. Unlike BenchmarkReplay, where each of
// 1,000 voters casts on b.N/1,000 ballots (so the voter's list of active
// casts, decoded and re-encoded by every cast, grows with b.N), the cost
// per entry here does not depend on b.N.
func BenchmarkReplayElection(b *testing.B) {
	voters := max(b.N/2, 1)
	l := newLedger(b, "vote")
	l.must("ballot.open", m{"ballot": "b1", "question": "q", "choices": []any{"yes", "no", "abstain"}}, nil)
	for i := range voters {
		l.must("vote.register", m{"voter_id": fmt.Sprintf("voter-%d", i)}, nil)
	}
	for i := range voters {
		l.must("vote.cast", m{"eid": l.eids[i], "ballot": "b1", "choice": []string{"yes", "no", "abstain"}[i%3]}, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := apps.Replay(apps.MapKV{}, l.c, 0, l.entries); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(l.entries))/b.Elapsed().Seconds(), "entries/s")
}
