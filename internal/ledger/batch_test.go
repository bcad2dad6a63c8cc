package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

func TestBatchEnd(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ held, newest, want uint64 }{
		{0, 1, 1}, {0, 127, 127}, {0, 128, 128}, {0, 129, 128}, {0, 5000, 128},
		{1, 5000, 128}, {127, 5000, 128}, {128, 5000, 256}, {129, 300, 256},
		{256, 300, 300}, {299, 300, 300}, {300, 300, 300}, {301, 300, 300},
	} {
		if got := BatchEnd(c.held, c.newest); got != c.want {
			t.Errorf("BatchEnd(%d, %d) = %d, want %d", c.held, c.newest, got, c.want)
		}
	}
}

// stored reads the stored checkpoints of chain key k by size.
func stored(t *testing.T, e *env, k store.ChainKey) map[uint64]store.StoredCheckpoint {
	t.Helper()
	out := map[uint64]store.StoredCheckpoint{}
	err := e.st.View(ctx, func(tx store.ReadTx) error {
		return tx.Checkpoints(k, func(cp store.StoredCheckpoint) error {
			cp.Note, cp.Cosignatures = bytes.Clone(cp.Note), bytes.Clone(cp.Cosignatures)
			out[cp.Size] = cp
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantBatchPoints checks that the checkpoint of every batch point up to
// size is stored, kept, signed by the home's key and has the root of the
// tree of that size (a receipt of its last entry against it verifies).
func wantBatchPoints(t *testing.T, e *env, chain string, size uint64, pub ed25519.PublicKey) {
	t.Helper()
	origin := chain
	if !strings.HasPrefix(chain, "vserv/") {
		origin = e.l.origin(chain)
	}
	cps := stored(t, e, keyOfOrigin(t, origin))
	for k := uint64(BatchEvery); k <= size; k += BatchEvery {
		cp, ok := cps[k]
		if !ok {
			t.Fatalf("%s: no checkpoint stored at batch point %d (stored: %v)", chain, k, sizes(cps))
		}
		if cp.Keep&store.KeepBatchPoint == 0 {
			t.Errorf("%s: checkpoint %d is not marked a batch point (keep %b)", chain, k, cp.Keep)
		}
		if c, err := verify.OpenCheckpoint(cp.Note, origin, pub); err != nil || c.Size != k {
			t.Fatalf("%s: checkpoint %d: %v", chain, k, err)
		}
		r, err := e.l.Proof(ctx, chain, k-1, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.VerifyReceipt(r, verify.ReceiptOptions{ServerKey: pub}); err != nil {
			t.Fatalf("%s: receipt of %d against batch point %d: %v", chain, k-1, k, err)
		}
	}
}

func keyOfOrigin(t *testing.T, origin string) store.ChainKey {
	t.Helper()
	rest, _ := strings.CutPrefix(origin, "vserv/")
	id, name, ok := strings.Cut(rest, "/")
	if !ok {
		t.Fatalf("bad origin %q", origin)
	}
	return store.ChainKey{Origin: id, Name: name}
}

func sizes(cps map[uint64]store.StoredCheckpoint) []uint64 {
	var out []uint64
	for k := range cps {
		out = append(out, k)
	}
	return out
}

func TestCommitSignsAndKeepsEveryBatchPoint(t *testing.T) {
	t.Parallel()
	e := newHeadsEnv(t) // with a heads file, Open would backfill what is missing
	// One append crossing two batch points, then appends of 100 (crossing
	// 384 inside one), then one ending exactly at a batch point.
	e.appendN("t", 0, 300)
	wantBatchPoints(t, e, "t", 300, testPub())
	e.appendN("t", 300, 100)
	e.appendN("t", 400, 112) // 512
	e.appendN("t", 512, 1)
	wantBatchPoints(t, e, "t", 513, testPub())
	cps := stored(t, e, testKey("t"))
	for _, gone := range []uint64{300, 400} {
		if _, ok := cps[gone]; ok {
			t.Errorf("checkpoint %d (no batch point, no milestone) was kept", gone)
		}
	}
	if cps[512].Keep&store.KeepBatchPoint == 0 {
		t.Errorf("the head of size 512 was not kept as a batch point")
	}
	// A group commit of several jobs crossing a batch point between them.
	origin := e.l.origin("t")
	var group []*appendJob
	for i := range 3 {
		j := &appendJob{chain: "t", resp: make(chan appendOutcome, 1)}
		for n := range 50 {
			r, err := checkRecord(rec(t, 1000+i*50+n, "g"), 0, origin, false)
			if err != nil {
				t.Fatal(err)
			}
			j.checks = append(j.checks, precheck{rec: r})
		}
		group = append(group, j)
	}
	// One group commit, run on the committer goroutine.
	if err := e.l.runAdmin(ctx, func() error { e.l.commitGroup(group); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, j := range group {
		if out := <-j.resp; out.err != nil {
			t.Fatal(out.err)
		}
	}
	wantBatchPoints(t, e, "t", 663, testPub())
	// Restarting finds nothing to backfill.
	logs := &syncBuffer{}
	e.logs = logs
	e.reopen()
	if strings.Contains(logs.String(), "batch point") {
		t.Errorf("reopen backfilled: %s", logs)
	}
}

func TestOpenBackfillsMissingBatchPoints(t *testing.T) {
	t.Parallel()
	e := newHeadsEnv(t)
	e.appendN("t", 0, 600)
	before := stored(t, e, testKey("t"))
	// A database from before batch points: only the heads and milestones.
	e.close()
	st := openStore(t, e.path)
	err := st.Update(ctx, func(tx store.WriteTx) error {
		for k := uint64(BatchEvery); k <= 600; k += BatchEvery {
			if err := tx.DeleteCheckpoint(testKey("t"), k); err != nil {
				return err
			}
		}
		// A stored head at a batch point from before: kept only as a milestone.
		return tx.PutCheckpoint(testKey("t"), store.StoredCheckpoint{Size: 0, Note: before[0].Note, Keep: store.KeepMilestone})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Without a heads file nothing is signed at Open.
	heads := e.heads
	e.heads = ""
	e.open()
	if got := stored(t, e, testKey("t")); len(got) != 2 {
		t.Fatalf("a ledger without a heads file backfilled: %v", sizes(got))
	}
	e.close()
	e.heads = heads
	logs := &syncBuffer{}
	e.logs = logs
	e.open()
	if !strings.Contains(logs.String(), "batch point checkpoints added") || !strings.Contains(logs.String(), "signed=4") {
		t.Fatalf("log does not say 4 were added: %s", logs)
	}
	wantBatchPoints(t, e, "t", 600, testPub())
	after := stored(t, e, testKey("t"))
	for k := uint64(BatchEvery); k <= 600; k += BatchEvery {
		// Ed25519 is deterministic: the same key signs the same bytes.
		if !bytes.Equal(after[k].Note, before[k].Note) {
			t.Errorf("backfilled checkpoint %d differs from the one signed at commit", k)
		}
	}
	logs2 := &syncBuffer{}
	e.logs = logs2
	e.reopen()
	if strings.Contains(logs2.String(), "batch point") {
		t.Errorf("second open backfilled again: %s", logs2)
	}
	// The chain goes on.
	e.appendN("t", 600, 40)
	wantBatchPoints(t, e, "t", 640, testPub())
}

// batchTo is home's batch of chain [from, to) with its kept checkpoint of
// size to.
func batchTo(t *testing.T, home *env, chain string, from, to uint64) MirrorBatch {
	t.Helper()
	b := batchOf(t, home, chain, from)
	entries, err := home.l.Entries(ctx, chain, from, to, MaxMirrorEntries, MaxMirrorBytes)
	if err != nil || uint64(len(entries)) != to-from {
		t.Fatalf("Entries(%d, %d) = %d entries, %v", from, to, len(entries), err)
	}
	proof, cp, err := home.l.Consistency(ctx, chain, from, to)
	if err != nil {
		t.Fatal(err)
	}
	b.Entries, b.Checkpoint, b.Proof = entries, cp, proof
	return b
}

func TestMirrorKeepsBatchPointsAndTheHomesNote(t *testing.T) {
	t.Parallel()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 300)
	for held := uint64(0); held < 300; {
		end := BatchEnd(held, 300)
		mirrorOK(t, b, batchTo(t, a, "t", held, end), end)
		held = end
	}
	a.appendN("t", 300, 100)
	mirrorOK(t, b, batchTo(t, a, "t", 300, 384), 384)
	mirrorOK(t, b, batchTo(t, a, "t", 384, 400), 400)
	wantBatchPoints(t, b, homeT, 400, testPub())
	home := stored(t, a, testKey("t"))
	mirror := stored(t, b, testKey("t"))
	for k := uint64(BatchEvery); k <= 400; k += BatchEvery {
		if !bytes.Equal(home[k].Note, mirror[k].Note) {
			t.Errorf("batch point %d: the mirror's note is not the home's", k)
		}
		// rcons on the mirror to each batch point.
		proof, note, err := b.l.Consistency(ctx, homeT, BatchEvery, k)
		if err != nil || !bytes.Equal(note, home[k].Note) {
			t.Fatalf("mirror rcons %d %d: %v", BatchEvery, k, err)
		}
		older, _ := verify.OpenCheckpoint(home[BatchEvery].Note, homeT, testPub())
		newer, _ := verify.OpenCheckpoint(note, homeT, testPub())
		if err := verify.VerifyConsistency(older, newer, proof); err != nil {
			t.Errorf("mirror rcons %d %d: %v", BatchEvery, k, err)
		}
	}

	// A checkpoint with a witness's cosignature: the mirror stores the
	// note as the home signed it, and serves the same head bytes apart
	// from the cosignature lines.
	a.appendN("t", 400, 5)
	head, err := a.l.Head(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(head), "\n\n")
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wid := verify.ServerIDFromKey(wpriv.Public().(ed25519.PublicKey))
	line, err := verify.CosignLine(text+"\n", verify.CosignatureSigner(wid, wpriv, time.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.l.AddCosignature(ctx, "t", 405, line); err != nil {
		t.Fatal(err)
	}
	cosigned, _ := a.l.Head(ctx, "t")
	if string(cosigned) != string(head)+line+"\n" {
		t.Fatalf("home head not cosigned: %q", cosigned)
	}
	bt := batchTo(t, a, "t", 400, 405)
	bt.Checkpoint = cosigned
	mirrorOK(t, b, bt, 405)
	got, err := b.l.Head(ctx, homeT)
	if err != nil || string(got) != string(head) {
		t.Fatalf("mirror head = %q, %v; want the home's note without cosignatures %q", got, err, head)
	}
}

func TestEntries(t *testing.T) {
	t.Parallel()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 10)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 10)
	all, err := a.l.AbsMany(ctx, "t", []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := len(all[0])
	for _, c := range []struct {
		name           string
		chain          string
		from, to       uint64
		maxN, maxBytes int
		want           []int // seqs
		code           wire.Code
	}{
		{"all", "t", 0, 10, 100, 1 << 20, seqRange(0, 10), ""},
		{"to beyond size is cut", "t", 3, 1 << 40, 100, 1 << 20, seqRange(3, 10), ""},
		{"cut at max entries", "t", 2, 10, 3, 1 << 20, seqRange(2, 5), ""},
		{"cut at max bytes", "t", 0, 10, 100, 3*one + one/2, seqRange(0, 3), ""},
		{"always one entry", "t", 4, 10, 100, 1, seqRange(4, 5), ""},
		{"from == size", "t", 10, 20, 100, 1 << 20, seqRange(0, 0), ""},
		{"to <= from", "t", 5, 5, 100, 1 << 20, seqRange(0, 0), ""},
		{"mirrored by full origin", homeT, 7, 10, 100, 1 << 20, seqRange(7, 10), ""},
		{"from beyond size", "t", 11, 20, 100, 1 << 20, nil, wire.CodeNotFound},
		{"no such chain", "nope", 0, 1, 100, 1 << 20, nil, wire.CodeNotFound},
		{"bad origin", "vserv/x/t", 0, 1, 100, 1 << 20, nil, wire.CodeInvalid},
		{"zero entries", "t", 0, 1, 0, 1 << 20, nil, wire.CodeInvalid},
		{"negative bytes", "t", 0, 1, 1, -1, nil, wire.CodeInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := a.l
			if strings.HasPrefix(c.chain, "vserv/") {
				l = b.l
			}
			got, err := l.Entries(ctx, c.chain, c.from, c.to, c.maxN, c.maxBytes)
			if c.code != "" {
				testenv.WantCode(t, err, c.code, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || len(got) != len(c.want) {
				t.Fatalf("got %d entries (nil %v), want %d", len(got), got == nil, len(c.want))
			}
			for i, s := range c.want {
				if !bytes.Equal(got[i], all[s]) {
					t.Errorf("entry %d is not seq %d", i, s)
				}
			}
		})
	}
}

func seqRange(from, to int) []int {
	out := []int{}
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestEntryTime(t *testing.T) {
	t.Parallel()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 3)
	a.appendN("t", 3, 1)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 4)
	for seq := range uint64(4) {
		raw, _, err := a.l.Abs(ctx, "t", int64(seq))
		if err != nil {
			t.Fatal(err)
		}
		e, _, _ := verify.ParseEntry(raw)
		for _, c := range []struct {
			l     *Ledger
			chain string
		}{{a.l, "t"}, {b.l, homeT}} {
			got, err := c.l.EntryTime(ctx, c.chain, seq)
			if err != nil || got.UnixMilli() != int64(e.Time) {
				t.Errorf("EntryTime(%s, %d) = %v, %v; want %d ms", c.chain, seq, got, err, e.Time)
			}
		}
	}
	_, err := a.l.EntryTime(ctx, "t", 4)
	testenv.WantCode(t, err, wire.CodeNotFound, "has 4 entries")
	_, err = a.l.EntryTime(ctx, "nope", 0)
	testenv.WantCode(t, err, wire.CodeNotFound, "")
}

func TestWatchersSeeOwnCommitsAndMirroredBatches(t *testing.T) {
	t.Parallel()
	a, b := newEnv(t), newMirrorEnv(t)
	w1, w2 := a.l.Watch(), a.l.Watch()
	defer w1.Close()
	closed := a.l.Watch()
	closed.Close()
	// Nobody drains the watchers: commits must not block on them.
	for i := range 20 {
		a.appendN("t", i*3, 3)
	}
	for _, w := range []*Watcher{w1, w2} {
		select {
		case <-w.C():
		case <-time.After(5 * time.Second):
			t.Fatal("no signal after commits")
		}
		got := w.Take()
		if len(got) != 1 || got[testKey("t")] != 60 {
			t.Errorf("Take = %v, want t at 60", got)
		}
		if got := w.Take(); len(got) != 0 {
			t.Errorf("second Take = %v, want nothing", got)
		}
		select {
		case <-w.C():
			t.Error("a second signal for coalesced commits")
		default:
		}
	}
	w2.Close()
	select {
	case <-closed.C():
		t.Error("a closed watcher was signalled")
	default:
	}
	// A new chain is a change too, at size 0.
	if err := a.l.CreateChain(ctx, "fresh", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	<-w1.C()
	if got := w1.Take(); len(got) != 1 || got[testKey("fresh")] != 0 {
		t.Errorf("Take after mkchain = %v, want fresh at 0", got)
	}
	// The witness submitter's single consumer still works beside them.
	if got := a.l.TakeSigned(); got["t"] != 60 {
		t.Errorf("TakeSigned = %v", got)
	}

	mw := b.l.Watch()
	defer mw.Close()
	mirrorOK(t, b, batchOf(t, a, "t", 0), 60)
	select {
	case <-mw.C():
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after a mirrored batch")
	}
	k := store.ChainKey{Origin: testServerID, Name: "t"}
	if got := mw.Take(); len(got) != 1 || got[k] != 60 {
		t.Errorf("mirror Take = %v, want %v at 60", got, k)
	}
	// A retransmission changes nothing and signals nothing.
	mirrorOK(t, b, batchOf(t, a, "t", 50), 60)
	select {
	case <-mw.C():
		t.Error("a retransmission was signalled")
	default:
	}
}

func TestWitnessQuorumPicksTheNewestCosignedCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.quorum = 2
	e.reopen()
	e.appendN("t", 0, 3)
	head, _ := e.l.Head(ctx, "t")
	text, _, _ := strings.Cut(string(head), "\n\n")
	cosign := func(size uint64, text string, n int) {
		for i := range n {
			_, wpriv, _ := ed25519.GenerateKey(nil)
			wid := verify.ServerIDFromKey(wpriv.Public().(ed25519.PublicKey))
			line, err := verify.CosignLine(text+"\n", verify.CosignatureSigner(wid, wpriv, time.Now))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.l.AddCosignature(ctx, "t", size, line); err != nil {
				t.Fatal(fmt.Errorf("cosignature %d: %w", i, err))
			}
		}
	}
	cosign(3, text, 2)
	e.appendN("t", 3, 2)
	head5, _ := e.l.Head(ctx, "t")
	text5, _, _ := strings.Cut(string(head5), "\n\n")
	cosign(5, text5, 1) // below the quorum
	e.appendN("t", 5, 1)
	for _, c := range []struct {
		quorum   int
		seq      uint64
		wantSize uint64
	}{
		{2, 0, 3}, {2, 2, 3}, {2, 3, 6}, {2, 5, 6},
		{1, 0, 5}, {1, 4, 5}, {1, 5, 6},
		{3, 0, 6}, {0, 0, 6},
	} {
		e.l.cfg.WitnessQuorum = c.quorum // read only by Proof; no other goroutine runs one here
		r, err := e.l.Proof(ctx, "t", c.seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		v, err := verify.VerifyReceipt(r, verify.ReceiptOptions{ServerKey: testPub()})
		if err != nil || v.Checkpoint.Size != c.wantSize {
			t.Errorf("quorum %d, seq %d: receipt at %v (%v), want size %d", c.quorum, c.seq, v, err, c.wantSize)
		}
	}
}
