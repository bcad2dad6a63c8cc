package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/client"
	storebolt "github.com/vserv/vserv/internal/store/bolt"
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

// tamperChain is a sub-bucket of the home's chain t.
func tamperChain(tx *bolt.Tx, sub string) *bolt.Bucket {
	return testenv.ChainBucket(tx, "", "t").Bucket([]byte(sub))
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func editEntry(t *testing.T, tx *bolt.Tx, seq uint64, old, new string) {
	b := tamperChain(tx, "entries")
	e := bytes.Clone(b.Get(be64(seq)))
	changed := bytes.Replace(e, []byte(old), []byte(new), 1)
	if bytes.Equal(e, changed) {
		t.Fatalf("entry %d has no %q", seq, old)
	}
	if err := b.Put(be64(seq), changed); err != nil {
		t.Fatal(err)
	}
}

// rehashAll redoes everything an attacker can redo without the signing key:
// every prev link, every leaf and Merkle node, and the id index.
func rehashAll(t *testing.T, tx *bolt.Tx) {
	entries, nodes, ids := tamperChain(tx, "entries"), tamperChain(tx, "nodes"), tamperChain(tx, "ids")
	rng := (&compact.RangeFactory{Hash: verify.NodeHash}).NewEmptyRange(0)
	var prev [32]byte
	c := entries.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, rec, err := verify.ParseEntry(v)
		if err != nil {
			t.Fatal(err)
		}
		e.Prev = prev
		b, err := verify.EncodeEntry(*e)
		if err != nil {
			t.Fatal(err)
		}
		if err := entries.Put(bytes.Clone(k), b); err != nil {
			t.Fatal(err)
		}
		id := uuid.MustParse(rec.ID)
		if err := ids.Put(id[:], append(be64(e.Seq), rec.Hash[:]...)); err != nil {
			t.Fatal(err)
		}
		prev = verify.LeafHash(b)
		leaf := prev
		err = rng.Append(leaf[:], func(id compact.NodeID, h []byte) {
			if err := nodes.Put(storebolt.NodeKey(id), bytes.Clone(h)); err != nil {
				t.Fatal(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
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
				rehashAll(t, tx)
			},
			seq:    12,
			faults: []tamperFault{{30, "tree: root at size 30 differs from the signed checkpoint"}},
		},
		{
			name: "delete an entry",
			tamper: func(t *testing.T, tx *bolt.Tx, _ []byte) {
				if err := tamperChain(tx, "entries").Delete(be64(12)); err != nil {
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
				b := tamperChain(tx, "entries")
				x, y := bytes.Clone(b.Get(be64(12))), bytes.Clone(b.Get(be64(13)))
				b.Put(be64(12), y)
				b.Put(be64(13), x)
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
					if err := tamperChain(tx, "entries").Delete(be64(s)); err != nil {
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
				if err := tamperChain(tx, "checkpoints").Put(be64(30), append([]byte{0}, cp10...)); err != nil {
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
			e := newLedgerEnv(t, []string{"t"})
			put(t, e.admin, "t", false, numbered(t, "n", 0, 10)...)
			cp10, err := e.admin.Head(e.ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			put(t, e.admin, "t", false, numbered(t, "n", 10, 10)...)
			put(t, e.admin, "t", false, numbered(t, "n", 20, 10)...)
			r, err := e.admin.Proof(e.ctx, "t", client.BySeq(tc.seq), 0)
			if err != nil {
				t.Fatal(err)
			}
			before, err := verify.VerifyReceipt([]byte(r), e.receiptOptions())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.srv.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}

			db, err := bolt.Open(filepath.Join(e.srv.DataRoot, "ledger.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { tc.tamper(t, tx, []byte(cp10)); return nil })
			db.Close()
			if err != nil {
				t.Fatal(err)
			}

			out, errOut, code := runCmd(t, vserv, "verify", "-q", "-r", e.srv.DataRoot)
			if code != 1 {
				t.Fatalf("vserv verify: exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, f := range tc.faults {
				if !slices.Contains(lines, f.String()) {
					t.Errorf("vserv verify does not report %q; it printed:\n%s", f, out)
				}
			}

			srv := testenv.Start(t, testenv.WithDataRoot(e.srv.DataRoot))
			admin := srv.Login(testenv.AdminName, testenv.AdminPass)
			res, err := admin.CheckChain(e.ctx, "t", "all")
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
func stillProven(c *client.Client, e *ledgerEnv, before *verify.VerifiedReceipt) error {
	r, err := c.Proof(e.ctx, "t", client.BySeq(before.Entry.Seq), 0)
	if err != nil {
		return fmt.Errorf("rproof: %w", err)
	}
	after, err := verify.VerifyReceipt([]byte(r), e.receiptOptions())
	if err != nil {
		return fmt.Errorf("receipt now: %w", err)
	}
	if !bytes.Equal(after.EntryBytes, before.EntryBytes) {
		return errors.New("the entry changed")
	}
	hashes, _, err := c.Consistency(e.ctx, "t", before.Checkpoint.Size, after.Checkpoint.Size)
	if err != nil {
		return fmt.Errorf("rcons: %w", err)
	}
	return verify.VerifyConsistency(before.Checkpoint, after.Checkpoint, hashes)
}
