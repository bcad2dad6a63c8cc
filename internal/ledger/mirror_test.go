package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// The mirror B of these tests has its own identity and its own store; the
// home A is newEnv's ledger (testPriv, testServerID) with its chain "t".
var (
	mirrorPriv     = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	mirrorServerID = verify.ServerIDFromKey(pubKey(mirrorPriv))
	homeT          = verify.OriginLine(testServerID, "t") // A's "t" by full origin
)

// syncBuffer is a log sink that the ledger's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newMirrorEnv opens ledger B on a fresh store, with a chain "t" of its own
// (so that a plain "t" and A's "t" by full origin are two chains on B).
func newMirrorEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "ledger.db"), clock: &testClock{},
		signer: mirrorPriv, serverID: mirrorServerID, logs: &syncBuffer{}}
	e.clock.ms.Store(1_800_000_000_000)
	e.open()
	t.Cleanup(func() { e.close() })
	if err := e.l.CreateChain(context.Background(), "t", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// batchOf is what home's push of chain from seq from to its size carries:
// the entries, its newest checkpoint and the consistency proof from from.
func batchOf(t *testing.T, home *env, chain string, from uint64) MirrorBatch {
	t.Helper()
	ctx := context.Background()
	size, err := home.l.Size(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for s := from; s < size; s++ {
		seqs = append(seqs, int64(s))
	}
	entries, err := home.l.AbsMany(ctx, chain, seqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	proof, cp, err := home.l.Consistency(ctx, chain, from, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := home.l.Chain(chain)
	if err != nil {
		t.Fatal(err)
	}
	return MirrorBatch{
		Meta: store.ChainMeta{Origin: testServerID, Name: chain, Public: info.Public, PoWBits: info.PoWBits, Schema: info.Schema},
		From: from, Entries: entries, Checkpoint: cp, Proof: proof, HomeKeys: []ed25519.PublicKey{testPub()},
	}
}

func mirrorOK(t *testing.T, m *env, b MirrorBatch, want uint64) {
	t.Helper()
	got, err := m.l.Mirror(context.Background(), b)
	if err != nil || got != want {
		t.Fatalf("Mirror(from %d, %d entries) = %d, %v; want size %d", b.From, len(b.Entries), got, err, want)
	}
}

// reencode changes an entry's fields and encodes it again (canonically).
func reencode(t *testing.T, entry []byte, fn func(*verify.Entry)) []byte {
	t.Helper()
	e, _, err := verify.ParseEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	fn(e)
	b, err := verify.EncodeEntry(*e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantErr(t *testing.T, err error, code wire.Code, text string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code || !strings.Contains(we.Text, text) {
		t.Fatalf("err = %v; want ERR %s containing %q", err, code, text)
	}
}

func TestMirrorServesTheHomesBytesAndReceiptsByFullOrigin(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 5)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 5)
	a.appendN("t", 5, 3)
	mirrorOK(t, b, batchOf(t, a, "t", 5), 8)
	// A retransmission of what is held changes nothing.
	mirrorOK(t, b, batchOf(t, a, "t", 3), 8)

	for seq := range uint64(8) {
		ea, _, err := a.l.Abs(ctx, "t", int64(seq))
		if err != nil {
			t.Fatal(err)
		}
		eb, _, err := b.l.Abs(ctx, homeT, int64(seq))
		if err != nil || !bytes.Equal(ea, eb) {
			t.Fatalf("B's Abs(%s, %d) = %x, %v; want A's bytes %x", homeT, seq, eb, err, ea)
		}
		gb, gseq, err := b.l.Get(ctx, homeT, recID(int(seq)))
		if err != nil || gseq != seq || !bytes.Equal(gb, ea) {
			t.Fatalf("B's Get(%s) = seq %d, %v; want seq %d with A's bytes", recID(int(seq)), gseq, err, seq)
		}
		ra, _ := a.l.Proof(ctx, "t", seq, 0)
		rb, err := b.l.Proof(ctx, homeT, seq, 0)
		if err != nil || !bytes.Equal(ra, rb) {
			t.Fatalf("B's receipt of %d = %q, %v; want A's %q", seq, rb, err, ra)
		}
		v, err := verify.VerifyReceipt(rb, verify.ReceiptOptions{ServerKey: testPub()})
		if err != nil || v.Entry.Seq != seq {
			t.Fatalf("B's receipt of %d does not verify with A's key: %v", seq, err)
		}
	}
	ha, _ := a.l.Head(ctx, "t")
	hb, err := b.l.Head(ctx, homeT)
	if err != nil || !bytes.Equal(ha, hb) {
		t.Fatalf("B's Head = %q, %v; want A's %q (a mirror never signs its own)", hb, err, ha)
	}
	if _, err := verify.OpenCheckpoint(hb, homeT, pubKey(mirrorPriv)); err == nil {
		t.Fatal("B's head of A's chain verifies with B's key")
	}
	pa, ca, _ := a.l.Consistency(ctx, "t", 5, 0)
	pb, cb, err := b.l.Consistency(ctx, homeT, 5, 0)
	if err != nil || !bytes.Equal(ca, cb) || len(pa) != len(pb) || !bytes.Equal(bytes.Join(pa, nil), bytes.Join(pb, nil)) {
		t.Fatalf("B's Consistency(5) = %x %q, %v; want A's %x %q", pb, cb, err, pa, ca)
	}
	ids := []string{recID(1), recID(99), recID(7)}
	ga, _ := a.l.GetMany(ctx, "t", ids, nil)
	gb, err := b.l.GetMany(ctx, homeT, ids, nil)
	if err != nil || len(gb) != 3 || !bytes.Equal(ga[0], gb[0]) || gb[1] != nil || !bytes.Equal(ga[2], gb[2]) {
		t.Fatalf("B's GetMany = %x, %v; want A's %x", gb, err, ga)
	}
	am, err := b.l.AbsMany(ctx, homeT, []int64{-1, 0, 9}, nil)
	if err != nil || !bytes.Equal(am[0], ga[2]) || am[2] != nil {
		t.Fatalf("B's AbsMany(-1, 0, 9) = %x, %v", am, err)
	}
	have, err := b.l.Have(ctx, homeT, ids)
	if err != nil || !have[0] || have[1] || !have[2] {
		t.Fatalf("B's Have = %v, %v; want true false true", have, err)
	}
	la, _, _ := a.l.List(ctx, "t", 0, 1<<62, 0, nil)
	lb, _, err := b.l.List(ctx, homeT, 0, 1<<62, 0, nil)
	if err != nil || strings.Join(la, ",") != strings.Join(lb, ",") || len(lb) != 8 {
		t.Fatalf("B's List = %v, %v; want A's %v", lb, err, la)
	}
	if n, err := b.l.Count(ctx, homeT, 0, 1<<62); err != nil || n != 8 {
		t.Fatalf("B's Count = %d, %v; want 8", n, err)
	}

	// A plain name is B's own chain, never the mirrored one.
	if n, err := b.l.Size(ctx, "t"); err != nil || n != 0 {
		t.Fatalf("B's Size(\"t\") = %d, %v; want its own empty chain", n, err)
	}
	if n, err := b.l.Size(ctx, homeT); err != nil || n != 8 {
		t.Fatalf("B's Size(%s) = %d, %v; want 8", homeT, n, err)
	}
	if _, err := b.l.Size(ctx, verify.OriginLine(testServerID, "other")); wire.CodeOf(err) != wire.CodeNotFound {
		t.Fatalf("a chain of A that B does not mirror: %v, want ERR notfound", err)
	}
	chains := b.l.Chains()
	if len(chains) != 2 || chains[0].Mirror || chains[0].Origin != mirrorServerID ||
		!chains[1].Mirror || chains[1].Origin != testServerID || chains[1].Name != "t" || chains[1].Size != 8 || !chains[1].Public {
		t.Fatalf("B's Chains() = %+v; want its own t, then A's t (mirror, 8 entries, public)", chains)
	}
	_, err = b.l.Append(ctx, homeT, [][]byte{rec(t, 100, "x")}, AppendOptions{})
	wantErr(t, err, wire.CodePerm, "written only at its home")
	_, _, err = b.l.View(ctx, homeT, "funds", nil)
	wantErr(t, err, wire.CodeInvalid, "views are kept only at its home")
	// B cannot be made to mirror its own chains.
	own := batchOf(t, b, "t", 0)
	own.Meta.Origin = mirrorServerID
	_, err = b.l.Mirror(ctx, own)
	wantErr(t, err, wire.CodeInvalid, "homed here")
}

func TestMirrorFirstBatchOfAnEmptyChainCreatesIt(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newMirrorEnv(t)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 0)
	ha, _ := a.l.Head(ctx, "t")
	if hb, err := b.l.Head(ctx, homeT); err != nil || !bytes.Equal(ha, hb) {
		t.Fatalf("B's Head of the empty mirror = %q, %v; want A's %q", hb, err, ha)
	}
	a.appendN("t", 0, 2)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 2)
}

func TestMirrorRefusesBadBatches(t *testing.T) {
	ctx := context.Background()
	a := newEnv(t)
	a.appendN("t", 0, 3)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	big := make([][]byte, 1000)
	for i := range big {
		big[i] = make([]byte, 9000)
	}
	cases := []struct {
		name string
		edit func(b *MirrorBatch)
		code wire.Code
		text string
	}{
		{"tampered last entry", func(b *MirrorBatch) {
			b.Entries[2] = bytes.Replace(b.Entries[2], []byte("n-2"), []byte("n-X"), 1)
		}, wire.CodeInvalid, "merkle root"},
		{"tampered middle entry", func(b *MirrorBatch) {
			b.Entries[1] = bytes.Replace(b.Entries[1], []byte("n-1"), []byte("n-X"), 1)
		}, wire.CodeInvalid, "entry 2: prev is not the leaf hash of entry 1"},
		{"wrong seq", func(b *MirrorBatch) {
			b.Entries[1] = reencode(t, b.Entries[1], func(e *verify.Entry) { e.Seq = 7 })
		}, wire.CodeInvalid, "entry 1: seq 7, want 1"},
		{"wrong prev", func(b *MirrorBatch) {
			b.Entries[0] = reencode(t, b.Entries[0], func(e *verify.Entry) { e.Prev = [32]byte{1} })
		}, wire.CodeInvalid, "entry 0: prev is not the leaf hash"},
		{"other origin", func(b *MirrorBatch) {
			b.Entries[0] = reencode(t, b.Entries[0], func(e *verify.Entry) { e.Origin = mirrorServerID })
		}, wire.CodeInvalid, "entry 0: origin " + mirrorServerID},
		{"other chain", func(b *MirrorBatch) {
			b.Entries[0] = reencode(t, b.Entries[0], func(e *verify.Entry) { e.Chain = "u" })
		}, wire.CodeInvalid, `entry 0: chain "u"`},
		{"not an entry", func(b *MirrorBatch) { b.Entries[0] = []byte{0xa0} }, wire.CodeInvalid, "entry 0:"},
		{"repeated record id", func(b *MirrorBatch) {
			b.Entries[1] = reencode(t, b.Entries[1], func(e *verify.Entry) { e.Record = rec(t, 0, "again") })
		}, wire.CodeInvalid, "repeats entry 0"},
		{"checkpoint signed by another key", func(b *MirrorBatch) {
			b.HomeKeys = []ed25519.PublicKey{pubKey(other)}
		}, wire.CodeInvalid, "not signed by the home's pinned key"},
		{"checkpoint of another origin", func(b *MirrorBatch) { b.Meta.Name = "u" }, wire.CodeInvalid, "not signed by the home's pinned key"},
		{"batch shorter than its checkpoint", func(b *MirrorBatch) { b.Entries = b.Entries[:2] }, wire.CodeInvalid, "covers 3 entries, the held entries plus the batch are 2"},
		{"gap", func(b *MirrorBatch) { b.From = 1 }, wire.CodeInvalid, "starts at seq 1, but this mirror holds 0"},
		{"over 1,000 entries", func(b *MirrorBatch) { b.Entries = make([][]byte, 1001) }, wire.CodeLimit, "1001 entries"},
		{"over 8 MiB", func(b *MirrorBatch) { b.Entries = big }, wire.CodeLimit, "bytes of entries"},
		{"no pinned key", func(b *MirrorBatch) { b.HomeKeys = nil }, wire.CodeInvalid, "no pinned key"},
		{"proof longer than any", func(b *MirrorBatch) { b.Proof = make([][]byte, 129) }, wire.CodeInvalid, "a consistency proof of 129 hashes"},
		{"proof from size 0 not empty", func(b *MirrorBatch) { b.Proof = [][]byte{make([]byte, 32)} }, wire.CodeConflict, "consistency proof from held size 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirrorEnv(t)
			bt := batchOf(t, a, "t", 0)
			bt.Entries = append([][]byte(nil), bt.Entries...)
			tc.edit(&bt)
			_, err := m.l.Mirror(ctx, bt)
			wantErr(t, err, tc.code, tc.text)
			if _, err := m.l.Size(ctx, homeT); wire.CodeOf(err) != wire.CodeNotFound {
				t.Fatalf("after a refused first batch, Size(%s) = %v; want ERR notfound (nothing stored)", homeT, err)
			}
			var n int
			m.st.View(ctx, func(tx store.ReadTx) error {
				metas, err := tx.Chains()
				n = len(metas)
				return err
			})
			if n != 1 {
				t.Fatalf("the store holds %d chains after a refused first batch, want 1 (B's own)", n)
			}
			// The good batch still goes in.
			mirrorOK(t, m, batchOf(t, a, "t", 0), 3)
		})
	}
}

func TestMirrorForksAreConflictsWithBothCheckpointsKept(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 3)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 3)
	held, _ := a.l.Head(ctx, "t")

	// A rewritten copy of A: the same key, another history.
	r := newEnv(t)
	for i := range 4 {
		if _, err := r.l.Append(ctx, "t", [][]byte{rec(t, i, "rewritten")}, AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r3 := batchOf(t, r, "t", 0)
	r3.From, r3.Entries = 3, nil // only the checkpoint: no entry to compare
	// Its checkpoint of size 3 is no longer stored (not a milestone): sign
	// one over its tree, as the rewriting home did.
	var root3 [32]byte
	err := r.st.View(ctx, func(tx store.ReadTx) error {
		rg, err := loadRange(tx, testKey("t"), 3)
		if err == nil {
			root3, err = rootOf(rg)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cp3, err := verify.SignCheckpoint(verify.Checkpoint{Origin: homeT, Size: 3, Root: root3}, verify.NewNoteSigner(homeT, testPriv))
	if err != nil {
		t.Fatal(err)
	}
	r3.Checkpoint, r3.Proof = cp3, nil

	a.appendN("t", 3, 2)
	badProof := batchOf(t, a, "t", 3)
	badProof.Proof = append([][]byte(nil), badProof.Proof...)
	badProof.Proof[0] = bytes.Repeat([]byte{1}, 32)

	r4 := batchOf(t, r, "t", 0)
	cases := []struct {
		name    string
		batch   MirrorBatch
		text    string
		offered []byte
	}{
		{"checkpoint of the held size with another root", r3, "checkpoint of held size 3 has another root", cp3},
		{"entry at a held seq that differs", r4, "entry 0 differs from the one held", r4.Checkpoint},
		{"bad consistency proof", badProof, "consistency proof from held size 3 to 5 does not verify", badProof.Checkpoint},
	}
	for i, tc := range cases {
		_, err := b.l.Mirror(ctx, tc.batch)
		wantErr(t, err, wire.CodeConflict, tc.text)
		forks, err := b.l.Forks(ctx, homeT)
		if err != nil || len(forks) != i+1 {
			t.Fatalf("%s: %d forks stored, %v; want %d", tc.name, len(forks), err, i+1)
		}
		f := forks[i]
		if !bytes.Equal(f.Held, held) || !bytes.Equal(f.Offered, tc.offered) || !strings.Contains(f.Reason, tc.text) || f.Ms == 0 {
			t.Fatalf("%s: fork evidence = held %q offered %q reason %q; want held %q, offered %q", tc.name, f.Held, f.Offered, f.Reason, held, tc.offered)
		}
		if !strings.Contains(b.logs.(*syncBuffer).String(), "level=ERROR msg=\"fork:") {
			t.Fatalf("%s: no error-level fork line in the log:\n%s", tc.name, b.logs.(*syncBuffer).String())
		}
		if n, _ := b.l.Size(ctx, homeT); n != 3 {
			t.Fatalf("%s: the mirror holds %d entries after a fork, want 3", tc.name, n)
		}
	}
	// A replay keeps nothing more; new evidence is kept up to MaxForks.
	if _, err := b.l.Mirror(ctx, badProof); !errors.Is(err, wire.ErrConflict) {
		t.Fatalf("replayed bad proof: %v, want ERR conflict", err)
	}
	if forks, _ := b.l.Forks(ctx, homeT); len(forks) != len(cases) {
		t.Fatalf("a replayed fork was kept again: %d forks", len(forks))
	}
	for i := range MaxForks {
		a.appendN("t", 5+i, 1)
		bp := batchOf(t, a, "t", 3)
		bp.Proof = append([][]byte(nil), bp.Proof...)
		bp.Proof[0] = bytes.Repeat([]byte{2}, 32)
		if _, err := b.l.Mirror(ctx, bp); !errors.Is(err, wire.ErrConflict) {
			t.Fatalf("bad proof %d: %v, want ERR conflict", i, err)
		}
	}
	if forks, _ := b.l.Forks(ctx, homeT); len(forks) != MaxForks {
		t.Fatalf("%d forks kept, want at most %d", len(forks), MaxForks)
	}
	// The honest batch still goes in after the forks.
	mirrorOK(t, b, batchOf(t, a, "t", 3), 5+MaxForks)
}

func TestMirrorChainSurvivesRestartWithItsChecks(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 4)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 4)
	b.reopen()
	if n, err := b.l.Size(ctx, homeT); err != nil || n != 4 {
		t.Fatalf("after restart B's Size(%s) = %d, %v; want 4", homeT, n, err)
	}
	ea, _, _ := a.l.Abs(ctx, "t", 3)
	if eb, _, err := b.l.Abs(ctx, homeT, -1); err != nil || !bytes.Equal(ea, eb) {
		t.Fatalf("after restart B's last entry = %x, %v; want A's %x", eb, err, ea)
	}
	a.appendN("t", 4, 2)
	bad := batchOf(t, a, "t", 4)
	bad.Entries = append([][]byte(nil), bad.Entries...)
	bad.Entries[0] = reencode(t, bad.Entries[0], func(e *verify.Entry) { e.Prev = [32]byte{2} })
	_, err := b.l.Mirror(ctx, bad)
	wantErr(t, err, wire.CodeInvalid, "entry 4: prev is not the leaf hash of entry 3")
	mirrorOK(t, b, batchOf(t, a, "t", 4), 6)

	// Reopened with the home's pinned keys, the newest checkpoint is
	// verified again: with a wrong key the mirror takes no more batches.
	b.homeKeys = func(string) []ed25519.PublicKey { return []ed25519.PublicKey{testPub()} }
	b.reopen()
	mirrorOK(t, b, batchOf(t, a, "t", 6), 6)
	b.homeKeys = func(string) []ed25519.PublicKey { return []ed25519.PublicKey{pubKey(mirrorPriv)} }
	b.reopen()
	a.appendN("t", 6, 1)
	_, err = b.l.Mirror(ctx, batchOf(t, a, "t", 6))
	wantErr(t, err, wire.CodeConflict, "read-only: newest checkpoint does not verify")
	if eb, _, err := b.l.Abs(ctx, homeT, 5); err != nil || eb == nil {
		t.Fatalf("a read-only mirror chain still serves reads: %v", err)
	}
}

// Readers see a mirrored chain only at sizes the home signed: every size a
// reader finds has a receipt that verifies with the home's key.
func TestMirrorBatchesWhileReadingServeOnlySignedSizes(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newMirrorEnv(t)
	a.appendN("t", 0, 1)
	mirrorOK(t, b, batchOf(t, a, "t", 0), 1)
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := b.l.Size(ctx, homeT)
			if err == nil {
				var r []byte
				if r, err = b.l.Proof(ctx, homeT, n-1, 0); err == nil {
					_, err = verify.VerifyReceipt(r, verify.ReceiptOptions{ServerKey: testPub()})
				}
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := 1; i < 20; i++ {
		a.appendN("t", i, 1)
		mirrorOK(t, b, batchOf(t, a, "t", uint64(i)), uint64(i+1))
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatalf("a reader during mirroring: %v", err)
	}
}
