package ledger

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestBatchedReadsReserveTheirSizeBeforeCopying(t *testing.T) {
	e := newEnv(t)
	e.appendN("t", 0, 3)
	var want [][]byte

	for s := range int64(3) {
		b, _, err := e.l.Abs(ctx, "t", s)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b)

	}
	refuse := errors.New("over budget")
	for _, tc := range []struct {
		name    string
		read    func(reserve func(int) error) ([][]byte, error)
		want    [][]byte
		reserve int // the total reserve must be told
	}{
		{"rabs with repeats, misses and negative seqs", func(r func(int) error) ([][]byte, error) {
			return e.l.AbsMany(ctx, "t", []int64{0, -1, 3, -4, 0}, r)
		}, [][]byte{want[0], want[2], nil, nil, want[0]}, 2*len(want[0]) + len(want[2])},
		{"rget with a missing id", func(r func(int) error) ([][]byte, error) {
			return e.l.GetMany(ctx, "t", []string{recID(1), recID(42), recID(1)}, r)
		}, [][]byte{want[1], nil, want[1]}, 2 * len(want[1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			told := -1
			got, err := tc.read(func(n int) error { told = n; return nil })
			if err != nil || told != tc.reserve || len(got) != len(tc.want) {
				t.Fatalf("%d entries, reserve told %d, err %v; want %d entries and %d", len(got), told, err, len(tc.want), tc.reserve)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) || (got[i] == nil) != (tc.want[i] == nil) {
					t.Fatalf("entry %d: %d bytes, want %d", i, len(got[i]), len(tc.want[i]))
				}
			}
			got, err = tc.read(func(int) error { return refuse })
			if !errors.Is(err, refuse) || got != nil {
				t.Fatalf("refused reserve: %d entries, err %v; want none and its error", len(got), err)
			}
		})
	}
	_, err := e.l.AbsMany(ctx, "nochain", []int64{0}, nil)
	testenv.WantCode(t, err, wire.CodeNotFound, "")
}
