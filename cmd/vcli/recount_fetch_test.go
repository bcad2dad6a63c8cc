package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
)

// TestVcliRecountOfManyVotersComparesEveryView holds enough voters that
// the recount fetches the server's views ahead over several connections:
// every answer must still be compared with its own query (a mix-up would
// show as differences and exit 1).
func TestVcliRecountOfManyVotersComparesEveryView(t *testing.T) {
	e := newAppsEnv(t)
	ctx := context.Background()
	e.vcli(0, "chain", "create", "big", "--public", "--pow-bits", "0", "--schema", "vote")
	admin := e.srv.AdminClient()
	defer admin.Close()
	if _, err := admin.PutEvents(ctx, "big", nil, false, client.BallotOpen("b1", "Which?", []string{"yes", "no"}, 0)); err != nil {
		t.Fatalf("ballot.open: %v", err)
	}
	const voters = 600
	var eids []string
	for from := 0; from < voters; from += 100 {
		evs := make([]client.Event, 100)
		for i := range evs {
			evs[i] = client.VoteRegister(fmt.Sprintf("voter-%04d", from+i), nil)
		}
		res, err := admin.PutEvents(ctx, "big", nil, false, evs...)
		if err != nil {
			t.Fatalf("vote.register batch at %d: %v", from, err)
		}
		for _, r := range res {
			eids = append(eids, r.EID)
		}
	}
	casts := make([]client.Event, 0, voters/2)
	for i, eid := range eids[:voters/2] {
		casts = append(casts, client.VoteCast(eid, "b1", []string{"yes", "no"}[i%3%2]))
	}
	if _, err := admin.PutEvents(ctx, "big", nil, false, casts...); err != nil {
		t.Fatalf("vote.cast batch: %v", err)
	}
	size := 1 + voters + voters/2
	out, _ := e.vcli(0, "recount", "big")
	if !strings.Contains(out, fmt.Sprintf("ok: replayed %d entries with the vote rules; all ", size)) ||
		!strings.Contains(out, fmt.Sprintf(" views agree with the server at size %d\n", size)) {
		t.Fatalf("recount of %d voters:\n%s", voters, out)
	}
	var views int
	if _, err := fmt.Sscanf(out[strings.Index(out, "; all ")+len("; all "):], "%d", &views); err != nil || views < voters {
		t.Fatalf("recount compared %d views (%v), want at least one per voter (%d)", views, err, voters)
	}
}
