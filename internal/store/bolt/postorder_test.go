package bolt

import (
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vserv/vserv/verify"
)

// Nodes are created by an append-only log in postorder: numbering them so
// makes every PutNodes an append at the end of the nodes bucket.
func TestPostorderIsSequential(t *testing.T) {
	r := (&compact.RangeFactory{Hash: verify.NodeHash}).NewEmptyRange(0)
	var next uint64
	for i := range 300 {
		var bad string
		err := r.Append(make([]byte, 32), func(id compact.NodeID, _ []byte) {
			if p := postorder(id); p != next && bad == "" {
				bad = fmt.Sprintf("node %d/%d: postorder %d, want %d", id.Level, id.Index, p, next)
			}
			next++
		})
		if err != nil {
			t.Fatal(err)
		}
		if bad != "" {
			t.Fatalf("leaf %d: %s", i, bad)
		}
	}
}
