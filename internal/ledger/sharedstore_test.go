package ledger

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Two front ends on one shared store (PostgreSQL, later) each hold a chain's
// head in memory, and each may be behind the other. The committer locks the
// head inside its transaction and reloads the chain when the stored size is
// not the one it holds, so it only ever signs a checkpoint that extends the
// head as stored. Two Ledgers on the same bbolt Store are that situation.
func TestTwoLedgersOnOneStoreExtendEachOthersHeadsAndNeverForkASize(t *testing.T) {
	e := newEnv(t)
	b, err := Open(ctx, e.st, Config{ServerID: testServerID, Signer: testPriv, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ledgers := []*Ledger{e.l, b}
	origin := verify.OriginLine(testServerID, "t")
	roots := map[uint64][32]byte{} // every checkpoint signed, by size
	var prev *verify.Checkpoint
	const rounds = 12
	for i := range rounds {
		l := ledgers[i%2]
		res, err := l.Append(ctx, "t", [][]byte{rec(t, i, i)}, AppendOptions{Receipt: true})
		if err != nil {
			t.Fatalf("append %d on ledger %d: %v", i, i%2, err)
		}
		if res[0].Seq != uint64(i) {
			t.Fatalf("append %d on ledger %d got seq %d: it did not see the other ledger's entries", i, i%2, res[0].Seq)
		}
		v, err := verify.VerifyReceipt(res[0].Receipt, verify.ReceiptOptions{ServerKey: testPub()})
		if err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		cp := v.Checkpoint
		if cp.Size != uint64(i+1) {
			t.Fatalf("append %d signed size %d, want %d", i, cp.Size, i+1)
		}
		if r, ok := roots[cp.Size]; ok && r != cp.Root {
			t.Fatalf("two checkpoints of size %d with different roots", cp.Size)
		}
		roots[cp.Size] = cp.Root
		head, err := l.Head(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.OpenCheckpoint(head, origin, testPub()); err != nil {
			t.Fatalf("head after append %d: %v", i, err)
		}
		if prev != nil {
			hashes, _, err := l.Consistency(ctx, "t", prev.Size, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := verify.VerifyConsistency(prev, cp, hashes); err != nil {
				t.Fatalf("checkpoint %d is not consistent with %d: %v", cp.Size, prev.Size, err)
			}
		}
		prev = cp
		// Every entry so far, the other ledger's included, reads back.
		for seq := range uint64(i + 1) {
			entry, _, err := l.Abs(ctx, "t", int64(seq))
			if err != nil {
				t.Fatalf("ledger %d after append %d: entry %d: %v", i%2, i, seq, err)
			}
			if got, _, _ := verify.ParseEntry(entry); got == nil || got.Seq != seq {
				t.Fatalf("ledger %d: entry %d reads back as %+v", i%2, seq, got)
			}
		}
	}
	// A retry on the other ledger of a record the first one appended is the
	// duplicate it is, not a new entry.
	res, err := ledgers[1].Append(ctx, "t", [][]byte{rec(t, rounds-1, rounds-1)}, AppendOptions{})
	if err != nil || res[0].Seq != rounds-1 {
		t.Fatalf("retry of the newest record on the other ledger: seq %v, %v; want %d", res, err, rounds-1)
	}
	faults, err := VerifyDB(ctx, e.st, testPub(), nil)
	if err != nil || len(faults) > 0 {
		t.Fatalf("VerifyDB after alternating appends: %v\n%s", err, faultList(faults))
	}
}

// A store keys chains by origin and name: a mirror's copy of another home's
// "t" beside this home's own "t" is another chain, which the ledger lists as
// a mirror (here refused further batches: junk without a checkpoint), but
// never checks as its own nor extends by appends.
func TestChainOfTheSameNameUnderAnotherOriginIsIndependent(t *testing.T) {
	e := newEnv(t)
	e.appendN("t", 0, 3)
	other := store.ChainKey{Origin: verify.ServerIDFromKey(pubKey(k1Priv)), Name: "t"}
	junk := []byte("an entry of another home, not checked here")
	err := e.st.Update(ctx, func(tx store.WriteTx) error {
		if err := tx.PutChain(store.ChainMeta{Origin: other.Origin, Name: other.Name, Public: true}); err != nil {
			return err
		}
		rows := make([]store.Row, 5)
		for i := range rows {
			rows[i] = store.Row{Seq: uint64(i), Entry: junk, ID: [16]byte{byte(i + 1)}}
		}
		return tx.Append(other, rows)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.reopen()
	got := e.l.Chains()
	if len(got) != 2 || got[0].Name != "t" || got[0].Mirror || got[0].Size != 3 || got[0].ReadOnly != "" ||
		got[1].Origin != other.Origin || !got[1].Mirror || got[1].ReadOnly != "no signed checkpoint is stored" {
		t.Fatalf("chains of the ledger: %+v, want its own t of 3 entries, writable, then the other home's t, a read-only mirror", got)
	}
	e.appendN("t", 3, 2)
	if _, faults, err := e.l.Check(ctx, "t", "all"); err != nil || len(faults) > 0 {
		t.Fatalf("rcheck of the own t: %v %v", err, faults)
	}
	if faults, err := VerifyDB(ctx, e.st, testPub(), nil); err != nil || len(faults) > 0 {
		t.Fatalf("VerifyDB: %v %v", err, faults)
	}
	err = e.st.View(ctx, func(tx store.ReadTx) error {
		mine, err := tx.Size(testKey("t"))
		if err != nil {
			return err
		}
		theirs, err := tx.Size(other)
		if err != nil {
			return err
		}
		e4, err := tx.Entry(other, 4)
		if mine != 5 || theirs != 5 || !bytes.Equal(e4, junk) {
			t.Errorf("sizes own %d, other %d (want 5 and 5), other's entry 4 %q", mine, theirs, e4)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rabs of negative seqs on a front end whose in-memory head is behind the
// shared store counts from the end of the snapshot it reads, in that one
// read transaction: the newest entries, the other front end's included.
func TestAbsOfNegativeSeqsCountsFromTheStoredSizeNotTheOneInMemory(t *testing.T) {
	e := newEnv(t)
	b, err := Open(ctx, e.st, Config{ServerID: testServerID, Signer: testPriv, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 3 {
		if _, err := e.l.Append(ctx, "t", [][]byte{rec(t, i, i)}, AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := b.Chain("t"); err != nil || info.Size != 0 {
		t.Fatalf("the second front end holds size %d (%v), want 0: the test needs it behind", info.Size, err)
	}
	seqOf := func(entry []byte) int64 {
		t.Helper()
		if entry == nil {
			return -1
		}
		got, _, err := verify.ParseEntry(entry)
		if err != nil {
			t.Fatal(err)
		}
		return int64(got.Seq)
	}
	entries, err := b.AbsMany(ctx, "t", []int64{-1, -3, 0, -4, 3, 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, en := range entries {
		got = append(got, seqOf(en))
	}
	if want := []int64{2, 0, 0, -1, -1, 1}; !slices.Equal(got, want) {
		t.Errorf("AbsMany(-1, -3, 0, -4, 3, 1) gave seqs %v (-1: none), want %v", got, want)
	}
	entry, pos, err := b.Abs(ctx, "t", -1)
	if err != nil || pos != 2 || seqOf(entry) != 2 {
		t.Errorf("Abs(-1) = seq %d at %d, %v; want the entry at 2", seqOf(entry), pos, err)
	}
	if _, _, err := b.Abs(ctx, "t", -4); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("Abs(-4) of 3 entries: %v, want ERR notfound", err)
	}
}
