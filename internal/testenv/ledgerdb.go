package testenv

import (
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
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
