package server_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// Helpers of the ledger tests: a server with an admin session and a public
// chain without proof of work, and records built the way clients build them.

type ledgerEnv struct {
	srv   *testenv.Server
	admin *client.Client
	key   ed25519.PublicKey // the server's identity key
	ctx   context.Context
}

// newLedgerEnv starts a server, logs the first admin in, lifts per-IP
// throttling (tests open many connections from one address) and creates the
// public chains named, with pow_bits 0.
func newLedgerEnv(t testing.TB, chains []string, opts ...testenv.Option) *ledgerEnv {
	t.Helper()
	// The servers these tests start and stop (and restart) inherit it.
	t.Setenv("GORACE", noRaceExitSleep[len("GORACE="):])
	e := &ledgerEnv{srv: testenv.Start(t, opts...), ctx: context.Background()}
	e.admin = e.srv.AdminClient()
	if _, err := e.admin.Throttle(e.ctx, "off"); err != nil {
		t.Fatalf("throt off: %v", err)
	}
	for _, ch := range chains {
		if err := e.admin.MakeChain(e.ctx, ch, client.ChainOptions{Public: true}); err != nil {
			t.Fatalf("mkchain %s: %v", ch, err)
		}
	}
	e.key = e.admin.Identity()
	return e
}

// keyText is the server's public key as `vcli id` prints it.
func (e *ledgerEnv) keyText() string { return secure.PublicKeyText(e.key) }

// receiptOptions trusts the server's key.
func (e *ledgerEnv) receiptOptions() verify.ReceiptOptions {
	return verify.ReceiptOptions{ServerKey: e.key}
}

// newRecord builds a record with pow 0 and a new UUIDv7.
func newRecord(t testing.TB, payload any) []byte {
	t.Helper()
	rec, err := client.NewRecord(payload, "", 0, client.RecordOptions{})
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	return rec
}

// recordWithID builds a record with a chosen id.
func recordWithID(t testing.TB, id string, payload any) []byte {
	t.Helper()
	rec, err := client.NewRecord(payload, "", 0, client.RecordOptions{ID: id})
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	return rec
}

// recordID returns a record's id.
func recordID(t testing.TB, rec []byte) string {
	t.Helper()
	r, err := verify.CheckRecord(rec)
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	return r.ID
}

// numbered builds n records with payloads {"n": "<prefix>-<i>"}.
func numbered(t testing.TB, prefix string, from, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		out[i] = newRecord(t, map[string]any{"n": fmt.Sprintf("%s-%d", prefix, from+i)})
	}
	return out
}

// put appends records and fails the test on any error.
func put(t testing.TB, c *client.Client, chain string, receipt bool, recs ...[]byte) []client.PutResult {
	t.Helper()
	res, err := c.PutRecords(context.Background(), chain, recs, receipt)
	if err != nil {
		t.Fatalf("rput %d records to %s: %v", len(recs), chain, err)
	}
	return res
}

// newID is a fresh canonical UUIDv7.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// size reads a chain's size.
func chainSize(t testing.TB, c *client.Client, chain string) uint64 {
	t.Helper()
	n, err := c.ChainSize(context.Background(), chain)
	if err != nil {
		t.Fatalf("rsize %s: %v", chain, err)
	}
	return n
}
