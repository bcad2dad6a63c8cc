package testenv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/compact"

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/verify"
)

// Tests that tamper with ledger.db do it the way an operator with bbolt
// could, the server stopped, on the file's layout 2 (docs/formats.md).

// ChainBucket is the bbolt bucket of a chain homed at serverID ("": the
// file's own server-id), nil when there is none. Its sub-buckets are
// "entries", "ids", "times", "nodes" (keys: bolt.NodeKey), "checkpoints" and
// "state".
func ChainBucket(tx *bbolt.Tx, serverID, chain string) *bbolt.Bucket {
	if serverID == "" {
		serverID = bolt.ServerID(tx)
	}
	return bolt.ChainBucket(tx, store.ChainKey{Origin: serverID, Name: chain})
}

// DeleteChain removes a chain homed at serverID ("": the file's own
// server-id) from ledger.db: its bucket and its metadata.
func DeleteChain(tx *bbolt.Tx, serverID, chain string) error {
	if serverID == "" {
		serverID = bolt.ServerID(tx)
	}
	o := tx.Bucket(bolt.OriginBucketName(serverID))
	if o == nil {
		return fmt.Errorf("no chains of origin %s", serverID)
	}
	if err := o.DeleteBucket(bolt.ChainBucketName(chain)); err != nil {
		return fmt.Errorf("delete chain %s: %w", chain, err)
	}
	return bolt.ChainsBucket(tx).Delete(bolt.ChainsKey(store.ChainKey{Origin: serverID, Name: chain}))
}

// LedgerBucket is the sub-bucket sub ("entries", "nodes", "ids",
// "checkpoints", ...) of a chain homed at the file's own server-id.
func LedgerBucket(tx *bbolt.Tx, chain, sub string) *bbolt.Bucket {
	return ChainBucket(tx, "", chain).Bucket([]byte(sub))
}

// BE64 is v in big-endian, the form of ledger.db's sequence keys.
func BE64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// RehashAll redoes, on chain's buckets, everything an attacker can redo
// without the signing key: every prev link, every leaf and Merkle node, and
// the id index.
func RehashAll(t testing.TB, tx *bbolt.Tx, chain string) {
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
			if err := nodes.Put(bolt.NodeKey(id), bytes.Clone(h)); err != nil {
				t.Fatal(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
