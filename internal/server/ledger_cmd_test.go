package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// entryRecord parses an entry and returns it with its record's exact bytes.
func entryRecord(t testing.TB, b []byte) (*verify.Entry, []byte) {
	t.Helper()
	e, r, err := verify.ParseEntry(b)
	if err != nil {
		t.Fatalf("entry does not parse: %v", err)
	}
	return e, r.Raw
}

func TestLedgerReadCommandsAnswerWhatWasPut(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	ctx := e.Ctx
	recs := testenv.Numbered(t, "r", 0, 5)
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = testenv.RecordID(t, r)
	}
	first := testenv.Put(t, e.Admin, "t", true, recs[0])
	rest := testenv.Put(t, e.Admin, "t", true, recs[1:]...)
	results := append(first, rest...)
	for i, r := range results {
		if r.ID != ids[i] || r.Seq != uint64(i) || len(r.Leaf) != 32 || r.Receipt == "" {
			t.Fatalf("rput result %d = %+v, want id %s seq %d, a 32-byte leaf and a receipt", i, r, ids[i], i)
		}
	}
	anon := e.Srv.Dial() // a public chain needs no login

	t.Run("rget", func(t *testing.T) {
		b, err := anon.GetRecord(ctx, "t", ids[2])
		if err != nil {
			t.Fatal(err)
		}
		entry, rec := entryRecord(t, b)
		leaf := verify.LeafHash(b)
		if entry.Seq != 2 || !bytes.Equal(rec, recs[2]) || !bytes.Equal(leaf[:], results[2].Leaf) {
			t.Errorf("rget %s: seq %d, record equal %v, leaf equal %v; want seq 2, the record as sent and the rput leaf",
				ids[2], entry.Seq, bytes.Equal(rec, recs[2]), bytes.Equal(leaf[:], results[2].Leaf))
		}
		missing := testenv.NewID()
		es, err := anon.GetRecords(ctx, "t", []string{ids[4], missing, ids[0]})
		if err != nil {
			t.Fatal(err)
		}
		if es[1] != nil {
			t.Errorf("rget of a missing id among others = %x, want null", es[1])
		}
		for i, want := range map[int]int{0: 4, 2: 0} {
			if _, rec := entryRecord(t, es[i]); !bytes.Equal(rec, recs[want]) {
				t.Errorf("rget many: entry %d holds another record than %s", i, ids[want])
			}
		}
		_, err = anon.GetRecord(ctx, "t", missing)
		testenv.WantCode(t, err, wire.CodeNotFound, "rget of one missing id")
	})

	t.Run("rabs", func(t *testing.T) {
		for _, tc := range []struct{ seq, want int64 }{{0, 0}, {4, 4}, {-1, 4}, {-5, 0}} {
			b, err := anon.AbsRecord(ctx, "t", tc.seq)
			if err != nil {
				t.Fatalf("rabs %d: %v", tc.seq, err)
			}
			if entry, _ := entryRecord(t, b); entry.Seq != uint64(tc.want) {
				t.Errorf("rabs %d = seq %d, want %d", tc.seq, entry.Seq, tc.want)
			}
		}
		es, err := anon.AbsRecords(ctx, "t", []int64{3, 5, -6, -2})
		if err != nil {
			t.Fatal(err)
		}
		if es[1] != nil || es[2] != nil {
			t.Errorf("rabs [3 5 -6 -2]: missing seqs answered %x %x, want null", es[1], es[2])
		}
		if a, _ := entryRecord(t, es[0]); a.Seq != 3 {
			t.Errorf("rabs [3 ...][0] = seq %d, want 3", a.Seq)
		}
		if b, _ := entryRecord(t, es[3]); b.Seq != 3 {
			t.Errorf("rabs [... -2][3] = seq %d, want 3", b.Seq)
		}
		for _, s := range []int64{5, -6} {
			_, err := anon.AbsRecord(ctx, "t", s)
			testenv.WantCode(t, err, wire.CodeNotFound, "rabs of one missing seq")
		}
	})

	t.Run("rhave rsize", func(t *testing.T) {
		have, err := anon.HaveRecords(ctx, "t", []string{ids[0], testenv.NewID(), ids[4]})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(have, []bool{true, false, true}) {
			t.Errorf("rhave = %v, want [true false true]", have)
		}
		one, err := anon.Call(ctx, "rhave", "t", ids[1])
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		if err := wire.Unmarshal(one[0], &got); err != nil || !slices.Equal(got, []bool{true}) {
			t.Errorf("rhave of one id = %v (%v), want [true]", got, err)
		}
		if n := testenv.ChainSize(t, anon, "t"); n != 5 {
			t.Errorf("rsize = %d, want 5", n)
		}
	})

	t.Run("rlist rcount", func(t *testing.T) {
		all, next, err := anon.ListRecords(ctx, "t", 0, math.MaxUint64, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(all, ids) || next != nil {
			t.Errorf("rlist everything = %v next %x, want %v and no cursor", all, next, ids)
		}
		var paged []string
		var cursor []byte
		pages := 0
		for {
			page, next, err := anon.ListRecords(ctx, "t", 0, math.MaxUint64, 2, cursor)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			paged = append(paged, page...)
			if next == nil {
				break
			}
			if pages > 5 {
				t.Fatal("rlist keeps answering cursors")
			}
			cursor = next
		}
		if !slices.Equal(paged, ids) || pages != 3 {
			t.Errorf("rlist in pages of 2 = %v over %d pages, want %v over 3", paged, pages, ids)
		}
		entry, _ := entryRecord(t, mustAbs(t, anon, "t", 0))
		later, _, err := anon.ListRecords(ctx, "t", entry.Time+3600_000, math.MaxUint64, 0, nil)
		if err != nil || len(later) != 0 {
			t.Errorf("rlist from an hour later = %v (%v), want nothing", later, err)
		}
		n, err := anon.CountRecords(ctx, "t", 0, math.MaxUint64)
		if err != nil || n != 5 {
			t.Errorf("rcount everything = %d (%v), want 5", n, err)
		}
		n, err = anon.CountRecords(ctx, "t", 0, entry.Time)
		if err != nil || n != 0 {
			t.Errorf("rcount before the first entry = %d (%v), want 0", n, err)
		}
	})

	t.Run("rproof rcons rhead", func(t *testing.T) {
		byID, err := anon.Proof(ctx, "t", client.ByID(ids[3]), 0)
		if err != nil {
			t.Fatal(err)
		}
		bySeq, err := anon.Proof(ctx, "t", client.BySeq(3), 0)
		if err != nil {
			t.Fatal(err)
		}
		if byID != bySeq {
			t.Errorf("rproof by id and by seq differ:\n%s\n%s", byID, bySeq)
		}
		v, err := verify.VerifyReceipt([]byte(byID), e.ReceiptOptions())
		if err != nil {
			t.Fatalf("rproof receipt: %v", err)
		}
		if v.Entry.Seq != 3 || v.Checkpoint.Size != 5 || v.Record.ID != ids[3] {
			t.Errorf("rproof proves seq %d of size %d, record %s; want seq 3 of size 5, record %s", v.Entry.Seq, v.Checkpoint.Size, v.Record.ID, ids[3])
		}
		_, err = anon.Proof(ctx, "t", client.BySeq(5), 0)
		testenv.WantCode(t, err, wire.CodeNotFound, "rproof of a seq past the end")

		// The receipt rput gave for the first record is against size 1; the
		// newest checkpoint must extend it.
		old, err := verify.VerifyReceipt([]byte(results[0].Receipt), e.ReceiptOptions())
		if err != nil {
			t.Fatal(err)
		}
		hashes, note, err := anon.Consistency(ctx, "t", old.Checkpoint.Size, 0)
		if err != nil {
			t.Fatal(err)
		}
		newer, err := verify.OpenCheckpoint([]byte(note), old.Checkpoint.Origin, e.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.VerifyConsistency(old.Checkpoint, newer, hashes); err != nil {
			t.Errorf("rcons 1 → %d: %v", newer.Size, err)
		}
		head, err := anon.Head(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		cp, err := verify.OpenCheckpoint([]byte(head), old.Checkpoint.Origin, e.Key)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != 5 || cp.Root != v.Checkpoint.Root {
			t.Errorf("rhead = size %d root %x, want size 5 and the receipt's root %x", cp.Size, cp.Root, v.Checkpoint.Root)
		}
	})

	t.Run("chains rcheck", func(t *testing.T) {
		chains, err := anon.Chains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(chains, func(c client.ChainInfo) bool { return c.Name == "t" })
		if i < 0 || chains[i] != (client.ChainInfo{Name: "t", Origin: e.Admin.ServerID(), Size: 5, Public: true}) {
			t.Errorf("chains = %+v, want t with size 5, public, pow_bits 0, no schema", chains)
		}
		for _, what := range []string{"", "sum", "link", "pow", "sig", "tree", "all"} {
			r, err := e.Admin.CheckChain(ctx, "t", what)
			if err != nil {
				t.Fatalf("rcheck %q: %v", what, err)
			}
			if r.Checked != 5 || len(r.Errors) != 0 {
				t.Errorf("rcheck t %q = %+v, want 5 checked and no errors", what, r)
			}
		}
	})
}

func mustAbs(t testing.TB, c *client.Client, chain string, seq int64) []byte {
	t.Helper()
	b, err := c.AbsRecord(context.Background(), chain, seq)
	if err != nil {
		t.Fatalf("rabs %s %d: %v", chain, seq, err)
	}
	return b
}

// nonCanonical is a record whose payload integer 1 is encoded in two bytes
// (0x18 0x01) instead of one: valid CBOR, not deterministic.
func nonCanonical(t testing.TB) wire.RawMessage {
	b := cborHead(5, 2)
	b = append(b, mustCBOR(t, "id")...)
	b = append(b, mustCBOR(t, testenv.NewID())...)
	b = append(b, mustCBOR(t, "payload")...)
	return append(b, 0x18, 0x01)
}

// oversized is a well-formed record one byte over the 64 KiB limit (NewRecord
// refuses to build one).
func oversized(t testing.TB) []byte {
	base := mustCBOR(t, map[string]any{"id": testenv.NewID(), "payload": ""})
	pad := verify.MaxRecordSize + 1 - len(base)
	for {
		b := mustCBOR(t, map[string]any{"id": testenv.NewID(), "payload": strings.Repeat("x", pad)})
		if len(b) == verify.MaxRecordSize+1 {
			return b
		}
		pad -= len(b) - (verify.MaxRecordSize + 1)
	}
}

func TestLedgerCommandsRefuseBadRequestsWithOneAnswer(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	ctx := e.Ctx
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "x", 0, 3)...)
	e.Srv.AddUser("bob", "bob-password", false)
	bob := e.Srv.Login("bob", "bob-password")
	anon := e.Srv.Dial()
	raw := func(rec []byte) wire.RawMessage { return wire.RawMessage(rec) }
	_, other, _ := ed25519.GenerateKey(nil)
	signedElsewhere, err := client.NewRecord(1, "", 0, client.RecordOptions{Author: other, Origin: verify.OriginLine(e.Admin.ServerID(), "u")})
	if err != nil {
		t.Fatal(err)
	}
	big := oversized(t)
	many := make([]wire.RawMessage, client.MaxPutBatch+1)
	for i := range many {
		many[i] = raw(testenv.NewRecord(t, i))
	}
	manyIDs := make([]string, client.MaxGetBatch+1)
	for i := range manyIDs {
		manyIDs[i] = testenv.NewID()
	}
	cases := []struct {
		name string
		c    *client.Client
		cmd  string
		args []any
		code wire.Code
	}{
		{"rput text instead of a record", e.Admin, "rput", []any{"t", "record"}, wire.CodeProto},
		{"rput empty batch", e.Admin, "rput", []any{"t", []any{}}, wire.CodeInvalid},
		{"rput non-canonical record", e.Admin, "rput", []any{"t", nonCanonical(t)}, wire.CodeInvalid},
		{"rput unknown key", e.Admin, "rput", []any{"t", map[string]any{"id": testenv.NewID(), "payload": 1, "colour": "red"}}, wire.CodeInvalid},
		{"rput without id", e.Admin, "rput", []any{"t", map[string]any{"payload": 1}}, wire.CodeInvalid},
		{"rput upper-case id", e.Admin, "rput", []any{"t", map[string]any{"id": strings.ToUpper(testenv.NewID()), "payload": 1}}, wire.CodeInvalid},
		{"rput record over 64 KiB", e.Admin, "rput", []any{"t", raw(big)}, wire.CodeLimit},
		{"rput without the chain's proof of work", e.Admin, "rput", []any{"vote", raw(testenv.NewRecord(t, 1))}, wire.CodeInvalid},
		{"rput signed for another chain", e.Admin, "rput", []any{"t", raw(signedElsewhere)}, wire.CodeInvalid},
		{"rput over 1000 records", e.Admin, "rput", []any{"t", many}, wire.CodeLimit},
		{"rput unknown chain", e.Admin, "rput", []any{"nochain", raw(testenv.NewRecord(t, 1))}, wire.CodeNotFound},
		{"rput options not a map", e.Admin, "rput", []any{"t", raw(testenv.NewRecord(t, 1)), true}, wire.CodeProto},
		{"rput without login", anon, "rput", []any{"t", raw(testenv.NewRecord(t, 1))}, wire.CodeState},
		{"rput without the write right", bob, "rput", []any{"t", raw(testenv.NewRecord(t, 1))}, wire.CodePerm},
		{"rget integer id", anon, "rget", []any{"t", 42}, wire.CodeProto},
		{"rget malformed id", anon, "rget", []any{"t", "not-a-uuid"}, wire.CodeInvalid},
		{"rget over 1000 ids", anon, "rget", []any{"t", manyIDs}, wire.CodeLimit},
		{"rget unknown chain", anon, "rget", []any{"nochain", testenv.NewID()}, wire.CodeNotFound},
		{"rabs text seq", anon, "rabs", []any{"t", "0"}, wire.CodeProto},
		{"rhave no ids", anon, "rhave", []any{"t"}, wire.CodeProto},
		{"rsize unknown chain", anon, "rsize", []any{"nochain"}, wire.CodeNotFound},
		{"rsize two chains", anon, "rsize", []any{"t", "vote"}, wire.CodeProto},
		{"rlist limit 0", anon, "rlist", []any{"t", 0, uint64(math.MaxUint64), 0}, wire.CodeLimit},
		{"rlist limit over 100,000", anon, "rlist", []any{"t", 0, uint64(math.MaxUint64), client.MaxListPage + 1}, wire.CodeLimit},
		{"rlist text time", anon, "rlist", []any{"t", "yesterday", 1}, wire.CodeProto},
		{"rcount missing to", anon, "rcount", []any{"t", 0}, wire.CodeProto},
		{"rproof bytes", anon, "rproof", []any{"t", []byte{1}}, wire.CodeProto},
		{"rproof missing id", anon, "rproof", []any{"t", testenv.NewID()}, wire.CodeNotFound},
		{"rproof tree size 0", anon, "rproof", []any{"t", 0, 0}, wire.CodeInvalid},
		{"rproof no kept checkpoint of that size", anon, "rproof", []any{"t", 0, 2}, wire.CodeNotFound},
		{"rcons new size not kept", anon, "rcons", []any{"t", 1, 2}, wire.CodeNotFound},
		{"rhead unknown chain", anon, "rhead", []any{"nochain"}, wire.CodeNotFound},
		{"rcheck unknown check", e.Admin, "rcheck", []any{"t", "everything"}, wire.CodeInvalid},
		{"rcheck unknown chain", e.Admin, "rcheck", []any{"nochain"}, wire.CodeNotFound},
		{"rcheck by a user", bob, "rcheck", []any{"t"}, wire.CodePerm},
		{"rcheck without login", anon, "rcheck", []any{"t"}, wire.CodeState},
		{"chains with an argument", anon, "chains", []any{"t"}, wire.CodeProto},
		{"mkchain bad name", e.Admin, "mkchain", []any{"Bad Name", map[string]any{}}, wire.CodeInvalid},
		{"mkchain existing", e.Admin, "mkchain", []any{"t", map[string]any{"public": true}}, wire.CodeExists},
		{"mkchain pow_bits 33", e.Admin, "mkchain", []any{"u", map[string]any{"pow_bits": 33}}, wire.CodeInvalid},
		{"mkchain options not a map", e.Admin, "mkchain", []any{"u", "public"}, wire.CodeProto},
		{"mkchain by a user", bob, "mkchain", []any{"u", map[string]any{}}, wire.CodePerm},
		{"mkchain without login", anon, "mkchain", []any{"u", map[string]any{}}, wire.CodeState},
		{"grant unknown right", e.Admin, "grant", []any{"bob", "t", "fly"}, wire.CodeInvalid},
		{"grant to an unknown account", e.Admin, "grant", []any{"nobody", "t", "read"}, wire.CodeNotFound},
		{"grant on an unknown chain", e.Admin, "grant", []any{"bob", "nochain", "read"}, wire.CodeNotFound},
		{"grant by a user", bob, "grant", []any{"bob", "t", "write"}, wire.CodePerm},
		{"revoke without login", anon, "revoke", []any{"bob", "t", "read"}, wire.CodeState},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			connID := helloID(t, tc.c)
			_, err := tc.c.Call(ctx, tc.cmd, tc.args...)
			testenv.WantCode(t, err, tc.code, tc.cmd)
			expectInSync(t, tc.c, connID, tc.name)
		})
	}
	if n := testenv.ChainSize(t, e.Admin, "t"); n != 3 {
		t.Errorf("after the refused requests rsize t = %d, want 3", n)
	}
	if n := testenv.ChainSize(t, e.Admin, "vote"); n != 0 {
		t.Errorf("after the refused requests rsize vote = %d, want 0", n)
	}
}

func TestPublicChainIsReadableWithoutLoginAndPrivateChainIsInvisible(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"pub"})
	ctx := e.Ctx
	if err := e.Admin.MakeChain(ctx, "priv", client.ChainOptions{}); err != nil {
		t.Fatal(err)
	}
	res := testenv.Put(t, e.Admin, "priv", false, testenv.NewRecord(t, "secret"))
	testenv.Put(t, e.Admin, "pub", false, testenv.NewRecord(t, "open"))
	id := res[0].ID
	e.Srv.AddUser("bob", "bob-password", false)
	bob := e.Srv.Login("bob", "bob-password")
	anon := e.Srv.Dial()

	names := func(c *client.Client) []string {
		t.Helper()
		chains, err := c.Chains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ch := range chains {
			out = append(out, ch.Name)
		}
		return out
	}
	reads := []struct {
		cmd  string
		args []any
	}{
		{"rget", []any{"priv", id}},
		{"rget", []any{"priv", []string{id}}},
		{"rabs", []any{"priv", 0}},
		{"rhave", []any{"priv", []string{id}}},
		{"rsize", []any{"priv"}},
		{"rlist", []any{"priv", 0, uint64(math.MaxUint64)}},
		{"rcount", []any{"priv", 0, uint64(math.MaxUint64)}},
		{"rproof", []any{"priv", 0}},
		{"rcons", []any{"priv", 0}},
		{"rhead", []any{"priv"}},
		{"rhead", []any{verify.OriginLine(e.Admin.ServerID(), "priv")}},
	}
	invisible := func(who string, c *client.Client, alsoRput bool) {
		t.Helper()
		if n := names(c); slices.Contains(n, "priv") || !slices.Contains(n, "pub") {
			t.Errorf("%s: chains = %v, want pub and not priv", who, n)
		}
		if _, err := c.ChainSize(ctx, "pub"); err != nil {
			t.Errorf("%s: rsize of the public chain: %v", who, err)
		}
		for _, r := range reads {
			_, err := c.Call(ctx, r.cmd, r.args...)
			testenv.WantCode(t, err, wire.CodeNotFound, who+": "+r.cmd+" of the private chain")
		}
		if alsoRput {
			_, err := c.PutRecords(ctx, "priv", [][]byte{testenv.NewRecord(t, 1)}, false)
			testenv.WantCode(t, err, wire.CodeNotFound, who+": rput to the private chain")
		}
	}
	invisible("anonymous", anon, false)
	invisible("bob without rights", bob, true)

	if err := e.Admin.Grant(ctx, "bob", "priv", "read"); err != nil {
		t.Fatal(err)
	}
	if n := names(bob); !slices.Contains(n, "priv") {
		t.Errorf("bob with read: chains = %v, want priv listed", n)
	}
	for _, r := range reads {
		if _, err := bob.Call(ctx, r.cmd, r.args...); err != nil {
			t.Errorf("bob with read: %s %v: %v", r.cmd, r.args, err)
		}
	}
	_, err := bob.PutRecords(ctx, "priv", [][]byte{testenv.NewRecord(t, 1)}, false)
	testenv.WantCode(t, err, wire.CodePerm, "bob with read only: rput")
	invisible("anonymous after the grant", anon, false)

	if err := e.Admin.Grant(ctx, "bob", "priv", "write"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.PutRecords(ctx, "priv", [][]byte{testenv.NewRecord(t, 2)}, false); err != nil {
		t.Errorf("bob with write: rput: %v", err)
	}
	for _, r := range []string{"read", "write"} {
		if err := e.Admin.Revoke(ctx, "bob", "priv", r); err != nil {
			t.Fatal(err)
		}
	}
	invisible("bob after the revokes", bob, true)
	if n := testenv.ChainSize(t, e.Admin, "priv"); n != 2 {
		t.Errorf("rsize priv = %d, want 2 (the admin's and bob's one allowed record)", n)
	}
}

// An anonymous connection must not learn that a private chain exists even
// from rput (DESIGN.md §3.4 footnote 1): to it a private chain does not
// exist, so rput answers ERR notfound exactly as for no chain (a public
// chain answers ERR state: rput needs a login).
func TestRputWithoutLoginAnswersAPrivateChainAsAMissingOne(t *testing.T) {
	e := testenv.NewLedgerEnv(t, nil)
	if err := e.Admin.MakeChain(e.Ctx, "priv", client.ChainOptions{}); err != nil {
		t.Fatal(err)
	}
	anon := e.Srv.Dial()
	_, errPriv := anon.PutRecords(e.Ctx, "priv", [][]byte{testenv.NewRecord(t, 1)}, false)
	_, errNone := anon.PutRecords(e.Ctx, "nochain", [][]byte{testenv.NewRecord(t, 1)}, false)
	if wire.CodeOf(errPriv) != wire.CodeNotFound || wire.CodeOf(errNone) != wire.CodeNotFound {
		t.Errorf("anonymous rput: private chain answers %v, a missing chain %v; want ERR notfound for both", errPriv, errNone)
	}
}

func TestRputSameIDSameContentIsIdempotent(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	rec := testenv.NewRecord(t, map[string]any{"vote": "yes"})
	first := testenv.Put(t, e.Admin, "t", false, testenv.NewRecord(t, 0), rec)
	again := testenv.Put(t, e.Admin, "t", true, rec)
	if again[0].Seq != first[1].Seq || !bytes.Equal(again[0].Leaf, first[1].Leaf) {
		t.Errorf("resent record = seq %d leaf %x, want the first answer's seq %d leaf %x", again[0].Seq, again[0].Leaf, first[1].Seq, first[1].Leaf)
	}
	if v, err := verify.VerifyReceipt([]byte(again[0].Receipt), e.ReceiptOptions()); err != nil || v.Entry.Seq != first[1].Seq {
		t.Errorf("receipt of the resent record: %v", err)
	}
	if n := testenv.ChainSize(t, e.Admin, "t"); n != 2 {
		t.Errorf("rsize = %d, want 2: a resent record is stored once", n)
	}
}

func TestRputSameIDOtherContentIsConflict(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	id := testenv.NewID()
	testenv.Put(t, e.Admin, "t", false, testenv.RecordWithID(t, id, "yes"))
	_, err := e.Admin.PutRecords(e.Ctx, "t", [][]byte{testenv.RecordWithID(t, id, "no")}, false)
	testenv.WantCode(t, err, wire.CodeConflict, "same id, other payload")
	b, err := e.Admin.GetRecord(e.Ctx, "t", id)
	if err != nil {
		t.Fatal(err)
	}
	if _, rec := entryRecord(t, b); !bytes.Contains(rec, []byte("yes")) {
		t.Errorf("the stored record changed after a conflict")
	}
	if n := testenv.ChainSize(t, e.Admin, "t"); n != 1 {
		t.Errorf("rsize = %d, want 1", n)
	}
}

func TestRputBatchIsAllOrNothingAndNamesTheBadRecord(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	stored := testenv.NewRecord(t, "stored")
	testenv.Put(t, e.Admin, "t", false, stored)
	storedID := testenv.RecordID(t, stored)
	dupID := testenv.NewID()
	cases := []struct {
		name  string
		batch func() [][]byte
		code  wire.Code
		index int
	}{
		{"malformed record", func() [][]byte {
			return [][]byte{testenv.NewRecord(t, 1), testenv.NewRecord(t, 2), nonCanonical(t), testenv.NewRecord(t, 4)}
		}, wire.CodeInvalid, 2},
		{"record over 64 KiB", func() [][]byte {
			return [][]byte{testenv.NewRecord(t, 1), oversized(t)}
		}, wire.CodeLimit, 1},
		{"repeated id with other content", func() [][]byte {
			return [][]byte{testenv.NewRecord(t, 1), testenv.RecordWithID(t, dupID, "a"), testenv.NewRecord(t, 3), testenv.RecordWithID(t, dupID, "b")}
		}, wire.CodeConflict, 3},
		{"stored id with other content", func() [][]byte {
			return [][]byte{testenv.NewRecord(t, 1), testenv.RecordWithID(t, storedID, "other")}
		}, wire.CodeConflict, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			batch := tc.batch()
			_, err := e.Admin.PutRecords(e.Ctx, "t", batch, false)
			testenv.WantCode(t, err, tc.code, "bad batch")
			if i, ok := client.BatchIndex(err); !ok || i != tc.index {
				t.Errorf("batch error names record %d (%v), want %d: %v", i, ok, tc.index, err)
			}
			if n := testenv.ChainSize(t, e.Admin, "t"); n != 1 {
				t.Errorf("rsize after a refused batch = %d, want 1", n)
			}
			var ids []string
			for _, r := range batch {
				if rr, err := verify.CheckRecord(r); err == nil && rr.ID != storedID {
					ids = append(ids, rr.ID)
				}
			}
			have, err := e.Admin.HaveRecords(e.Ctx, "t", ids)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(have, true) {
				t.Errorf("rhave of the refused batch's good records = %v, want none stored", have)
			}
		})
	}

	// The same id with the same content twice in one batch is one entry, and
	// both answers name it.
	rec := testenv.NewRecord(t, "twice")
	res := testenv.Put(t, e.Admin, "t", false, rec, testenv.NewRecord(t, "between"), rec)
	if res[0].Seq != 1 || res[1].Seq != 2 || res[2].Seq != 1 {
		t.Errorf("batch [r, x, r] seqs = %d %d %d, want 1 2 1", res[0].Seq, res[1].Seq, res[2].Seq)
	}
	if n := testenv.ChainSize(t, e.Admin, "t"); n != 3 {
		t.Errorf("rsize = %d, want 3", n)
	}
}

func TestServerWrittenChainsRefuseRecordsAndWriteGrants(t *testing.T) {
	e := testenv.NewLedgerEnv(t, nil)
	e.Srv.AddUser("bob", "bob-password", false)
	for _, chain := range []string{"audit", "keys"} {
		_, err := e.Admin.PutRecords(e.Ctx, chain, [][]byte{testenv.NewRecord(t, 1)}, false)
		testenv.WantCode(t, err, wire.CodePerm, "admin rput to "+chain)
		err = e.Admin.Grant(e.Ctx, "bob", chain, "write")
		testenv.WantCode(t, err, wire.CodeInvalid, "grant write on "+chain)
	}
	// Reading the audit chain can be granted.
	if err := e.Admin.Grant(e.Ctx, "bob", "audit", "read"); err != nil {
		t.Fatalf("grant read on audit: %v", err)
	}
	bob := e.Srv.Login("bob", "bob-password")
	n := testenv.ChainSize(t, bob, "audit")
	if n == 0 {
		t.Fatal("audit chain is empty after mkchain, uadd and grant")
	}
	last, err := bob.AbsRecord(e.Ctx, "audit", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, rec := entryRecord(t, last); !bytes.Contains(rec, []byte("grant")) || !bytes.Contains(rec, []byte("bob")) {
		t.Errorf("the newest audit entry does not record the grant to bob: %q", rec)
	}
	if bytes.Contains(last, []byte("bob-password")) {
		t.Error("the audit chain holds a password")
	}
}
