package ledgercmd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/wire"
)

// TestRputReplyMatchesMarshal holds rput's hand-encoded answer to what
// wire.Marshal makes of the same maps.
func TestRputReplyMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 23, 24, 100, 255, 256, 1000} {
		for _, receipt := range []bool{false, true} {
			results := make([]ledger.Result, n)
			want := make([]map[string]any, n)
			for i := range results {
				res := ledger.Result{
					ID:  fmt.Sprintf("0190a5c4-7d2e-7b3a-9f1e-%012x", r.Uint64()>>16),
					Seq: r.Uint64() >> r.IntN(64),
				}
				for k := range res.Leaf {
					res.Leaf[k] = byte(r.Uint32())
				}
				if receipt {
					res.Receipt = []byte(strings.Repeat("receipt line\n", r.IntN(40)))
				}
				if r.IntN(2) == 0 {
					res.EID = fmt.Sprintf("%016x", r.Uint64())[:16]
				}
				results[i] = res
				m := map[string]any{"id": res.ID, "seq": res.Seq, "leaf": res.Leaf[:]}
				if receipt {
					m["receipt"] = string(res.Receipt)
				}
				if res.EID != "" {
					m["eid"] = res.EID
				}
				want[i] = m
			}
			wantMsg, err := wire.EncodeOK(want)
			if err != nil {
				t.Fatal(err)
			}
			gotMsg, err := wire.EncodeOK(rputReply(results, receipt))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotMsg, wantMsg) {
				t.Fatalf("%d results, receipt %v:\n got %x\nwant %x", n, receipt, gotMsg, wantMsg)
			}
		}
	}
}
