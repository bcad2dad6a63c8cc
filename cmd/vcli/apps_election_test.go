package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestVcliElectionEndToEnd runs an election through the vcli binary against
// a real server: open a ballot, register three voters (one with a key),
// cast, uncast, recast, then the server's tally, a recount and `vcli tally`.
func TestVcliElectionEndToEnd(t *testing.T) {
	e := newAppsEnv(t)
	e.vcli(0, "chain", "create", "election", "--public", "--pow-bits", "16", "--schema", "vote")
	carolKey := e.path("carol.key")
	carolPub, _ := e.vcli(0, "key", "new", "-o", carolKey)
	carolPub = strings.TrimSpace(carolPub)

	out, _ := e.vcli(0, "vote", "open", "b1", "--chain", "election", "--question", "Colour?", "red", "green", "blue")
	if !strings.HasPrefix(out, "ok: ballot.open recorded in election as seq 0 (id ") {
		t.Fatalf("vote open:\n%s", out)
	}
	out, _ = e.vcli(0, "vote", "register", "alice", "--chain", "election")
	alice := eidOf(t, out)
	out, _ = e.vcli(0, "vote", "register", "bob", "--chain", "election")
	bob := eidOf(t, out)
	out, _ = e.vcli(0, "vote", "register", "carol", "--chain", "election", "--voter-key", carolPub)
	carol := eidOf(t, out)

	e.vcli(0, "vote", "cast", alice, "b1", "red", "--chain", "election")
	e.vcli(0, "vote", "cast", bob, "b1", "green", "--chain", "election")
	receipt := e.path("carol.receipt")
	out, _ = e.vcli(0, "vote", "cast", carol, "b1", "blue", "--chain", "election", "--key", carolKey, "--receipt-out", receipt)
	if !strings.Contains(out, "receipt saved in "+receipt) {
		t.Fatalf("cast with --receipt-out:\n%s", out)
	}
	e.vcli(0, "verify", "receipt", receipt, "--server-key", e.serverKey())
	e.vcli(0, "vote", "uncast", bob, "b1", "--chain", "election")
	e.vcli(0, "vote", "cast", bob, "b1", "red", "--chain", "election")

	// Usage errors: exit 2 before anything is sent.
	e.vcli(2, "vote", "cast", alice, "b1", "--chain", "election")
	e.vcli(2, "vote", "open", "b2", "--chain", "election", "red", "blue") // no --question
	e.vcli(2, "vote", "register", "dave", "--voter-key", "not-a-key", "--chain", "election")
	e.vcli(2, "vote", "cast", alice, "b1", "red", "--key", e.path("missing.key"), "--chain", "election")

	// The rules (the server's committer): exit 1 with the rule's text.
	_, errOut := e.vcli(1, "vote", "cast", carol, "b1", "red", "--chain", "election")
	if !strings.Contains(errOut, "ERR invalid") || !strings.Contains(errOut, "signed by its key") {
		t.Fatalf("carol's cast without her key: %s", errOut)
	}
	_, errOut = e.vcli(1, "vote", "cast", alice, "b1", "green", "--chain", "election")
	if !strings.Contains(errOut, "already has an active cast") {
		t.Fatalf("alice's second cast: %s", errOut)
	}

	wantTally := `ballot b1: Colour?
open, 3 registered, 3 active, 3 votes cast
choice    votes   share
red           2   66.7%  █████████████
blue          1   33.3%  ███████
green         0    0.0%
`
	if out, _ = e.vcli(0, "vote", "tally", "b1", "--chain", "election"); out != wantTally {
		t.Fatalf("vote tally:\n%s\nwant\n%s", out, wantTally)
	}
	out, _ = e.vcli(0, "vote", "voter", bob, "--chain", "election")
	for _, want := range []string{"voter bob\n", "eid       " + bob + "\n", "vote.cast b1 green\n", "vote.uncast b1\n", "vote.cast b1 red\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("vote voter: no %q in\n%s", want, out)
		}
	}
	if out, _ = e.vcli(0, "vote", "list", "--chain", "election"); out != "b1\n1 ballots\n" {
		t.Fatalf("vote list: %q", out)
	}

	out, _ = e.vcli(0, "recount", "election")
	if !strings.Contains(out, "chain election (schema vote): 9 entries verified against the signed checkpoint") ||
		!strings.Contains(out, "red           2        2   66.7%  █████████████\n") ||
		!strings.Contains(out, "views agree with the server at size 9\n") {
		t.Fatalf("recount:\n%s", out)
	}
	out, _ = e.vcli(0, "tally", "election", "b1")
	if !strings.Contains(out, "choice  recount   server   share\nred           2        2   66.7%  █████████████\nblue          1        1   33.3%  ███████\ngreen         0        0    0.0%\n") ||
		!strings.HasSuffix(out, "ok: the recount agrees with the server at size 9\n") {
		t.Fatalf("tally:\n%s", out)
	}
	out, _ = e.vcli(0, "--json", "tally", "election", "b1")
	if !strings.Contains(out, `"red": 2`) || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("tally --json:\n%s", out)
	}
	// Withdraw ends Alice's cast on the open ballot; after close nobody casts.
	out, _ = e.vcli(0, "vote", "voter", "--voter-id", "carol", "--chain", "election")
	if !strings.Contains(out, "eid       "+carol+"\nkey       "+carolPub+"\nwithdrawn false\n") {
		t.Fatalf("vote voter --voter-id carol:\n%s", out)
	}
	e.vcli(0, "vote", "withdraw", alice, "--chain", "election")
	e.vcli(0, "vote", "close", "b1", "--chain", "election")
	if _, errOut = e.vcli(1, "vote", "cast", bob, "b1", "green", "--chain", "election"); !strings.Contains(errOut, "ERR invalid: vote.") {
		t.Fatalf("cast on a closed ballot: %s", errOut)
	}
	if _, errOut = e.vcli(1, "vote", "close", "b1", "--chain", "election"); !strings.Contains(errOut, "ERR invalid: ballot.close:") {
		t.Fatalf("closing a closed ballot: %s", errOut)
	}
	out, _ = e.vcli(0, "vote", "tally", "b1", "--chain", "election")
	if !strings.HasPrefix(out, "ballot b1: Colour?\nclosed, 3 registered, 2 active, 2 votes cast\nchoice    votes   share\nblue          1   50.0%  ██████████\nred           1   50.0%  ██████████\n") {
		t.Fatalf("tally after withdraw and close:\n%s", out)
	}
	if out, _ = e.vcli(0, "recount", "election"); !strings.Contains(out, "views agree with the server at size 11\n") {
		t.Fatalf("recount after close:\n%s", out)
	}
	// --json carries the eid; a ballot whose window has passed takes no cast.
	out, _ = e.vcli(0, "--json", "vote", "register", "dave", "--chain", "election")
	if !regexp.MustCompile(`"eid": "[a-z2-7]{16}"`).MatchString(out) || !strings.Contains(out, `"type": "vote.register"`) {
		t.Fatalf("vote register --json:\n%s", out)
	}
	e.vcli(0, "vote", "open", "old", "--chain", "election", "--question", "Past?", "yes", "no", "--closes", "2000-01-01T00:00:00Z")
	if _, errOut = e.vcli(1, "vote", "cast", carol, "old", "yes", "--chain", "election", "--key", carolKey); !strings.Contains(errOut, "ERR invalid: vote.cast:") {
		t.Fatalf("cast after closes: %s", errOut)
	}
	e.vcli(2, "vote", "open", "b3", "--chain", "election", "--question", "Q", "a", "b", "--closes", "tomorrow")
	e.vcli(1, "tally", "election", "nosuch")
	e.vcli(2, "tally", "election")
	e.vcli(2, "tally", "election", "Bad Name")
}
