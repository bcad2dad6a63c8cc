package ledger

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

var rangeFactory = &compact.RangeFactory{Hash: verify.NodeHash}

// loadRange rebuilds the compact range [0, size) from the stored roots of its
// perfect subtrees: O(log size) nodes, read in one call.
func loadRange(tx store.ReadTx, c store.ChainKey, size uint64) (*compact.Range, error) {
	hashes, err := nodes(tx, c, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	return rangeFactory.NewRange(0, size, hashes)
}

// nodes reads the given Merkle nodes in one call and copies them out of the
// transaction; a missing one is an error.
func nodes(tx store.ReadTx, c store.ChainKey, ids []compact.NodeID) ([][]byte, error) {
	hashes, err := tx.Nodes(c, ids)
	if err != nil {
		return nil, err
	}
	if len(hashes) != len(ids) {
		return nil, fmt.Errorf("chain %s: asked for %d merkle nodes, got %d", c, len(ids), len(hashes))
	}
	for i, h := range hashes {
		if h == nil {
			return nil, fmt.Errorf("merkle node %d/%d of chain %q is missing", ids[i].Level, ids[i].Index, c.Name)
		}
		hashes[i] = append([]byte(nil), h...)
	}
	return hashes, nil
}

// node reads one Merkle node, nil when it is not stored. The slice is the
// store's: valid until the transaction ends.
func node(tx store.ReadTx, c store.ChainKey, id compact.NodeID) ([]byte, error) {
	h, err := tx.Nodes(c, []compact.NodeID{id})
	if err != nil || len(h) != 1 {
		return nil, err
	}
	return h[0], nil
}

// rootOf is the Merkle root of a compact range starting at 0.
func rootOf(r *compact.Range) ([32]byte, error) {
	if r.End() == 0 {
		return verify.EmptyRoot, nil
	}
	h, err := r.GetRootHash(nil)
	if err != nil {
		return [32]byte{}, err
	}
	var root [32]byte
	copy(root[:], h)
	return root, nil
}

// fetchProof reads the stored nodes a proof needs, in one call, and
// rehashes the ephemeral one.
func fetchProof(tx store.ReadTx, c store.ChainKey, n proof.Nodes) ([][]byte, error) {
	hashes, err := nodes(tx, c, n.IDs)
	if err != nil {
		return nil, err
	}
	return n.Rehash(hashes, verify.NodeHash)
}

func inclusionProof(tx store.ReadTx, c store.ChainKey, seq, size uint64) ([][]byte, error) {
	n, err := proof.Inclusion(seq, size)
	if err != nil {
		return nil, err
	}
	return fetchProof(tx, c, n)
}

func consistencyProof(tx store.ReadTx, c store.ChainKey, size1, size2 uint64) ([][]byte, error) {
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return fetchProof(tx, c, n)
}
