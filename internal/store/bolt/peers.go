package bolt

import bbolt "go.etcd.io/bbolt"

// The peer table (replic.peers) may be missing from a file of layout 2
// written before peers existed and opened ReadOnly (Open creates it
// otherwise): a read then finds no peer.

func (t *boltTx) Peer(key string) ([]byte, error) {
	b := t.tx.Bucket(bucketPeers)
	if b == nil {
		return nil, nil
	}
	return b.Get([]byte(key)), nil
}

func (t *boltTx) Peers(fn func(key string, v []byte) error) error {
	b := t.tx.Bucket(bucketPeers)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

func (t *boltTx) PutPeer(key string, v []byte) error { return t.put(bucketPeers, []byte(key), v) }

func (t *boltTx) DeletePeer(key string) error { return t.del(bucketPeers, []byte(key)) }

// PeersBucket is the replic.peers bucket, nil when the file has none: for
// tests that read the file below the Store.
func PeersBucket(tx *bbolt.Tx) *bbolt.Bucket { return tx.Bucket(bucketPeers) }
