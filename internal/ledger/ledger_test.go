package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

var ctx = context.Background()

func TestAppendNonASCIIRoundTripsAndVerifies(t *testing.T) {
	e := newEnv(t)
	texts := []string{"José", "زكاة المال", "Пожертвование", "投票", "寄付", "🗳️🤲🏾💰"}
	var recs [][]byte
	for i, s := range texts {
		recs = append(recs, rec(t, i, map[string]any{s: s, "list": []any{s, []byte(s)}}))
	}
	res, err := e.l.Append(ctx, "t", recs, AppendOptions{Receipt: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Seq != uint64(i) || r.ID != recID(i) {
			t.Fatalf("result %d: %+v", i, r)
		}
		entry, seq, err := e.l.Get(ctx, "t", recID(i))
		if err != nil || seq != uint64(i) {
			t.Fatalf("get %d: seq %d, %v", i, seq, err)
		}
		ent, record, err := verify.ParseEntry(entry)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ent.Record, recs[i]) || record.Payload.(map[string]any)[texts[i]] != texts[i] {
			t.Fatalf("record %d changed: %q", i, ent.Record)
		}
		if verify.LeafHash(entry) != r.Leaf {
			t.Fatalf("leaf %d", i)
		}
		v, err := verify.VerifyReceipt(r.Receipt, verify.ReceiptOptions{ServerKey: testPub()})
		if err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		if v.Checkpoint.Size != uint64(len(texts)) || !bytes.Equal(v.EntryBytes, entry) {
			t.Fatalf("receipt %d: size %d", i, v.Checkpoint.Size)
		}
	}
	n, faults, err := e.l.Check(ctx, "t", "all")
	if err != nil || n != uint64(len(texts)) || len(faults) != 0 {
		t.Fatalf("check: %d %v %v", n, faults, err)
	}
}

func TestReads(t *testing.T) {
	e := newEnv(t)
	e.appendN("t", 0, 5)
	e.appendN("t", 5, 5)
	if n, _ := e.l.Size(ctx, "t"); n != 10 {
		t.Fatalf("size %d", n)
	}
	last, seq, err := e.l.Abs(ctx, "t", -1)
	if err != nil || seq != 9 {
		t.Fatalf("abs -1: %d %v", seq, err)
	}
	first, seq, _ := e.l.Abs(ctx, "vserv/"+testServerID+"/t", 0)
	if ent, _, _ := verify.ParseEntry(first); seq != 0 || ent.Seq != 0 {
		t.Fatal("abs 0 via origin")
	}
	if ent, _, _ := verify.ParseEntry(last); ent.Seq != 9 {
		t.Fatal("abs -1 entry")
	}
	for _, s := range []int64{10, -11} {
		_, _, err := e.l.Abs(ctx, "t", s)
		testenv.WantCode(t, err, wire.CodeNotFound, "")
	}
	_, _, err = e.l.Get(ctx, "t", recID(99))
	testenv.WantCode(t, err, wire.CodeNotFound, "")
	_, _, err = e.l.Get(ctx, "t", "not-a-uuid")
	testenv.WantCode(t, err, wire.CodeInvalid, "")
	_, _, err = e.l.Get(ctx, "nochain", recID(1))
	testenv.WantCode(t, err, wire.CodeNotFound, "")
	_, _, err = e.l.Get(ctx, "vserv/"+string(bytes.Repeat([]byte("0"), 32))+"/t", recID(1))
	testenv.WantCode(t, err, wire.CodeNotFound, "")

	have, err := e.l.Have(ctx, "t", []string{recID(3), recID(42)})
	if err != nil || !slices.Equal(have, []bool{true, false}) {
		t.Fatalf("have %v %v", have, err)
	}
	many, err := e.l.GetMany(ctx, "t", []string{recID(42), recID(4)}, nil)
	if err != nil || many[0] != nil || many[1] == nil {
		t.Fatalf("getmany %v", err)
	}

	// Times: the clock advances 1 ms per reading and each batch reads it once.
	var all []string
	var cursor []byte
	for {
		ids, next, err := e.l.List(ctx, "t", 0, 1<<62, 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids...)
		if next == nil {
			break
		}
		cursor = next
	}
	want := []string{}
	for i := 0; i < 10; i++ {
		want = append(want, recID(i))
	}
	if !slices.Equal(all, want) {
		t.Fatalf("list pages: %v", all)
	}
	ent0, _, _ := verify.ParseEntry(first)
	ent9, _, _ := verify.ParseEntry(last)
	if ent0.Time == ent9.Time {
		t.Fatal("batches share a time")
	}
	for _, c := range []struct{ from, to, want uint64 }{
		{0, 1 << 62, 10}, {ent0.Time, ent0.Time + 1, 5}, {ent9.Time, ent9.Time + 1, 5},
		{ent0.Time + 1, ent9.Time, 0}, {ent9.Time + 1, 1 << 62, 0}, {5, 5, 0},
	} {
		n, err := e.l.Count(ctx, "t", c.from, c.to)
		if err != nil || n != c.want {
			t.Fatalf("count [%d,%d): %d %v, want %d", c.from, c.to, n, err, c.want)
		}
	}
	ids, _, _ := e.l.List(ctx, "t", ent9.Time, ent9.Time+1, 0, nil)
	if !slices.Equal(ids, want[5:]) {
		t.Fatalf("list second batch: %v", ids)
	}
	_, _, err = e.l.List(ctx, "t", 0, 1, MaxListLimit+1, nil)
	testenv.WantCode(t, err, wire.CodeLimit, "")
}

func TestGroupCommitEightWriters(t *testing.T) {
	e := newEnv(t)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	acked := make([][]Result, writers)
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := w*each + i
				res, err := e.l.Append(ctx, "t", [][]byte{rec(t, n, n)}, AppendOptions{})
				if err != nil {
					errs <- err
					return
				}
				acked[w] = append(acked[w], res[0])
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for w := range acked {
		for _, r := range acked[w] {
			entry, seq, err := e.l.Get(ctx, "t", r.ID)
			if err != nil || seq != r.Seq || verify.LeafHash(entry) != r.Leaf {
				t.Fatalf("acknowledged %s at %d: got %d, %v", r.ID, r.Seq, seq, err)
			}
			if seen[r.Seq] {
				t.Fatalf("seq %d given twice", r.Seq)
			}
			seen[r.Seq] = true
		}
	}
	if n, _ := e.l.Size(ctx, "t"); n != writers*each || len(seen) != writers*each {
		t.Fatalf("size %d, %d distinct seqs", n, len(seen))
	}
	for s := uint64(0); s < writers*each; s++ {
		if !seen[s] {
			t.Fatalf("hole at seq %d", s)
		}
	}
	e.reopen()
	faults, err := VerifyDB(ctx, e.st, testPub(), nil)
	if err != nil || len(faults) != 0 {
		t.Fatalf("verify: %v %v", faults, err)
	}
}

func TestDuplicateRaceStoresOnce(t *testing.T) {
	e := newEnv(t)
	r := rec(t, 7, "same")
	var wg sync.WaitGroup
	seqs := make([]uint64, 8)
	for g := range seqs {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			res, err := e.l.Append(ctx, "t", [][]byte{r}, AppendOptions{Receipt: true})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := verify.VerifyReceipt(res[0].Receipt, verify.ReceiptOptions{ServerKey: testPub()}); err != nil {
				t.Error(err)
			}
			seqs[g] = res[0].Seq + 100
		}(g)
	}
	wg.Wait()
	if n, _ := e.l.Size(ctx, "t"); n != 1 || slices.Max(seqs) != 100 || slices.Min(seqs) != 100 {
		t.Fatalf("size %d, seqs %v", n, seqs)
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	e.appendN("t", 0, 1) // record 0 exists
	other := rec(t, 0, "other content")
	bad := []byte{0xa1, 0x61, 0x78, 0x01}
	tests := []struct {
		name    string
		records [][]byte
		code    wire.Code
		index   int
	}{
		{"conflict with the chain at 2", [][]byte{rec(t, 10, 1), rec(t, 11, 1), other, rec(t, 12, 1)}, wire.CodeConflict, 2},
		{"conflict inside the batch at 3", [][]byte{rec(t, 10, 1), rec(t, 11, 1), rec(t, 10, 1), rec(t, 10, 2)}, wire.CodeConflict, 3},
		{"invalid record at 1", [][]byte{rec(t, 10, 1), bad, other}, wire.CodeInvalid, 1},
		{"earlier conflict wins over later invalid", [][]byte{rec(t, 10, 1), other, bad}, wire.CodeConflict, 1},
		{"too large at 0", [][]byte{rec(t, 10, string(make([]byte, verify.MaxRecordSize)))}, wire.CodeLimit, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.l.Append(ctx, "t", tt.records, AppendOptions{})
			we := testenv.WantCode(t, err, tt.code, "")
			if len(we.Extra) != 1 || we.Extra[0] != tt.index {
				t.Fatalf("extra %v, want [%d]", we.Extra, tt.index)
			}
			if n, _ := e.l.Size(ctx, "t"); n != 1 {
				t.Fatalf("size %d after a failed batch", n)
			}
			if have, _ := e.l.Have(ctx, "t", []string{recID(10), recID(11)}); have[0] || have[1] {
				t.Fatal("records of a failed batch are visible")
			}
		})
	}
	res, err := e.l.Append(ctx, "t", [][]byte{rec(t, 10, 1), rec(t, 0, map[string]any{"n": 0, "text": "n-0"}), rec(t, 10, 1)}, AppendOptions{})
	if err != nil || res[0].Seq != 1 || res[1].Seq != 0 || res[2].Seq != 1 {
		t.Fatalf("idempotent repeats: %+v %v", res, err)
	}
}

// TestBadBatchDoesNotFailItsGroup queues a good and a bad batch behind a
// blocked committer so that they are committed in one transaction.
func TestBadBatchDoesNotFailItsGroup(t *testing.T) {
	e := newEnv(t)
	e.appendN("t", 0, 1)
	release := make(chan struct{})
	blocked := make(chan struct{})
	go e.l.runAdmin(ctx, func() error { close(blocked); <-release; return nil })
	<-blocked
	type outcome struct {
		res []Result
		err error
	}
	good, bad, good2 := make(chan outcome, 1), make(chan outcome, 1), make(chan outcome, 1)
	send := func(c chan outcome, recs ...[]byte) {
		res, err := e.l.Append(ctx, "t", recs, AppendOptions{})
		c <- outcome{res, err}
	}
	go send(good, rec(t, 1, 1), rec(t, 2, 2))
	waitQueued(t, e.l, 1)
	go send(bad, rec(t, 3, 3), rec(t, 0, "conflict"))
	waitQueued(t, e.l, 2)
	go send(good2, rec(t, 4, 4))
	waitQueued(t, e.l, 3)
	close(release)
	g, b, g2 := <-good, <-bad, <-good2
	if g.err != nil || g2.err != nil || g.res[1].Seq != 2 || g2.res[0].Seq != 3 {
		t.Fatalf("good batches: %+v %v / %+v %v", g.res, g.err, g2.res, g2.err)
	}
	we := testenv.WantCode(t, b.err, wire.CodeConflict, "")
	if we.Extra[0] != 1 {
		t.Fatalf("bad batch index %v", we.Extra)
	}
	if n, _ := e.l.Size(ctx, "t"); n != 4 {
		t.Fatalf("size %d", n)
	}
	if _, faults, _ := e.l.Check(ctx, "t", ""); len(faults) != 0 {
		t.Fatal(faults)
	}
}

func waitQueued(t *testing.T, l *Ledger, n int) {
	for i := 0; len(l.jobs) < n; i++ {
		if i > 5000 {
			t.Fatalf("only %d jobs queued", len(l.jobs))
		}
		sleepMs(1)
	}
}

func TestPoWAndSignatureRules(t *testing.T) {
	e := newEnv(t)
	if err := e.l.CreateChain(ctx, "p", true, 8, ""); err != nil {
		t.Fatal(err)
	}
	origin := verify.OriginLine(testServerID, "p")
	plain := rec(t, 1, "x")
	_, err := e.l.Append(ctx, "p", [][]byte{plain}, AppendOptions{})
	testenv.WantCode(t, err, wire.CodeInvalid, "")

	withPoW := func(r []byte) []byte {
		var m map[string]any
		wire.Unmarshal(r, &m)
		h, _ := verify.RecordHash(r)
		m["pow"] = verify.SolvePoW(h, 8)
		out, _ := wire.Marshal(m)
		return out
	}
	if _, err := e.l.Append(ctx, "p", [][]byte{withPoW(plain)}, AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	author := testPriv
	signedOther, _ := verify.SignRecord(verify.OriginLine(testServerID, "t"), rec(t, 2, "y"), author)
	_, err = e.l.Append(ctx, "p", [][]byte{withPoW(signedOther)}, AppendOptions{})
	testenv.WantCode(t, err, wire.CodeInvalid, "")
	signed, _ := verify.SignRecord(origin, rec(t, 2, "y"), author)
	if _, err := e.l.Append(ctx, "p", [][]byte{withPoW(signed)}, AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, faults, _ := e.l.Check(ctx, "p", "all"); n != 2 || len(faults) != 0 {
		t.Fatalf("check: %d %v", n, faults)
	}
}

func TestChains(t *testing.T) {
	e := newEnv(t)
	if err := e.l.EnsureDefaultChains(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.l.EnsureDefaultChains(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range e.l.Chains() {
		names = append(names, fmt.Sprintf("%s:%v:%d:%v", c.Name, c.Public, c.PoWBits, c.ServerWritten))
	}
	want := []string{"audit:false:0:true", "donation:true:16:false", "keys:true:0:true", "resource:true:16:false", "t:true:0:false", "vote:true:16:false"}
	if !slices.Equal(names, want) {
		t.Fatalf("chains %v", names)
	}
	for _, c := range []struct {
		name string
		pow  int
		code wire.Code
	}{{"Bad", 0, wire.CodeInvalid}, {"-x", 0, wire.CodeInvalid}, {string(bytes.Repeat([]byte("a"), 65)), 0, wire.CodeInvalid},
		{"ok", 33, wire.CodeInvalid}, {"ok", -1, wire.CodeInvalid}, {"vote", 16, wire.CodeExists}} {
		testenv.WantCode(t, e.l.CreateChain(ctx, c.name, true, c.pow, ""), c.code, "")
	}
	if c, _ := e.l.Chain("vote"); c.Schema != "vote" {
		t.Fatalf("default chain vote has schema %q, want vote", c.Schema)
	}
	if err := e.l.CreateChain(ctx, "s", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.l.CreateChain(ctx, "s", true, 0, "vote"); err != nil {
		t.Fatalf("schema on an empty chain: %v", err)
	}
	testenv.WantCode(t, e.l.CreateChain(ctx, "s", true, 0, "donation"), wire.CodeExists, "")
	testenv.WantCode(t, e.l.CreateChain(ctx, "u", true, 0, "other"), wire.CodeInvalid, "")
	testenv.WantCode(t, e.l.CreateChain(ctx, "u", true, 0, "", "some-key"), wire.CodeInvalid, "")
	testenv.WantCode(t, e.l.CreateChain(ctx, "u", true, 0, "vote", "not-a-key"), wire.CodeInvalid, "")
	e.appendN("t", 0, 1)
	testenv.WantCode(t, e.l.CreateChain(ctx, "t", true, 0, "vote"), wire.CodeExists, "")
	head, _ := e.l.Head(ctx, "audit")
	if c, err := verify.OpenCheckpoint(head, verify.OriginLine(testServerID, "audit"), testPub()); err != nil || c.Size != 0 || c.Root != verify.EmptyRoot {
		t.Fatalf("audit head: %v", err)
	}
	_, err := e.l.Append(ctx, "audit", [][]byte{rec(t, 1, 1)}, AppendOptions{})
	testenv.WantCode(t, err, wire.CodePerm, "")
	if r, err := e.l.AppendServer(ctx, "audit", rec(t, 1, 1)); err != nil || r.Seq != 0 {
		t.Fatalf("server append: %v", err)
	}
	if _, err := e.l.AppendServer(ctx, "t", rec(t, 1, 1)); err == nil {
		t.Fatal("server append to a client chain")
	}
	e.reopen()
	if n, _ := e.l.Size(ctx, "audit"); n != 1 || len(e.l.Chains()) != 7 {
		t.Fatal("state lost on reopen")
	}
	for _, c := range e.l.Chains() {
		if c.ReadOnly != "" || ((c.Name == "vote" || c.Name == "s") && c.Schema != "vote") {
			t.Fatalf("after reopen: %+v", c)
		}
	}
}

func TestCheckpointsKept(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 25; i++ {
		e.appendN("t", i*100, 100) // sizes 100 .. 2500
	}
	var sizes []uint64
	e.l.store.View(ctx, func(tx store.ReadTx) error {
		return tx.Checkpoints(testKey("t"), func(c store.StoredCheckpoint) error { sizes = append(sizes, c.Size); return nil })
	})
	// The size-0 one, the milestones 1000 and 2000, every batch point
	// (multiple of BatchEvery) and the newest.
	want := []uint64{0}
	for k := uint64(BatchEvery); k < 2500; k += BatchEvery {
		if k > 1000 && want[len(want)-1] < 1000 {
			want = append(want, 1000)
		}
		if k > 2000 && want[len(want)-1] < 2000 {
			want = append(want, 2000)
		}
		want = append(want, k)
	}
	want = append(want, 2500)
	if !slices.Equal(sizes, want) {
		t.Fatalf("kept checkpoints %v", sizes)
	}
	if err := e.l.KeepCheckpoint(ctx, "t", 2500, nil); err != nil {
		t.Fatal(err)
	}
	e.appendN("t", 5000, 1)
	r, err := e.l.Proof(ctx, "t", 17, 2500)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := verify.VerifyReceipt(r, verify.ReceiptOptions{ServerKey: testPub()}); err != nil || v.Checkpoint.Size != 2500 {
		t.Fatal(err)
	}
	_, err = e.l.Proof(ctx, "t", 17, 1500)
	testenv.WantCode(t, err, wire.CodeNotFound, "")
	hashes, note, err := e.l.Consistency(ctx, "t", 1000, 2000)
	if err != nil {
		t.Fatal(err)
	}
	older, _ := e.l.Proof(ctx, "t", 0, 1000)
	ro, _ := verify.VerifyReceipt(older, verify.ReceiptOptions{ServerKey: testPub()})
	newer, _ := verify.OpenCheckpoint(note, verify.OriginLine(testServerID, "t"), testPub())
	if err := verify.VerifyConsistency(ro.Checkpoint, newer, hashes); err != nil || newer.Size != 2000 {
		t.Fatal(err)
	}
}

func TestProofsMatchReference(t *testing.T) {
	e := newEnv(t)
	ref := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < 67; i++ {
		e.appendN("t", i, 1)
	}
	e.l.store.View(ctx, func(tx store.ReadTx) error {
		return tx.Entries(testKey("t"), 0, func(_ uint64, b []byte) (bool, error) { ref.AppendData(b); return true, nil })
	})
	err := e.l.store.View(ctx, func(tx store.ReadTx) error {
		for size := uint64(1); size <= 67; size++ {
			for seq := uint64(0); seq < size; seq++ {
				got, err := inclusionProof(tx, testKey("t"), seq, size)
				if err != nil {
					return err
				}
				want, _ := ref.InclusionProof(seq, size)
				if !slices.EqualFunc(got, want, bytes.Equal) {
					return fmt.Errorf("inclusion %d/%d differs", seq, size)
				}
			}
			for old := uint64(0); old <= size; old++ {
				got, err := consistencyProof(tx, testKey("t"), old, size)
				if err != nil {
					return err
				}
				want, _ := ref.ConsistencyProof(old, size)
				if !slices.EqualFunc(got, want, bytes.Equal) {
					return fmt.Errorf("consistency %d→%d differs", old, size)
				}
			}
			rng, err := loadRange(tx, testKey("t"), size)
			if err != nil {
				return err
			}
			root, _ := rootOf(rng)
			if !bytes.Equal(root[:], ref.HashAt(size)) {
				return fmt.Errorf("root at %d differs", size)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, note, err := e.l.Consistency(ctx, "t", 0, 0)
	c, _ := verify.OpenCheckpoint(note, verify.OriginLine(testServerID, "t"), testPub())
	if err != nil || len(h) != 0 || c.Size != 67 {
		t.Fatalf("consistency from 0: %v", err)
	}
	_, _, err = e.l.Consistency(ctx, "t", 68, 0)
	testenv.WantCode(t, err, wire.CodeInvalid, "")
}

func TestCloseDrains(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e.l.Append(ctx, "t", [][]byte{rec(t, i, i)}, AppendOptions{})
		}(i)
	}
	wg.Wait()
	e.l.Close()
	_, err := e.l.Append(ctx, "t", [][]byte{rec(t, 99, 1)}, AppendOptions{})
	if !errors.Is(err, wire.ErrInternal) {
		t.Fatalf("append after close: %v", err)
	}
	e.l = nil
	e.reopen()
	if n, _ := e.l.Size(ctx, "t"); n != 20 {
		t.Fatalf("size %d after reopen", n)
	}
}
