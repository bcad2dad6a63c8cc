package main

import "testing"

func TestFormatTallyShowsCountsSharesAndBarsMostVotesFirst(t *testing.T) {
	v := map[string]any{"ballot": "b1", "question": "Colour?", "open": true, "registered": uint64(3), "active": uint64(3),
		"choices": map[string]any{"red": uint64(2), "green": uint64(0), "blue": uint64(1)}}
	want := `ballot b1: Colour?
open, 3 registered, 3 active, 3 votes cast
choice    votes   share
red           2   66.7%  █████████████
blue          1   33.3%  ███████
green         0    0.0%
`
	if got := formatTally(v, nil); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	recounted := map[string]any{"choices": map[string]any{"red": uint64(1), "green": uint64(0), "blue": uint64(1)}}
	want = `ballot b1: Colour?
open, 3 registered, 3 active, 3 votes cast
choice  recount   server   share
red           1        2   66.7%  █████████████  <- differs
blue          1        1   33.3%  ███████
green         0        0    0.0%
`
	if got := formatTally(v, recounted); got != want {
		t.Fatalf("side by side: got\n%s\nwant\n%s", got, want)
	}
}

func TestFormatFundAndAccounts(t *testing.T) {
	f := map[string]any{"fund": "relief", "name": "Flood relief", "unit": "EUR-cent", "open": true, "publisher": nil,
		"in": uint64(5000), "out": uint64(1200), "balance": uint64(3800), "donations": uint64(1), "disbursements": uint64(1)}
	want := `fund relief: Flood relief (EUR-cent), open
in               5000 EUR-cent  (1 donations)
out              1200 EUR-cent  (1 disbursements)
balance          3800 EUR-cent
publisher none
`
	if got := formatFund(f); got != want {
		t.Fatalf("fund: got\n%s\nwant\n%s", got, want)
	}
	rows := []map[string]any{
		{"account": "lab", "unit": "cpu-hour", "open": true, "owner": "Lab", "balance": uint64(70), "allocated": uint64(100), "consumed": uint64(0)},
		{"account": "student", "unit": "cpu-hour", "open": false, "owner": nil, "balance": uint64(0), "allocated": uint64(0), "consumed": uint64(30)},
	}
	want = `account  unit             balance     allocated      consumed  state   owner
lab      cpu-hour              70           100             0  open    Lab
student  cpu-hour               0             0            30  closed  -
`
	if got := formatAccounts(rows); got != want {
		t.Fatalf("accounts: got\n%s\nwant\n%s", got, want)
	}
}
