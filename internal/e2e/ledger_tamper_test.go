package e2e_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// The tamper matrix of issue 3, run the way an operator with the file would
// attack it: the server is stopped, ledger.db is edited with bbolt directly,
// and then the offline verifier (`vserv verify`), the restarted server's
// rcheck and a client holding a receipt from before must each notice.
//
// The bucket layout is internal/store/bolt's (docs/formats.md): the test
// reaches into it on purpose, as an attacker would.

func editEntry(t *testing.T, tx *bolt.Tx, seq uint64, old, new string) {
	b := testenv.LedgerBucket(tx, "t", "entries")
	e := bytes.Clone(b.Get(testenv.BE64(seq)))
	changed := bytes.Replace(e, []byte(old), []byte(new), 1)
	if bytes.Equal(e, changed) {
		t.Fatalf("entry %d has no %q", seq, old)
	}
	if err := b.Put(testenv.BE64(seq), changed); err != nil {
		t.Fatal(err)
	}
}

type tamperFault struct {
	seq  uint64
	what string
}

func (f tamperFault) String() string { return fmt.Sprintf("chain t seq %d: %s", f.seq, f.what) }

func TestTamperedLedgerIsCaughtOfflineByRcheckAndByOldReceipts(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, tx *bolt.Tx, cp10 []byte)
		seq    uint64 // the entry whose receipt from before must stop verifying
		faults []tamperFault
	}{
		{
			name:   "change a payload byte",
			tamper: func(t *testing.T, tx *bolt.Tx, _ []byte) { editEntry(t, tx, 12, "n-12", "m-12") },
			seq:    12,
			faults: []tamperFault{
				{12, "sum: leaf hash differs from the stored leaf"},
				{13, "link: prev is not the leaf hash of the entry before"},
				{30, "tree: root at size 30 differs from the signed checkpoint"},
			},
		},
		{
			name: "change an entry and re-hash it",
			tamper: func(t *testing.T, tx *bolt.Tx, _ []byte) {
				editEntry(t, tx, 12, "n-12", "m-12")
				testenv.RehashAll(t, tx, "t")
			},
			seq:    12,
			faults: []tamperFault{{30, "tree: root at size 30 differs from the signed checkpoint"}},
		},
		{
			name: "delete an entry",
			tamper: func(t *testing.T, tx *bolt.Tx, _ []byte) {
				if err := testenv.LedgerBucket(tx, "t", "entries").Delete(testenv.BE64(12)); err != nil {
					t.Fatal(err)
				}
			},
			seq: 12,
			faults: []tamperFault{
				{12, "link: entry 12 is missing"},
				{13, "link: prev is not the leaf hash of the entry before"},
			},
		},
		{
			name: "reorder two entries",
			tamper: func(t *testing.T, tx *bolt.Tx, _ []byte) {
				b := testenv.LedgerBucket(tx, "t", "entries")
				x, y := bytes.Clone(b.Get(testenv.BE64(12))), bytes.Clone(b.Get(testenv.BE64(13)))
				b.Put(testenv.BE64(12), y)
				b.Put(testenv.BE64(13), x)
			},
			seq: 12,
			faults: []tamperFault{
				{12, "link: entry stored at 12 says seq 13"},
				{13, "link: entry stored at 13 says seq 12"},
			},
		},
		{
			name: "truncate the tail",
			tamper: func(t *testing.T, tx *bolt.Tx, _ []byte) {
				for s := uint64(25); s < 30; s++ {
					if err := testenv.LedgerBucket(tx, "t", "entries").Delete(testenv.BE64(s)); err != nil {
						t.Fatal(err)
					}
				}
			},
			seq:    27,
			faults: []tamperFault{{30, "tree: checkpoint of size 30 but only 25 entries"}},
		},
		{
			name: "present an older checkpoint as newer",
			tamper: func(t *testing.T, tx *bolt.Tx, cp10 []byte) {
				// A stored checkpoint is one byte of keep flags, then the note.
				if err := testenv.LedgerBucket(tx, "t", "checkpoints").Put(testenv.BE64(30), append([]byte{0}, cp10...)); err != nil {
					t.Fatal(err)
				}
			},
			seq:    27,
			faults: []tamperFault{{30, "tree: checkpoint stored as size 30 says size 10"}},
		},
	}
	vserv := testenv.Bin(t, "vserv")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := testenv.NewLedgerEnv(t, []string{"t"})
			testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 0, 10)...)
			cp10, err := e.Admin.Head(e.Ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 10, 10)...)
			testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 20, 10)...)
			r, err := e.Admin.Proof(e.Ctx, "t", client.BySeq(tc.seq), 0)
			if err != nil {
				t.Fatal(err)
			}
			before, err := verify.VerifyReceipt([]byte(r), e.ReceiptOptions())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Srv.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}

			db, err := bolt.Open(filepath.Join(e.Srv.DataRoot, "ledger.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { tc.tamper(t, tx, []byte(cp10)); return nil })
			db.Close()
			if err != nil {
				t.Fatal(err)
			}

			out, errOut, code := testenv.RunCmd(t, vserv, "verify", "-q", "-r", e.Srv.DataRoot)
			if code != 1 {
				t.Fatalf("vserv verify: exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, f := range tc.faults {
				if !slices.Contains(lines, f.String()) {
					t.Errorf("vserv verify does not report %q; it printed:\n%s", f, out)
				}
			}

			srv := testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
			admin := srv.Login(testenv.AdminName, testenv.AdminPass)
			res, err := admin.CheckChain(e.Ctx, "t", "all")
			if err != nil {
				t.Fatalf("rcheck after restart: %v", err)
			}
			for _, f := range tc.faults {
				if !slices.Contains(res.Errors, client.CheckFault{Seq: f.seq, What: f.what}) {
					t.Errorf("rcheck does not report %q; it answered %+v", f, res.Errors)
				}
			}

			if err := stillProven(srv.Dial(), e, before); err == nil {
				t.Error("the receipt from before still verifies against the tampered chain")
			} else {
				t.Logf("receipt from before: %v", err)
			}
		})
	}
}

// stillProven is what a client that kept a receipt checks against a server's
// current state: the same entry is proven under the current checkpoint, and
// that checkpoint is consistent with the receipt's.
func stillProven(c *client.Client, e *testenv.LedgerEnv, before *verify.VerifiedReceipt) error {
	r, err := c.Proof(e.Ctx, "t", client.BySeq(before.Entry.Seq), 0)
	if err != nil {
		return fmt.Errorf("rproof: %w", err)
	}
	after, err := verify.VerifyReceipt([]byte(r), e.ReceiptOptions())
	if err != nil {
		return fmt.Errorf("receipt now: %w", err)
	}
	if !bytes.Equal(after.EntryBytes, before.EntryBytes) {
		return errors.New("the entry changed")
	}
	hashes, _, err := c.Consistency(e.Ctx, "t", before.Checkpoint.Size, after.Checkpoint.Size)
	if err != nil {
		return fmt.Errorf("rcons: %w", err)
	}
	return verify.VerifyConsistency(before.Checkpoint, after.Checkpoint, hashes)
}
