package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// TestPrivateChainAnswersExactlyLikeAMissingOne: to a connection that may
// not see it, the private chain audit must be indistinguishable from a chain
// that does not exist, in code and text, given by name or by origin.
func TestPrivateChainAnswersExactlyLikeAMissingOne(t *testing.T) {
	e := testenv.NewLedgerEnv(t, nil)
	e.Srv.AddUser("bob", "bob-password-1", false)
	id := e.Admin.ServerID()
	conns := map[string]*client.Client{"anonymous": e.Srv.Dial(), "bob": e.Srv.Login("bob", "bob-password-1")}
	rec := testenv.NewRecord(t, "x")
	cmds := []struct {
		cmd  string
		args []any
	}{
		{"rsize", nil}, {"rhead", nil}, {"rget", []any{testenv.NewID()}}, {"rabs", []any{0}},
		{"rhave", []any{testenv.NewID()}}, {"rlist", []any{0, 1}}, {"rcount", []any{0, 1}},
		{"rproof", []any{0}}, {"rcons", []any{0}}, {"rput", []any{wire.RawMessage(rec)}},
	}
	for who, c := range conns {
		for _, form := range []func(string) string{
			func(n string) string { return n },
			func(n string) string { return verify.OriginLine(id, n) },
		} {
			for _, tc := range cmds {
				answer := func(chain string) *client.Error {
					t.Helper()
					_, err := c.Call(e.Ctx, tc.cmd, append([]any{chain}, tc.args...)...)
					var we *client.Error
					if !errors.As(err, &we) {
						t.Fatalf("%s: %s %s: got %v, want an ERR", who, tc.cmd, chain, err)
					}
					return we
				}
				private, missing := answer(form("audit")), answer(form("nochain"))
				if private.Code != wire.CodeNotFound || private.Text == "" {
					t.Errorf("%s: %s %s: ERR %s %q, want ERR notfound with a text", who, tc.cmd, form("audit"), private.Code, private.Text)
				}
				if private.Code != missing.Code || private.Text != strings.ReplaceAll(missing.Text, "nochain", "audit") {
					t.Errorf("%s: %s tells the private chain from a missing one:\n  %s: ERR %s %q\n  %s: ERR %s %q",
						who, tc.cmd, form("audit"), private.Code, private.Text, form("nochain"), missing.Code, missing.Text)
				}
			}
		}
	}
}

func TestVcliVerifyChainOfAMissingChainSaysWhy(t *testing.T) {
	e := testenv.NewLedgerEnv(t, nil)
	_, errOut, code := e.Srv.Vcli("", nil, "verify", "chain", "nochain")
	if code != 1 || !strings.Contains(errOut, `ERR notfound: no chain "nochain"`) {
		t.Fatalf("vcli verify chain nochain: exit %d, stderr %q; want exit 1 and `ERR notfound: no chain \"nochain\"`", code, errOut)
	}
}

// rollbackEnv is a server whose chain t had 30 entries, the first 10 of
// them in a copy of ledger.db, and a vcli home whose checkpoint cache holds
// t's checkpoint of size 30; the server is stopped.
type rollbackEnv struct {
	*testenv.LedgerEnv
	db10, receipt30, home string
}

func newRollbackEnv(t *testing.T) *rollbackEnv {
	t.Helper()
	e := &rollbackEnv{LedgerEnv: testenv.NewLedgerEnv(t, []string{"t"}), home: t.TempDir()}
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 0, 10)...)
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	e.db10 = filepath.Join(t.TempDir(), "ledger.db.10")
	copyTestFile(t, filepath.Join(e.Srv.DataRoot, "ledger.db"), e.db10)
	e.Srv = testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	e.Admin = e.Srv.AdminClient()
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 10, 20)...)
	receipt, err := e.Admin.Proof(e.Ctx, "t", client.BySeq(29), 0)
	if err != nil {
		t.Fatal(err)
	}
	e.receipt30 = filepath.Join(t.TempDir(), "receipt")
	if err := os.WriteFile(e.receipt30, []byte(receipt), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := e.Srv.Vcli("", e.env(), "rec", "head", "t"); code != 0 || !strings.Contains(out, "\n30\n") {
		t.Fatalf("vcli rec head t before the rollback: exit %d\n%s%s", code, out, errOut)
	}
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *rollbackEnv) env() []string { return []string{"HOME=" + e.home} }

func copyTestFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tamperLedger(t *testing.T, dataroot string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataroot, "ledger.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestRolledBackLedgerIsRefusedByServerVerifierAndClient(t *testing.T) {
	cases := []struct {
		name string
		roll func(t *testing.T, e *rollbackEnv)
		// consistent: the rolled-back database passes its own checks, so
		// `vserv resume --accept-rollback` can make it the reference.
		consistent bool
	}{
		{"older copy of ledger.db restored", func(t *testing.T, e *rollbackEnv) {
			copyTestFile(t, e.db10, filepath.Join(e.Srv.DataRoot, "ledger.db"))
		}, true},
		{"tail deleted with bbolt", func(t *testing.T, e *rollbackEnv) {
			tamperLedger(t, e.Srv.DataRoot, func(tx *bolt.Tx) error {
				for s := uint64(10); s < 30; s++ {
					if err := testenv.LedgerBucket(tx, "t", "entries").Delete(testenv.BE64(s)); err != nil {
						return err
					}
				}
				return testenv.LedgerBucket(tx, "t", "checkpoints").Delete(testenv.BE64(30))
			})
		}, false},
	}
	vserv := testenv.Bin(t, "vserv")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRollbackEnv(t)
			tc.roll(t, e)

			for _, args := range [][]string{
				{"verify", "-q", "-r", e.Srv.DataRoot},
				{"verify", "-q", "-r", e.Srv.DataRoot, "--expect", e.receipt30},
			} {
				out, errOut, code := testenv.RunCmd(t, vserv, args...)
				if code != 1 || !strings.Contains(out, "chain t seq 30: rollback: ") || !strings.Contains(out, "already signed size 30") {
					t.Errorf("vserv %s: exit %d, want 1 and a rollback of chain t at size 30\nstdout: %s\nstderr: %s",
						strings.Join(args, " "), code, out, errOut)
				}
			}
			cache := filepath.Join(e.home, ".config", "vserv", "checkpoints", e.Admin.ServerID(), "t")
			out, errOut, code := testenv.RunCmd(t, vserv, "verify", "-q", "-r", e.Srv.DataRoot, "--expect", cache)
			if code != 1 || !strings.Contains(out, "rollback: "+cache) {
				t.Errorf("vserv verify --expect <client cache>: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}

			e.Srv = testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
			admin := e.Srv.AdminClient()
			_, err := admin.PutRecords(e.Ctx, "t", [][]byte{testenv.NewRecord(t, "after")}, false)
			var we *client.Error
			if !errors.As(err, &we) || we.Code != wire.CodeConflict ||
				!strings.Contains(we.Text, "looks like a restored or truncated database") || !strings.Contains(we.Text, "vserv resume") {
				t.Fatalf("rput after the rollback: %v; want ERR conflict saying it looks like a restored or truncated database and naming vserv resume", err)
			}

			out, errOut, code = e.Srv.Vcli("", e.env(), "rec", "head", "t")
			if code != 1 || !strings.Contains(errOut, "ROLLBACK REFUSED") ||
				!strings.Contains(errOut, "\n30\n") || strings.Count(errOut, "— vserv/") < 2 {
				t.Fatalf("vcli rec head t after the rollback: exit %d, want 1 with both signed checkpoints\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if got, _ := os.ReadFile(cache); !strings.Contains(string(got), "\n30\n") {
				t.Fatalf("the client's cache was overwritten by the shorter history:\n%s", got)
			}

			if !tc.consistent {
				if err := e.Srv.Stop(); err != nil {
					t.Fatal(err)
				}
				out, errOut, code := testenv.RunCmd(t, vserv, "resume", "-r", e.Srv.DataRoot, "--accept-rollback")
				if code != 1 || !strings.Contains(out, "chain t: heads file size 30") || !strings.Contains(out, "not re-anchored") {
					t.Fatalf("vserv resume --accept-rollback of a chain with faults of its own: exit %d, want 1 and \"not re-anchored\"\nstdout: %s\nstderr: %s", code, out, errOut)
				}
				return
			}
			acceptRollback(t, e.Srv, "chain t: heads file size 30 root ")
			srv := testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
			admin = srv.AdminClient()
			testenv.Put(t, admin, "t", false, testenv.NewRecord(t, "after the decision"))
			wantAuditAccept(t, admin, "chain t: heads file size 30")
		})
	}
}

func TestDeletedChainIsCaughtByVerifyAndCannotBeRecreated(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 0, 3)...)
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	tamperLedger(t, e.Srv.DataRoot, func(tx *bolt.Tx) error {
		for _, ch := range []string{"t", "audit"} {
			if err := testenv.DeleteChain(tx, "", ch); err != nil {
				return err
			}
		}
		return nil
	})
	out, errOut, code := testenv.RunCmd(t, testenv.Bin(t, "vserv"), "verify", "-q", "-r", e.Srv.DataRoot)
	for _, ch := range []string{"t", "audit"} {
		if code != 1 || !strings.Contains(out, "chain "+ch+" is missing from the database") {
			t.Errorf("vserv verify after deleting chain %s: exit %d\nstdout: %s\nstderr: %s", ch, code, out, errOut)
		}
	}
	srv := testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	admin := srv.AdminClient()
	for _, ch := range []string{"t", "audit"} {
		err := admin.MakeChain(e.Ctx, ch, client.ChainOptions{Public: true})
		var we *client.Error
		if !errors.As(err, &we) || we.Code != wire.CodeConflict || !strings.Contains(we.Text, "missing from the database") {
			t.Errorf("mkchain %s after it was deleted: %v, want ERR conflict naming the lost chain", ch, err)
		}
	}
	if !strings.Contains(srv.Stderr(), "chain is missing from the database") {
		t.Errorf("the server did not log the lost chains:\n%s", srv.Stderr())
	}

	acceptRollback(t, srv, "chain audit: heads file size ", "database missing")
	srv = testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	admin = srv.AdminClient()
	if err := admin.MakeChain(e.Ctx, "t", client.ChainOptions{Public: true}); err != nil {
		t.Fatalf("mkchain t after the accepted rollback: %v", err)
	}
	wantAuditAccept(t, admin, "chain t: heads file size 3")
}

// acceptRollback stops srv, checks that `vserv resume` reports the rollback
// (exit 1) and accepts it with --accept-rollback (exit 0).
func acceptRollback(t *testing.T, srv *testenv.Server, want ...string) {
	t.Helper()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	vserv := testenv.Bin(t, "vserv")
	out, errOut, code := testenv.RunCmd(t, vserv, "resume", "-r", srv.DataRoot)
	for _, w := range want {
		if code != 1 || !strings.Contains(out, w) {
			t.Errorf("vserv resume: exit %d, want 1 and %q\nstdout: %s\nstderr: %s", code, w, out, errOut)
		}
	}
	out, errOut, code = testenv.RunCmd(t, vserv, "resume", "-r", srv.DataRoot, "--accept-rollback")
	if code != 0 || !strings.Contains(out, "accepted:") {
		t.Fatalf("vserv resume --accept-rollback: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if out, errOut, code = testenv.RunCmd(t, vserv, "verify", "-q", "-r", srv.DataRoot); code != 0 {
		t.Fatalf("vserv verify after the accepted rollback: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// wantAuditAccept checks that the newest audit entry records the decision.
func wantAuditAccept(t *testing.T, admin *client.Client, want string) {
	t.Helper()
	var found bool
	for s := int64(-1); s >= -3 && !found; s-- {
		e, err := admin.AbsRecord(context.Background(), "audit", s)
		if err != nil {
			break
		}
		found = strings.Contains(string(e), "resume --accept-rollback") && strings.Contains(string(e), want)
	}
	if !found {
		t.Fatalf("audit does not record the accepted rollback (%q) among its last entries", want)
	}
}

func TestVcliRecConsProvesANewerCheckpointExtendsAnOlderReceipt(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 0, 10)...)
	receipt, err := e.Admin.Proof(e.Ctx, "t", client.BySeq(3), 0)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "receipt")
	if err := os.WriteFile(file, []byte(receipt), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "n", 10, 15)...)

	out, errOut, code := e.Srv.Vcli("", nil, "rec", "cons", "t", "--old", file)
	if code != 0 || !strings.Contains(out, "consistent: size 25 extends size 10") || !strings.Contains(out, "\n25\n") {
		t.Fatalf("vcli rec cons t --old receipt: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	hashes, _, err := e.Admin.Consistency(e.Ctx, "t", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = e.Srv.Vcli("", nil, "rec", "cons", "t", "10")
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < len(hashes) || lines[0] != base64.StdEncoding.EncodeToString(hashes[0]) {
		t.Fatalf("vcli rec cons t 10: exit %d, want the %d proof hashes first\nstdout: %s\nstderr: %s", code, len(hashes), out, errOut)
	}
	if _, errOut, code = e.Srv.Vcli("", nil, "rec", "cons", "t"); code != 2 || !strings.Contains(errOut, "OLD-SIZE or --old") {
		t.Fatalf("vcli rec cons t: exit %d, want 2 (usage)\nstderr: %s", code, errOut)
	}
	if _, errOut, code = e.Srv.Vcli("", nil, "rec", "cons", "t", "26"); code != 1 || !strings.Contains(errOut, "ERR invalid: old size 26 is beyond the tree size 25") {
		t.Fatalf("vcli rec cons t 26: exit %d, want 1 with ERR invalid\nstderr: %s", code, errOut)
	}
}

// A forked history of the same size (an older ledger.db restored, the heads
// file moved away, other records written) is refused by a client that
// cached the original checkpoint of that size.
func TestClientRefusesAForkOfTheSameSize(t *testing.T) {
	e := newRollbackEnv(t)
	copyTestFile(t, e.db10, filepath.Join(e.Srv.DataRoot, "ledger.db"))
	if err := os.Rename(filepath.Join(e.Srv.DataRoot, "heads"), filepath.Join(t.TempDir(), "heads")); err != nil {
		t.Fatal(err)
	}
	srv := testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	admin := srv.AdminClient()
	testenv.Put(t, admin, "t", false, testenv.Numbered(t, "fork", 10, 20)...)
	out, errOut, code := srv.Vcli("", e.env(), "rec", "head", "t")
	if code != 1 || !strings.Contains(errOut, "ROLLBACK REFUSED") || !strings.Contains(errOut, "both have size 30 but different roots") {
		t.Fatalf("vcli rec head t of a forked size 30: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	testenv.Put(t, admin, "t", false, testenv.Numbered(t, "fork", 30, 5)...)
	out, errOut, code = srv.Vcli("", e.env(), "verify", "chain", "t")
	if code != 1 || !strings.Contains(errOut, "ROLLBACK REFUSED") || !strings.Contains(errOut, "is not an extension of size 30") {
		t.Fatalf("vcli verify chain t of a fork grown to 35: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestEveryLedgerErrorCarriesAText: each ERR a ledger command answers names
// its reason; an empty text after the code is useless to the person reading.
func TestEveryLedgerErrorCarriesAText(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	testenv.Put(t, e.Admin, "t", false, testenv.NewRecord(t, "x"))
	anon := e.Srv.Dial()
	cases := []struct {
		c    *client.Client
		cmd  string
		args []any
		code wire.Code
	}{
		{e.Admin, "rput", []any{"t", wire.RawMessage([]byte{0xa0})}, wire.CodeInvalid},
		{e.Admin, "rput", []any{"t", []wire.RawMessage{}}, wire.CodeInvalid},
		{e.Admin, "rput", []any{"t", "not a record"}, wire.CodeProto},
		{e.Admin, "rput", []any{"audit", wire.RawMessage(testenv.NewRecord(t, "x"))}, wire.CodePerm},
		{anon, "rput", []any{"t", wire.RawMessage(testenv.NewRecord(t, "x"))}, wire.CodeState},
		{e.Admin, "rget", []any{"t", testenv.NewID()}, wire.CodeNotFound},
		{e.Admin, "rabs", []any{"t", 5}, wire.CodeNotFound},
		{e.Admin, "rproof", []any{"t", 0, 0}, wire.CodeInvalid},
		{e.Admin, "rproof", []any{"t", 0, 7}, wire.CodeNotFound},
		{e.Admin, "rproof", []any{"t", true}, wire.CodeProto},
		{e.Admin, "rcons", []any{"t", 9}, wire.CodeInvalid},
		{e.Admin, "rcons", []any{"t", 0, 7}, wire.CodeNotFound},
		{e.Admin, "rlist", []any{"t", 0, 1, 0}, wire.CodeLimit},
		{e.Admin, "rhead", []any{"nochain"}, wire.CodeNotFound},
		{e.Admin, "rhead", []any{"Bad Name"}, wire.CodeInvalid},
		{e.Admin, "rhead", []any{"vserv/zz/t"}, wire.CodeInvalid},
		{e.Admin, "rcheck", []any{"t", "nonsense"}, wire.CodeInvalid},
		{e.Admin, "mkchain", []any{"t", map[string]any{}}, wire.CodeExists},
		{e.Admin, "mkchain", []any{"u", map[string]any{"pow_bits": 33}}, wire.CodeInvalid},
		{e.Admin, "grant", []any{"nobody", "t", "read"}, wire.CodeNotFound},
		{e.Admin, "grant", []any{testenv.AdminName, "audit", "write"}, wire.CodeInvalid},
	}
	for _, tc := range cases {
		_, err := tc.c.Call(e.Ctx, tc.cmd, tc.args...)
		var we *client.Error
		if !errors.As(err, &we) || we.Code != tc.code || strings.TrimSpace(we.Text) == "" {
			t.Errorf("%s %v: got %v, want ERR %s with a text", tc.cmd, tc.args, err, tc.code)
		}
	}
}

// TestWriterWithoutReadRightSavesReceiptsAndCacheStillCatchesRollback: a
// writer that may not read a private chain cannot fetch the consistency
// proof (rcons) its checkpoint cache asks for. Its writes were committed, so
// vcli reports them as such, says what it could not check, and keeps the
// cached checkpoint; a reader using that cache later still catches a
// rollback to before it.
func TestWriterWithoutReadRightSavesReceiptsAndCacheStillCatchesRollback(t *testing.T) {
	e := testenv.NewLedgerEnv(t, nil)
	if err := e.Admin.MakeChain(e.Ctx, "priv", client.ChainOptions{}); err != nil {
		t.Fatalf("mkchain priv: %v", err)
	}
	e.Srv.AddUser("bob", "bob-password-1", false)
	if err := e.Admin.Grant(e.Ctx, "bob", "priv", "write"); err != nil {
		t.Fatalf("grant write: %v", err)
	}
	testenv.Put(t, e.Admin, "priv", false, testenv.NewRecord(t, "first"))
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	db1 := filepath.Join(t.TempDir(), "ledger.db.1")
	copyTestFile(t, filepath.Join(e.Srv.DataRoot, "ledger.db"), db1)
	e.Srv = testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))

	home := t.TempDir()
	bob := []string{"HOME=" + home, "VSERV_PASSWORD=bob-password-1"}
	cache := filepath.Join(home, ".config", "vserv", "checkpoints", e.Admin.ServerID(), "priv")
	for i := range 2 {
		receipt := filepath.Join(t.TempDir(), "receipt")
		out, errOut, code := e.Srv.Vcli("", bob, "-u", "bob", "rec", "put", "priv", "--payload", fmt.Sprintf(`{"n": %d}`, i), "--receipt-out", receipt)
		if code != 0 {
			t.Fatalf("bob's rec put %d --receipt-out: exit %d, want 0 (the record was committed)\nstdout: %s\nstderr: %s", i+1, code, out, errOut)
		}
		const notice = "was not checked: this account may not read the chain"
		if i == 1 && !strings.Contains(errOut, "consistency of priv's checkpoint 3 with the one verified before (2) "+notice) {
			t.Errorf("bob's second rec put: stderr %q, want it to say that consistency with checkpoint 2 %s", errOut, notice)
		}
		if i == 0 && strings.Contains(errOut, notice) {
			t.Errorf("bob's first rec put (empty cache): stderr %q, want no consistency notice", errOut)
		}
		b, err := os.ReadFile(receipt)
		if err != nil {
			t.Fatalf("receipt %d: %v", i+1, err)
		}
		v, err := verify.VerifyReceipt(b, e.ReceiptOptions())
		if err != nil {
			t.Fatalf("receipt %d does not verify: %v", i+1, err)
		}
		if v.Checkpoint.Size != uint64(i+2) {
			t.Fatalf("receipt %d is against size %d, want %d", i+1, v.Checkpoint.Size, i+2)
		}
		if out, errOut, code := e.Srv.Vcli("", bob, "verify", "receipt", receipt); code != 0 {
			t.Fatalf("vcli verify receipt %d: exit %d\nstdout: %s\nstderr: %s", i+1, code, out, errOut)
		}
	}
	// The cache keeps the checkpoint it had proven (size 2, bob's first
	// write), not size 3, which was never proven to extend it.
	if got, _ := os.ReadFile(cache); !bytes.Contains(got, []byte("\n2\n")) {
		t.Fatalf("bob's checkpoint cache holds\n%s\nwant the checkpoint of size 2", got)
	}

	// The server is rolled back to before bob's writes; a reader with bob's
	// cache catches it, as any reader does.
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	copyTestFile(t, db1, filepath.Join(e.Srv.DataRoot, "ledger.db"))
	e.Srv = testenv.Start(t, testenv.WithDataRoot(e.Srv.DataRoot))
	asAdmin := []string{"HOME=" + home, "VSERV_PASSWORD=" + testenv.AdminPass}
	out, errOut, code := e.Srv.Vcli("", asAdmin, "-u", testenv.AdminName, "rec", "head", "priv")
	if code != 1 || !strings.Contains(errOut, "ROLLBACK REFUSED") || !strings.Contains(errOut, "shorter than the 2 verified before") {
		t.Fatalf("vcli rec head priv after the rollback, with bob's cache: exit %d, want 1 and ROLLBACK REFUSED against size 2\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
