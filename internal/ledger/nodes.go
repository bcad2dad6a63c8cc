package ledger

import (
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/vserv/vserv/verify"
)

// postorder numbers the perfect nodes of the tree in the order an append-only
// log creates them (leaf 0, leaf 1, their parent, leaf 2, ...). Storing nodes
// under this number makes every write an append at the end of the key space,
// which keeps bbolt pages full (FillPercent 1.0) instead of splitting them.
//
// The nodes before (level, index) are those of the complete subtrees left of
// its first leaf s = index<<level (2s - popcount(s) of them) and those below
// it (2^(level+1) - 2).
func postorder(id compact.NodeID) uint64 {
	s := id.Index << id.Level
	return 2*s - uint64(bits.OnesCount64(s)) + (1 << (id.Level + 1)) - 2
}

var rangeFactory = &compact.RangeFactory{Hash: verify.NodeHash}

// loadRange rebuilds the compact range [0, size) from the stored roots of its
// perfect subtrees: O(log size) reads.
func loadRange(tx ReadTx, chain string, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := tx.Node(chain, id)
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, fmt.Errorf("merkle node %d/%d of chain %q is missing", id.Level, id.Index, chain)
		}
		hashes[i] = append([]byte(nil), h...)
	}
	return rangeFactory.NewRange(0, size, hashes)
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

// fetchProof reads the stored nodes a proof needs and rehashes the ephemeral
// one: O(log n) reads.
func fetchProof(tx ReadTx, chain string, nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := tx.Node(chain, id)
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, fmt.Errorf("merkle node %d/%d of chain %q is missing", id.Level, id.Index, chain)
		}
		hashes[i] = append([]byte(nil), h...)
	}
	return nodes.Rehash(hashes, verify.NodeHash)
}

func inclusionProof(tx ReadTx, chain string, seq, size uint64) ([][]byte, error) {
	n, err := proof.Inclusion(seq, size)
	if err != nil {
		return nil, err
	}
	return fetchProof(tx, chain, n)
}

func consistencyProof(tx ReadTx, chain string, size1, size2 uint64) ([][]byte, error) {
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return fetchProof(tx, chain, n)
}
