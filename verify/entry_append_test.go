package verify

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAppendEntryMatchesEncodeEntry holds the direct encoder to the generic
// one over entries with every head size of seq, time and the names.
func TestAppendEntryMatchesEncodeEntry(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	recs := [][]byte{
		mustMarshal(t, map[string]any{"id": testID, "payload": 1}),
		mustMarshal(t, map[string]any{"id": testID, "payload": strings.Repeat("x", 70000)}),
	}
	for i := range 2000 {
		var e Entry
		e.V = []uint64{1, 0, 23, 24, 255, 256}[r.IntN(6)]
		e.Seq = r.Uint64() >> r.IntN(64)
		e.Time = r.Uint64() >> r.IntN(64)
		for k := range e.Prev {
			e.Prev[k] = byte(r.Uint32())
		}
		e.Chain = strings.Repeat("c", 1+r.IntN(300))
		e.Origin = strings.Repeat("0", r.IntN(40))
		e.Record = recs[i%len(recs)]
		want, err := EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("prefix")
		got := AppendEntry(bytes.Clone(prefix), e)
		if !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("entry %+v:\n got %x\nwant %x", e, got[len(prefix):], want)
		}
		if EntrySize(e) != len(want) {
			t.Fatalf("EntrySize %d, encoding %d bytes", EntrySize(e), len(want))
		}
	}
}
