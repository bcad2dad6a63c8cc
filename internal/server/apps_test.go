package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// The rules of DESIGN.md §6 as the server enforces them, through real TCP
// against the real vserv binary: rights, authority keys, eid, refusals, and
// the committer's all-or-nothing batches. The full rule table is apps'.

// appsEnv is a testenv.LedgerEnv with schema chains and helpers to send events.
type appsEnv struct {
	*testenv.LedgerEnv
	t testing.TB
}

func newAppsEnv(t testing.TB) *appsEnv {
	return &appsEnv{LedgerEnv: testenv.NewLedgerEnv(t, nil), t: t}
}

// mkchain calls mkchain with raw options and returns its error.
func (e *appsEnv) mkchain(name string, opts map[string]any) error {
	_, err := e.Admin.Call(e.Ctx, "mkchain", name, opts)
	return err
}

// event builds a record of an event, signed by key when not nil.
func (e *appsEnv) event(chain, typ string, payload map[string]any, key ed25519.PrivateKey) []byte {
	e.t.Helper()
	o := client.RecordOptions{}
	if key != nil {
		o.Author, o.Origin = key, verify.OriginLine(e.Admin.ServerID(), chain)
	}
	rec, err := client.NewRecord(payload, typ, 0, o)
	if err != nil {
		e.t.Fatalf("build %s: %v", typ, err)
	}
	return rec
}

// rputResult is one element of rput's answer, eid included.
type rputResult struct {
	ID   string `cbor:"id"`
	Seq  uint64 `cbor:"seq"`
	Leaf []byte `cbor:"leaf"`
	EID  string `cbor:"eid"`
}

// rput sends records as one batch and decodes the answer.
func rput(ctx context.Context, c *client.Client, chain string, recs ...[]byte) ([]rputResult, error) {
	batch := make([]wire.RawMessage, len(recs))
	for i, r := range recs {
		batch[i] = r
	}
	vals, err := c.Call(ctx, "rput", chain, batch)
	if err != nil {
		return nil, err
	}
	var out []rputResult
	if len(vals) != 1 || wire.Unmarshal(vals[0], &out) != nil || len(out) != len(recs) {
		return nil, &wire.Error{Code: wire.CodeProto, Text: "bad rput answer"}
	}
	return out, nil
}

func (e *appsEnv) mustPut(c *client.Client, chain string, recs ...[]byte) []rputResult {
	e.t.Helper()
	res, err := rput(e.Ctx, c, chain, recs...)
	if err != nil {
		e.t.Fatalf("rput %d records to %s: %v", len(recs), chain, err)
	}
	return res
}

// view calls view and returns the view map and size.
func view(ctx context.Context, c *client.Client, chain, name string, args map[string]any) (map[string]any, uint64, error) {
	call := []any{chain, name}
	if args != nil {
		call = append(call, args)
	}
	vals, err := c.Call(ctx, "view", call...)
	if err != nil {
		return nil, 0, err
	}
	var m map[string]any
	var size uint64
	if len(vals) != 2 || canon.Unmarshal(vals[0], &m) != nil || wire.Unmarshal(vals[1], &size) != nil {
		return nil, 0, &wire.Error{Code: wire.CodeProto, Text: "bad view answer"}
	}
	return m, size, nil
}

func (e *appsEnv) mustView(chain, name string, args map[string]any) (map[string]any, uint64) {
	e.t.Helper()
	m, size, err := view(e.Ctx, e.Admin, chain, name, args)
	if err != nil {
		e.t.Fatalf("view %s %s %v: %v", chain, name, args, err)
	}
	return m, size
}

// user adds an account with the rights on chain and logs it in.
func (e *appsEnv) user(name, chain string, rights ...string) *client.Client {
	e.t.Helper()
	e.Srv.AddUser(name, name+"-password", false)
	for _, r := range rights {
		if err := e.Admin.Grant(e.Ctx, name, chain, r); err != nil {
			e.t.Fatalf("grant %s %s %s: %v", name, chain, r, err)
		}
	}
	return e.Srv.Login(name, name+"-password")
}

// batchPrefix is the "record N: " of other batch errors, which a rule's
// refusal does not carry (DESIGN.md §6 shows the rule's text alone).
var batchPrefix = regexp.MustCompile(`^record [0-9]+: `)

func wantRefusal(t testing.TB, err error, code wire.Code, index int, text, what string) {
	t.Helper()
	we := testenv.WantCode(t, err, code, what)
	if !strings.Contains(we.Text, text) || batchPrefix.MatchString(we.Text) {
		t.Fatalf("%s: ERR %s %q, want the rule's text containing %q", what, we.Code, we.Text, text)
	}
	if len(we.Extra) != 1 || we.Extra[0] != uint64(index) {
		t.Fatalf("%s: ERR %s %q with extra %v, want the index %d", what, we.Code, we.Text, we.Extra, index)
	}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMkchainSchemaAndAuthority(t *testing.T) {
	e := newAppsEnv(t)
	auth := newKey(t)
	authText := apps.KeyText(auth.Public().(ed25519.PublicKey))
	if err := e.mkchain("v", map[string]any{"public": true, "schema": "vote", "authority": []string{authText}}); err != nil {
		t.Fatalf("mkchain with authority: %v", err)
	}
	for _, c := range []struct {
		what string
		opts map[string]any
		code wire.Code
	}{
		{"unknown schema", map[string]any{"schema": "poll"}, wire.CodeInvalid},
		{"authority without schema", map[string]any{"authority": []string{authText}}, wire.CodeInvalid},
		{"bad key text", map[string]any{"schema": "vote", "authority": []string{"not a key"}}, wire.CodeInvalid},
		{"repeated key", map[string]any{"schema": "vote", "authority": []string{authText, authText}}, wire.CodeInvalid},
		{"17 keys", map[string]any{"schema": "vote", "authority": make([]string, 17)}, wire.CodeInvalid},
		{"authority not an array", map[string]any{"schema": "vote", "authority": authText}, wire.CodeProto},
		{"schema not text", map[string]any{"schema": 1}, wire.CodeProto},
		{"schema on a chain with records... (none yet): other schema on v", map[string]any{"public": true, "schema": "donation"}, wire.CodeExists},
	} {
		name := "x"
		if c.code == wire.CodeExists {
			name = "v"
		}
		testenv.WantCode(t, e.mkchain(name, c.opts), c.code, c.what)
	}
	vals, err := e.Admin.Call(e.Ctx, "chains")
	if err != nil {
		t.Fatal(err)
	}
	var chains []map[string]any
	if err := canon.Unmarshal(vals[0], &chains); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range chains {
		name := c["name"].(string)
		seen[name] = true
		auth, ok := c["authority"].([]any)
		if !ok {
			t.Fatalf("chains: %s has authority %#v, want an array", name, c["authority"])
		}
		switch name {
		case "v":
			if c["schema"] != "vote" || len(auth) != 1 || auth[0] != authText {
				t.Fatalf("chains: v is %v, want schema vote and authority [%s]", c, authText)
			}
		case "vote", "donation", "resource":
			if c["schema"] != name || len(auth) != 0 || c["pow_bits"] != uint64(16) {
				t.Fatalf("chains: default chain %v, want schema %s, authority [], pow_bits 16", c, name)
			}
		case "keys", "audit":
			if c["schema"] != nil {
				t.Fatalf("chains: %s has schema %v, want null", name, c["schema"])
			}
		}
	}
	if !seen["vote"] || !seen["v"] {
		t.Fatalf("chains: %v", chains)
	}
	// A schema attaches to an existing chain only while it is empty.
	if err := e.mkchain("late", map[string]any{"public": true}); err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, e.Admin, "late", false, testenv.NewRecord(t, 1))
	testenv.WantCode(t, e.mkchain("late", map[string]any{"public": true, "schema": "vote"}), wire.CodeExists, "schema on a chain with records")
	if err := e.mkchain("early", map[string]any{"public": true}); err != nil {
		t.Fatal(err)
	}
	if err := e.mkchain("early", map[string]any{"public": true, "schema": "resource"}); err != nil {
		t.Fatalf("schema on an empty chain: %v", err)
	}
}

func TestVoteRulesThroughTCP(t *testing.T) {
	e := newAppsEnv(t)
	auth := newKey(t)
	if err := e.mkchain("v", map[string]any{"public": true, "schema": "vote",
		"authority": []string{apps.KeyText(auth.Public().(ed25519.PublicKey))}}); err != nil {
		t.Fatal(err)
	}
	bob := e.user("bob", "v", "write")
	carol := e.user("carol", "v", "write", "manage")
	open := e.event("v", "ballot.open", map[string]any{"ballot": "b1", "question": "Adopt?", "choices": []any{"yes", "no"}}, auth)

	_, err := rput(e.Ctx, bob, "v", open)
	wantRefusal(t, err, wire.CodePerm, 0, "ballot.open: needs the manage right on chain v", "ballot.open by an account without manage")
	_, err = rput(e.Ctx, carol, "v", e.event("v", "ballot.open", map[string]any{"ballot": "b1", "question": "Adopt?", "choices": []any{"yes", "no"}}, nil))
	wantRefusal(t, err, wire.CodeInvalid, 0, "ballot.open: this chain has authority keys", "unsigned ballot.open on a chain with authority keys")
	_, err = rput(e.Ctx, carol, "v", e.event("v", "ballot.open", map[string]any{"ballot": "b1", "question": "Adopt?", "choices": []any{"yes", "no"}}, newKey(t)))
	wantRefusal(t, err, wire.CodeInvalid, 0, "is not one of the chain's authority keys", "ballot.open signed by another key")
	_, err = rput(e.Ctx, carol, "v", testenv.NewRecord(t, 1))
	wantRefusal(t, err, wire.CodeInvalid, 0, "record type", "record without a type on a schema chain")
	_, err = rput(e.Ctx, carol, "v", e.event("v", "vote.bogus", map[string]any{}, nil))
	wantRefusal(t, err, wire.CodeInvalid, 0, "vote.bogus", "unknown type")
	if n := testenv.ChainSize(t, e.Admin, "v"); n != 0 {
		t.Fatalf("refused records wrote %d entries", n)
	}

	e.mustPut(carol, "v", open)
	register := e.event("v", "vote.register", map[string]any{"voter_id": "alice"}, auth)
	reg := e.mustPut(carol, "v", register)[0]
	var leaf [32]byte
	copy(leaf[:], reg.Leaf)
	if reg.EID == "" || reg.EID != apps.EID(leaf) {
		t.Fatalf("vote.register answered eid %q, want apps.EID of its leaf %q", reg.EID, apps.EID(leaf))
	}
	// A retry of the same record is not applied again and answers the same eid.
	again := e.mustPut(carol, "v", register)[0]
	if again.Seq != reg.Seq || again.EID != reg.EID {
		t.Fatalf("retried vote.register: %+v, want %+v", again, reg)
	}

	cast := func(choice string) []byte {
		return e.event("v", "vote.cast", map[string]any{"eid": reg.EID, "ballot": "b1", "choice": choice}, nil)
	}
	e.mustPut(bob, "v", cast("yes"))
	// A batch whose second record breaks a rule writes nothing.
	size := testenv.ChainSize(t, e.Admin, "v")
	_, err = rput(e.Ctx, bob, "v", e.event("v", "vote.uncast", map[string]any{"eid": reg.EID, "ballot": "b1"}, nil), cast("no"))
	if err != nil {
		t.Fatalf("uncast then cast in one batch: %v", err)
	}
	_, err = rput(e.Ctx, bob, "v", e.event("v", "vote.uncast", map[string]any{"eid": reg.EID, "ballot": "b1"}, nil), cast("yes"), cast("no"))
	wantRefusal(t, err, wire.CodeInvalid, 2, "already has an active cast on ballot b1", "a second cast in the batch")
	if n := testenv.ChainSize(t, e.Admin, "v"); n != size+2 {
		t.Fatalf("after a refused batch the chain has %d entries, want %d", n, size+2)
	}
	tally, at := e.mustView("v", "tally", map[string]any{"ballot": "b1"})
	if at != size+2 {
		t.Fatalf("view size %d, want %d", at, size+2)
	}
	choices := tally["choices"].(map[string]any)
	if choices["yes"] != uint64(0) || choices["no"] != uint64(1) || tally["registered"] != uint64(1) {
		t.Fatalf("tally %v, want yes 0, no 1, registered 1 (the refused batch left no trace)", tally)
	}
}

func TestViewCommandBadInput(t *testing.T) {
	e := newAppsEnv(t)
	if err := e.mkchain("d", map[string]any{"public": true, "schema": "donation"}); err != nil {
		t.Fatal(err)
	}
	if err := e.mkchain("free", map[string]any{"public": true}); err != nil {
		t.Fatal(err)
	}
	if err := e.mkchain("secret", map[string]any{"schema": "donation"}); err != nil {
		t.Fatal(err)
	}
	e.mustPut(e.Admin, "d", e.event("d", "fund.open", map[string]any{"fund": "f", "name": "Relief", "unit": "EUR-cent"}, nil))
	anon := e.Srv.Dial()
	if _, _, err := view(e.Ctx, anon, "d", "fund", map[string]any{"fund": "f"}); err != nil {
		t.Fatalf("view of a public chain in a session: %v", err)
	}
	for _, c := range []struct {
		what string
		c    *client.Client
		args []any
		code wire.Code
	}{
		{"unknown view", e.Admin, []any{"d", "tally"}, wire.CodeInvalid},
		{"missing item", e.Admin, []any{"d", "fund", map[string]any{"fund": "nope"}}, wire.CodeNotFound},
		{"bad argument type", e.Admin, []any{"d", "fund", map[string]any{"fund": 7}}, wire.CodeInvalid},
		{"arguments not a map", e.Admin, []any{"d", "fund", []any{"f"}}, wire.CodeProto},
		{"view name not text", e.Admin, []any{"d", 3}, wire.CodeProto},
		{"oversize view name", e.Admin, []any{"d", strings.Repeat("v", 100_000)}, wire.CodeInvalid},
		{"oversize arguments", e.Admin, []any{"d", "fund", map[string]any{"fund": strings.Repeat("a", 2000)}}, wire.CodeLimit},
		{"invalid UTF-8 name", e.Admin, []any{"d", "\xff\xfe"}, wire.CodeProto},
		{"too many arguments", e.Admin, []any{"d", "fund", map[string]any{}, 1}, wire.CodeProto},
		{"chain without schema", e.Admin, []any{"free", "fund"}, wire.CodeInvalid},
		{"missing chain", e.Admin, []any{"nochain", "fund"}, wire.CodeNotFound},
		{"private chain without a right", anon, []any{"secret", "funds"}, wire.CodeNotFound},
	} {
		_, err := c.c.Call(e.Ctx, "view", c.args...)
		testenv.WantCode(t, err, c.code, c.what)
	}
	if _, _, err := view(e.Ctx, e.Admin, "secret", "funds", nil); err != nil {
		t.Fatalf("admin view of a private chain: %v", err)
	}
}

func TestDonationBatchAllOrNothingAndNeighbours(t *testing.T) {
	e := newAppsEnv(t)
	if err := e.mkchain("d", map[string]any{"public": true, "schema": "donation"}); err != nil {
		t.Fatal(err)
	}
	if err := e.mkchain("free", map[string]any{"public": true}); err != nil {
		t.Fatal(err)
	}
	e.mustPut(e.Admin, "d", e.event("d", "fund.open", map[string]any{"fund": "f", "name": "Relief", "unit": "EUR-cent"}, nil))
	in := func(n uint64) []byte {
		return e.event("d", "donation.in", map[string]any{"fund": "f", "amount": n}, nil)
	}
	out := func(n uint64) []byte {
		return e.event("d", "donation.out", map[string]any{"fund": "f", "amount": n, "purpose": "food"}, nil)
	}
	_, err := rput(e.Ctx, e.Admin, "d", in(10), out(11))
	wantRefusal(t, err, wire.CodeInvalid, 1, "donation.out", "spending more than the batch brought in")
	e.mustPut(e.Admin, "d", in(10), out(10))

	// Refused and accepted batches in the same group commits: each refused
	// batch fails alone.
	conns := make([]*client.Client, 16)
	for i := range conns {
		conns[i] = e.Srv.AdminClient()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				_, errs[i] = rput(e.Ctx, c, "d", in(1), out(1_000_000))
			case 1:
				_, errs[i] = rput(e.Ctx, c, "d", in(2))
			default:
				_, errs[i] = rput(e.Ctx, c, "free", testenv.NewRecord(t, i))
			}
		})
	}
	wg.Wait()
	var want uint64
	for i, err := range errs {
		if i%3 == 0 {
			wantRefusal(t, err, wire.CodeInvalid, 1, "donation.out", "overspending batch")
			continue
		}
		if err != nil {
			t.Fatalf("neighbour %d of refused batches failed: %v", i, err)
		}
		if i%3 == 1 {
			want += 2
		}
	}
	fund, _ := e.mustView("d", "fund", map[string]any{"fund": "f"})
	if fund["balance"] != want || fund["in"] != want+10 {
		t.Fatalf("fund %v, want balance %d, in %d", fund, want, want+10)
	}
}

// TestConcurrentCastsOneAccepted: 32 connections cast for the same voter at
// once; the committer judges them in order in its transaction, so exactly
// one passes.
func TestConcurrentCastsOneAccepted(t *testing.T) {
	e := newAppsEnv(t)
	if err := e.mkchain("v", map[string]any{"public": true, "schema": "vote"}); err != nil {
		t.Fatal(err)
	}
	e.mustPut(e.Admin, "v", e.event("v", "ballot.open", map[string]any{"ballot": "b", "question": "?", "choices": []any{"a", "b"}}, nil))
	eid := e.mustPut(e.Admin, "v", e.event("v", "vote.register", map[string]any{"voter_id": "v1"}, nil))[0].EID
	accepted := runConcurrently(t, e, 32, func(c *client.Client, i int) error {
		_, err := rput(e.Ctx, c, "v", e.event("v", "vote.cast", map[string]any{"eid": eid, "ballot": "b", "choice": []string{"a", "b"}[i%2]}, nil))
		return err
	})
	if accepted != 1 {
		t.Fatalf("%d of 32 concurrent casts for one voter accepted, want exactly 1", accepted)
	}
	tally, _ := e.mustView("v", "tally", map[string]any{"ballot": "b"})
	ch := tally["choices"].(map[string]any)
	if ch["a"].(uint64)+ch["b"].(uint64) != 1 {
		t.Fatalf("tally %v, want one cast", tally)
	}
}

// TestConcurrentSpendsNeverBelowZero: 32 connections consume 1 each from a
// balance of 10; exactly 10 pass.
func TestConcurrentSpendsNeverBelowZero(t *testing.T) {
	e := newAppsEnv(t)
	if err := e.mkchain("r", map[string]any{"public": true, "schema": "resource"}); err != nil {
		t.Fatal(err)
	}
	e.mustPut(e.Admin, "r",
		e.event("r", "account.open", map[string]any{"account": "a", "unit": "cpu-s"}, nil),
		e.event("r", "alloc", map[string]any{"account": "a", "amount": uint64(10)}, nil))
	accepted := runConcurrently(t, e, 32, func(c *client.Client, i int) error {
		_, err := rput(e.Ctx, c, "r", e.event("r", "consume", map[string]any{"account": "a", "amount": uint64(1)}, nil))
		return err
	})
	acct, _ := e.mustView("r", "account", map[string]any{"account": "a"})
	if accepted != 10 || acct["balance"] != uint64(0) || acct["consumed"] != uint64(10) {
		t.Fatalf("%d of 32 spends accepted, account %v; want 10, balance 0, consumed 10", accepted, acct)
	}
}

// runConcurrently runs fn on n connections at once (started together) and
// returns how many succeeded; every failure must be a rule's ERR invalid.
func runConcurrently(t *testing.T, e *appsEnv, n int, fn func(c *client.Client, i int) error) int {
	t.Helper()
	e.Srv.AddUser("w", "w-password", true)
	conns := make([]*client.Client, n)
	for i := range conns {
		conns[i] = e.Srv.Login("w", "w-password")
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			<-start
			errs[i] = fn(c, i)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantRefusal(t, err, wire.CodeInvalid, 0, "", "concurrent request "+string(rune('0'+i%10)))
	}
	return ok
}
