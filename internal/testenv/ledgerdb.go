package testenv

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/verify"
)

// Tests that edit ledger.db behind a stopped server's back, as an attacker
// with the file would, reach into internal/ledger's bucket layout
// (store_bolt.go and nodes.go) on purpose, through these helpers only.

// LedgerBucket is the sub-bucket sub ("entries", "nodes", "ids",
// "checkpoints", ...) of a chain in ledger.db.
func LedgerBucket(tx *bolt.Tx, chain, sub string) *bolt.Bucket {
	return tx.Bucket([]byte("ledger.chain." + chain)).Bucket([]byte(sub))
}

// BE64 is v in big-endian, the form of ledger.db's sequence and node keys.
func BE64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// postorder is internal/ledger's key for a Merkle node (nodes.go).
func postorder(id compact.NodeID) uint64 {
	s := id.Index << id.Level
	return 2*s - uint64(bits.OnesCount64(s)) + (1 << (id.Level + 1)) - 2
}

// RehashAll redoes, on chain's buckets, everything an attacker can redo
// without the signing key: every prev link, every leaf and Merkle node, and
// the id index.
func RehashAll(t testing.TB, tx *bolt.Tx, chain string) {
	t.Helper()
	entries, nodes, ids := LedgerBucket(tx, chain, "entries"), LedgerBucket(tx, chain, "nodes"), LedgerBucket(tx, chain, "ids")
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
		if err := ids.Put(id[:], append(BE64(e.Seq), rec.Hash[:]...)); err != nil {
			t.Fatal(err)
		}
		prev = verify.LeafHash(b)
		leaf := prev
		err = rng.Append(leaf[:], func(id compact.NodeID, h []byte) {
			if err := nodes.Put(BE64(postorder(id)), bytes.Clone(h)); err != nil {
				t.Fatal(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
