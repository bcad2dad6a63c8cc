package ledger

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"encoding/binary"

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Tampering is done the way an operator with the file would: directly on
// the bbolt buckets, with the server stopped.

// The sub-buckets of a chain (docs/formats.md) and their seq keys.
var (
	subEntries     = []byte("entries")
	subCheckpoints = []byte("checkpoints")
)

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func chainBucket(tx *bbolt.Tx, sub []byte) *bbolt.Bucket {
	return testenv.ChainBucket(tx, testServerID, "t").Bucket(sub)
}

func editEntry(t *testing.T, tx *bbolt.Tx, seq uint64, old, new string) []byte {
	b := chainBucket(tx, subEntries)
	e := bytes.Clone(b.Get(u64(seq)))
	changed := bytes.Replace(e, []byte(old), []byte(new), 1)
	if bytes.Equal(e, changed) {
		t.Fatalf("entry %d has no %q", seq, old)
	}
	if err := b.Put(u64(seq), changed); err != nil {
		t.Fatal(err)
	}
	return changed
}

type tamperCase struct {
	name   string
	tamper func(t *testing.T, tx *bbolt.Tx, cp10 []byte)
	seq    uint64  // the entry whose earlier receipt must stop verifying
	faults []Fault // must all be reported (exactly, when exact)
	exact  bool
	// readOnly: Open must refuse writes to the chain.
	readOnly bool
}

func TestTamperMatrix(t *testing.T) {
	f := func(seq uint64, what string) Fault { return Fault{Chain: "t", Seq: seq, What: what} }
	cases := []tamperCase{
		{
			name:   "change a payload byte",
			tamper: func(t *testing.T, tx *bbolt.Tx, _ []byte) { editEntry(t, tx, 12, "n-12", "m-12") },
			seq:    12,
			faults: []Fault{
				f(12, "sum: leaf hash differs from the stored leaf"),
				f(12, "sum: id index does not point at this record"),
				f(13, "link: prev is not the leaf hash of the entry before"),
				f(30, "tree: root at size 30 differs from the signed checkpoint"),
			},
		},
		{
			name: "change an entry and re-hash everything",
			tamper: func(t *testing.T, tx *bbolt.Tx, _ []byte) {
				editEntry(t, tx, 12, "n-12", "m-12")
				testenv.RehashAll(t, tx, "t")
			},
			seq:      12,
			faults:   []Fault{f(30, "tree: root at size 30 differs from the signed checkpoint")},
			exact:    true,
			readOnly: true,
		},
		{
			name:   "delete an entry",
			tamper: func(t *testing.T, tx *bbolt.Tx, _ []byte) { chainBucket(tx, subEntries).Delete(u64(12)) },
			seq:    12,
			faults: []Fault{
				f(12, "link: entry 12 is missing"),
				f(13, "link: prev is not the leaf hash of the entry before"),
			},
		},
		{
			name: "reorder two entries",
			tamper: func(t *testing.T, tx *bbolt.Tx, _ []byte) {
				b := chainBucket(tx, subEntries)
				a, c := bytes.Clone(b.Get(u64(12))), bytes.Clone(b.Get(u64(13)))
				b.Put(u64(12), c)
				b.Put(u64(13), a)
			},
			seq: 12,
			faults: []Fault{
				f(12, "link: entry stored at 12 says seq 13"),
				f(13, "link: entry stored at 13 says seq 12"),
			},
		},
		{
			name: "truncate the tail",
			tamper: func(t *testing.T, tx *bbolt.Tx, _ []byte) {
				for s := uint64(25); s < 30; s++ {
					chainBucket(tx, subEntries).Delete(u64(s))
				}
			},
			seq:      27,
			faults:   []Fault{f(30, "tree: checkpoint of size 30 but only 25 entries")},
			exact:    true,
			readOnly: true,
		},
		{
			name: "present an older checkpoint as newer",
			tamper: func(t *testing.T, tx *bbolt.Tx, cp10 []byte) {
				chainBucket(tx, subCheckpoints).Put(u64(30), append([]byte{0}, cp10...))
			},
			seq:      27,
			faults:   []Fault{f(30, "tree: checkpoint stored as size 30 says size 10")},
			exact:    true,
			readOnly: true,
		},
		{
			// A consistent older state passes every local check; what catches
			// it is the consistency proof against a checkpoint seen before.
			name: "roll back to an older checkpoint",
			tamper: func(t *testing.T, tx *bbolt.Tx, _ []byte) {
				for s := uint64(10); s < 30; s++ {
					chainBucket(tx, subEntries).Delete(u64(s))
				}
				chainBucket(tx, subCheckpoints).Delete(u64(30))
			},
			seq: 27,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runTamperCase(t, tc) })
	}
}

func runTamperCase(t *testing.T, tc tamperCase) {
	e := newEnv(t)
	e.appendN("t", 0, 10)
	if err := e.l.KeepCheckpoint(ctx, "t", 10, nil); err != nil {
		t.Fatal(err)
	}
	e.appendN("t", 10, 10)
	e.appendN("t", 20, 10)
	before, err := e.l.Proof(ctx, "t", tc.seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts := verify.ReceiptOptions{ServerKey: testPub()}
	vb, err := verify.VerifyReceipt(before, opts)
	if err != nil {
		t.Fatal(err)
	}
	var cp10 []byte
	e.l.store.View(ctx, func(tx store.ReadTx) error {
		c, _, _ := tx.Checkpoint(testKey("t"), 10)
		cp10 = bytes.Clone(c.Note)
		return nil
	})
	e.close()

	db := openDB(t, e.path)
	if err := db.Update(func(tx *bbolt.Tx) error { tc.tamper(t, tx, cp10); return nil }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st := openStore(t, e.path)
	faults, err := VerifyDB(ctx, st, testPub(), nil)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkFaults(t, "VerifyDB", faults, tc)

	e.open()
	_, checked, err := e.l.Check(ctx, "t", "all")
	if err != nil {
		t.Fatal(err)
	}
	checkFaults(t, "Check", checked, tc)

	ro := false
	for _, c := range e.l.Chains() {
		if c.Name == "t" && c.ReadOnly != "" {
			ro = true
		}
	}
	if ro != tc.readOnly {
		t.Fatalf("read-only after open: %v, want %v", ro, tc.readOnly)
	}
	if tc.readOnly {
		_, err := e.l.Append(ctx, "t", [][]byte{rec(t, 100, 1)}, AppendOptions{})
		testenv.WantCode(t, err, wire.CodeConflict, "")
	}

	if err := stillProven(e.l, vb); err == nil {
		t.Fatal("the receipt from before still verifies against the tampered state")
	} else {
		t.Logf("receipt from before: %v", err)
	}
}

// stillProven is what a client holding an earlier receipt checks against the
// server's current state: the same entry is proven under the current head,
// and the current head is consistent with the receipt's checkpoint.
func stillProven(l *Ledger, before *verify.VerifiedReceipt) error {
	r, err := l.Proof(ctx, "t", before.Entry.Seq, 0)
	if err != nil {
		return err
	}
	after, err := verify.VerifyReceipt(r, verify.ReceiptOptions{ServerKey: testPub()})
	if err != nil {
		return err
	}
	if !bytes.Equal(after.EntryBytes, before.EntryBytes) {
		return errors.New("entry changed")
	}
	hashes, _, err := l.Consistency(ctx, "t", before.Checkpoint.Size, after.Checkpoint.Size)
	if err != nil {
		return err
	}
	return verify.VerifyConsistency(before.Checkpoint, after.Checkpoint, hashes)
}

func checkFaults(t *testing.T, who string, got []Fault, tc tamperCase) {
	t.Helper()
	for _, want := range tc.faults {
		found := false
		for _, g := range got {
			if g == want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: missing fault %v; got:\n%s", who, want, faultList(got))
		}
	}
	if tc.exact && len(got) != len(tc.faults) {
		t.Errorf("%s: want exactly %v; got:\n%s", who, tc.faults, faultList(got))
	}
}

func faultList(fs []Fault) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}
