package ledger

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// typed builds a record with a type.
func typed(t testing.TB, n int, typ string, payload any) []byte {
	t.Helper()
	b, err := wire.Marshal(map[string]any{"id": recID(n), "type": typ, "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// job is an append job of checked records, as Append makes it.
func (e *env) job(chain string, manage bool, recs ...[]byte) *appendJob {
	e.t.Helper()
	cs, err := e.l.state(chain)
	if err != nil {
		e.t.Fatal(err)
	}
	j := &appendJob{chain: chain, manage: manage, resp: make(chan appendOutcome, 1)}
	for _, r := range recs {
		rec, err := checkRecord(r, 0, e.l.origin(chain), cs.app != nil)
		if err != nil {
			e.t.Fatal(err)
		}
		j.checks = append(j.checks, precheck{rec: rec})
	}
	return j
}

func (e *env) fundView(chain string) map[string]any {
	e.t.Helper()
	b, _, err := e.l.View(ctx, chain, "fund", map[string]any{"fund": "f"})
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := canon.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestRulesRefusalFailsOnlyItsBatchInTheGroup commits one group (one
// transaction) holding a batch the rules refuse, a batch lacking manage, and
// good batches on the same and another chain: only the bad ones fail, and
// the refused batch's first record, which passed, leaves no trace.
func TestRulesRefusalFailsOnlyItsBatchInTheGroup(t *testing.T) {
	e := newEnv(t)
	if err := e.l.CreateChain(ctx, "d", true, 0, "donation"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Append(ctx, "d", [][]byte{typed(t, 1, "fund.open", map[string]any{"fund": "f", "name": "F", "unit": "EUR-cent"})}, AppendOptions{Manage: true}); err != nil {
		t.Fatal(err)
	}
	in := func(n int, amount uint64) []byte {
		return typed(t, n, "donation.in", map[string]any{"fund": "f", "amount": amount})
	}
	out := func(n int, amount uint64) []byte {
		return typed(t, n, "donation.out", map[string]any{"fund": "f", "amount": amount, "purpose": "p"})
	}
	group := []*appendJob{
		e.job("d", true, in(10, 5), out(11, 100)), // refused at 1
		e.job("d", false, in(20, 3)),              // fine
		e.job("t", false, rec(t, 30, 1)),          // another chain
		e.job("d", false, out(40, 1)),             // an authority event without manage
		e.job("d", true, out(50, 3)),              // sees in(20, 3), not in(10, 5)
		e.job("d", true, out(60, 1)),              // balance 0 now
	}
	e.l.commitGroup(group)
	wantErr := []wire.Code{wire.CodeInvalid, "", "", wire.CodePerm, "", wire.CodeInvalid}
	for i, j := range group {
		o := <-j.resp
		if wantErr[i] == "" {
			if o.err != nil {
				t.Errorf("batch %d of the group: %v, want OK", i, o.err)
			}
			continue
		}
		we := testenv.WantCode(t, o.err, wantErr[i], "")
		if i == 0 && (len(we.Extra) != 1 || we.Extra[0] != 1) {
			t.Errorf("refused batch: extra %v, want index 1", we.Extra)
		}
	}
	f := e.fundView("d")
	if f["in"] != uint64(3) || f["out"] != uint64(3) || f["balance"] != uint64(0) {
		t.Fatalf("fund %v, want in 3, out 3, balance 0", f)
	}
	if n, _ := e.l.Size(ctx, "d"); n != 3 {
		t.Fatalf("chain d has %d entries, want 3", n)
	}
	// The state survives a restart unchanged and is not rebuilt.
	e.reopen()
	if g := e.fundView("d"); fmt.Sprint(g) != fmt.Sprint(f) {
		t.Fatalf("after reopen fund %v, want %v", g, f)
	}
}

// BenchmarkAppendSchema compares rput on a schema chain (donation.in, the
// rules and the state's writes in the transaction) with the same records on
// a free-form chain: 32 writers, one record per call, fsync on.
func BenchmarkAppendSchema(b *testing.B) {
	for _, schema := range []string{"", "donation"} {
		name := "free"
		if schema != "" {
			name = schema
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			if err := e.l.CreateChain(ctx, "d", true, 0, schema); err != nil {
				b.Fatal(err)
			}
			if _, err := e.l.Append(ctx, "d", [][]byte{typed(b, 0, "fund.open", map[string]any{"fund": "f", "name": "F", "unit": "EUR-cent"})}, AppendOptions{Manage: true}); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			next.Store(1)
			start := time.Now()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := int(next.Add(1) - 1)
					r := typed(b, n, "donation.in", map[string]any{"fund": "f", "amount": uint64(n)})
					if _, err := e.l.Append(ctx, "d", [][]byte{r}, AppendOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(next.Load()-1)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkCommitGroupSchema is BenchmarkCommitGroup's 2x100 shape on a
// donation chain and on a free-form one: the committer's time per record.
func BenchmarkCommitGroupSchema(b *testing.B) {
	for _, schema := range []string{"", "donation"} {
		name := "free"
		if schema != "" {
			name = schema
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			if err := e.l.CreateChain(ctx, "d", true, 0, schema); err != nil {
				b.Fatal(err)
			}
			if _, err := e.l.Append(ctx, "d", [][]byte{typed(b, 0, "fund.open", map[string]any{"fund": "f", "name": "F", "unit": "EUR-cent"})}, AppendOptions{Manage: true}); err != nil {
				b.Fatal(err)
			}
			next := 1
			var took time.Duration
			records := 0
			for b.Loop() {
				b.StopTimer()
				g := make([]*appendJob, 2)
				for i := range g {
					recs := make([][]byte, 100)
					for k := range recs {
						recs[k] = typed(b, next, "donation.in", map[string]any{"fund": "f", "amount": uint64(next)})
						next++
					}
					g[i] = e.job("d", false, recs...)
				}
				b.StartTimer()
				start := time.Now()
				e.l.commitGroup(g)
				took += time.Since(start)
				records += 200
				for _, j := range g {
					if out := <-j.resp; out.err != nil {
						b.Fatal(out.err)
					}
				}
			}
			b.ReportMetric(float64(took.Microseconds())/float64(records), "us/record")
		})
	}
}
