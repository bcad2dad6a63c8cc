package ledger

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

// A held chain refuses appends (ERR conflict with the reason) and signs
// nothing, serves reads, and takes appends again once released; other
// chains are not affected, and Hold, Release and Holds are safe side by
// side with appends.
func TestHeldChainRefusesAppendsUntilReleased(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.l.CreateChain(ctx, "u", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	e.appendN("t", 0, 3)
	before, err := e.l.Head(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	e.l.Hold("t", "checking with peers")
	if got := e.l.Holds(); len(got) != 1 || got["t"] != "checking with peers" {
		t.Fatalf("Holds() = %v", got)
	}
	_, err = e.l.Append(ctx, "t", [][]byte{rec(t, 3, "x")}, AppendOptions{})
	if we := testenv.WantCode(t, err, "conflict", "append to a held chain"); !strings.Contains(we.Text, "checking with peers") {
		t.Errorf("refusal %q does not carry the reason", we.Text)
	}
	if after, err := e.l.Head(ctx, "t"); err != nil || string(after) != string(before) {
		t.Fatalf("a held chain signed a new checkpoint or stopped serving rhead: %v\n%s", err, after)
	}
	if n, err := e.l.Size(ctx, "t"); err != nil || n != 3 {
		t.Fatalf("size of the held chain: %d, %v", n, err)
	}
	e.appendN("u", 0, 1) // another chain is not held

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			e.l.Hold("u", "x")
			e.l.Holds()
			e.l.Release("u")
			e.l.Append(ctx, "t", [][]byte{rec(t, 100+i, "y")}, AppendOptions{})
		})
	}
	wg.Wait()
	e.l.Release("t")
	e.l.Release("t") // releasing a free chain is nothing
	if got := e.l.Holds(); len(got) != 0 {
		t.Fatalf("Holds() after Release = %v", got)
	}
	e.appendN("t", 3, 1)
}
