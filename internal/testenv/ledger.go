package testenv

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// Helpers of the ledger tests, in internal/server and internal/e2e: a
// server with an admin session and a public chain without proof of work,
// and records built the way clients build them.

// LedgerEnv is a running server with its first admin logged in.
type LedgerEnv struct {
	Srv   *Server
	Admin *client.Client
	Key   ed25519.PublicKey // the server's identity key
	Ctx   context.Context
}

// NewLedgerEnv starts a server, logs the first admin in, lifts per-IP
// throttling (tests open many connections from one address) and creates the
// public chains named, with pow_bits 0.
func NewLedgerEnv(t testing.TB, chains []string, opts ...Option) *LedgerEnv {
	t.Helper()
	// The servers these tests start and stop (and restart) inherit it.
	t.Setenv("GORACE", NoRaceExitSleep[len("GORACE="):])
	e := &LedgerEnv{Srv: Start(t, opts...), Ctx: context.Background()}
	e.Admin = e.Srv.AdminClient()
	if _, err := e.Admin.Throttle(e.Ctx, "off"); err != nil {
		t.Fatalf("throt off: %v", err)
	}
	for _, ch := range chains {
		if err := e.Admin.MakeChain(e.Ctx, ch, client.ChainOptions{Public: true}); err != nil {
			t.Fatalf("mkchain %s: %v", ch, err)
		}
	}
	e.Key = e.Admin.Identity()
	return e
}

// KeyText is the server's public key as `vcli id` prints it.
func (e *LedgerEnv) KeyText() string { return secure.PublicKeyText(e.Key) }

// ReceiptOptions trusts the server's key.
func (e *LedgerEnv) ReceiptOptions() verify.ReceiptOptions {
	return verify.ReceiptOptions{ServerKey: e.Key}
}

// Vcli runs vcli against the env's server and checks the exit status.
func (e *LedgerEnv) Vcli(t *testing.T, wantCode int, env []string, args ...string) (string, string) {
	t.Helper()
	out, errOut, code := e.Srv.Vcli("", append(env, NoRaceExitSleep), args...)
	if code != wantCode {
		t.Fatalf("vcli %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
	}
	return out, errOut
}

// NewRecord builds a record with pow 0 and a new UUIDv7.
func NewRecord(t testing.TB, payload any) []byte {
	t.Helper()
	rec, err := client.NewRecord(payload, "", 0, client.RecordOptions{})
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	return rec
}

// RecordWithID builds a record with a chosen id.
func RecordWithID(t testing.TB, id string, payload any) []byte {
	t.Helper()
	rec, err := client.NewRecord(payload, "", 0, client.RecordOptions{ID: id})
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	return rec
}

// RecordID returns a record's id.
func RecordID(t testing.TB, rec []byte) string {
	t.Helper()
	r, err := verify.CheckRecord(rec)
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	return r.ID
}

// Numbered builds n records with payloads {"n": "<prefix>-<i>"}.
func Numbered(t testing.TB, prefix string, from, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		out[i] = NewRecord(t, map[string]any{"n": fmt.Sprintf("%s-%d", prefix, from+i)})
	}
	return out
}

// Put appends records and fails the test on any error.
func Put(t testing.TB, c *client.Client, chain string, receipt bool, recs ...[]byte) []client.PutResult {
	t.Helper()
	res, err := c.PutRecords(context.Background(), chain, recs, receipt)
	if err != nil {
		t.Fatalf("rput %d records to %s: %v", len(recs), chain, err)
	}
	return res
}

// NewID is a fresh canonical UUIDv7.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ChainSize reads a chain's size.
func ChainSize(t testing.TB, c *client.Client, chain string) uint64 {
	t.Helper()
	n, err := c.ChainSize(context.Background(), chain)
	if err != nil {
		t.Fatalf("rsize %s: %v", chain, err)
	}
	return n
}
