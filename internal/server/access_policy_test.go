package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// The access policy of docs/protocol.md §9 ("Visibility", "Access policy"),
// pinned through the real binary: every kind of principal against a public,
// a private and the two server-written chains (keys public, audit private),
// with the exact code of a read command (rget, rhead, view, rcons) and of
// rput. "" is success; view answers ERR invalid where access passed, since
// none of these chains has a schema.
func TestLedgerAccessAnswersEachPrincipalEachChainExactly(t *testing.T) {
	const (
		ok       = wire.Code("")
		notfound = wire.CodeNotFound
		perm     = wire.CodePerm
		state    = wire.CodeState
		authErr  = wire.CodeAuth
	)
	e := testenv.NewLedgerEnv(t, []string{"pub"})
	ctx := e.Ctx
	if err := e.Admin.MakeChain(ctx, "priv", client.ChainOptions{}); err != nil {
		t.Fatalf("mkchain priv: %v", err)
	}
	chains := []string{"pub", "priv", "keys", "audit"}
	type outcome struct{ read, rput wire.Code }
	type principal struct {
		name   string
		rights map[string][]string // grants made before the test
		dial   func(t *testing.T) *client.Client
		want   map[string]outcome // by chain
	}
	user := func(name string) func(t *testing.T) *client.Client {
		return func(t *testing.T) *client.Client { return e.Srv.Login(name, name+"-password-1") }
	}
	for _, name := range []string{"nora", "rita", "walt", "mona", "dora"} {
		if _, err := e.Admin.AddUser(ctx, name, name+"-password-1", false); err != nil {
			t.Fatalf("uadd %s: %v", name, err)
		}
	}
	if _, err := e.Admin.AddUser(ctx, "ursa", "ursa-password-1", false); err != nil {
		t.Fatalf("uadd ursa: %v", err)
	}
	// ursa has every right on priv and a second factor, and logs in with
	// the password only: state user is anonymous for the ledger.
	ursa := user("ursa")(t)
	en, err := ursa.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	totp := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, "ursa", ursa.ServerID())}
	if err := ursa.TwoFA(ctx, totp.Next()); err != nil {
		t.Fatalf("twofa: %v", err)
	}
	ursa.Close()
	all := []string{"read", "write", "manage", "replicate"}
	principals := []principal{
		{name: "anonymous", dial: func(*testing.T) *client.Client { return e.Srv.Dial() },
			want: map[string]outcome{"pub": {ok, state}, "priv": {notfound, notfound}, "keys": {ok, state}, "audit": {notfound, notfound}}},
		{name: "user-state", rights: map[string][]string{"ursa": all},
			dial: func(t *testing.T) *client.Client {
				c, owed := testenv.LoginPassword(t, e.Srv, "ursa", "ursa-password-1")
				if !owed {
					t.Fatal("ursa logged in without owing a factor")
				}
				return c
			},
			want: map[string]outcome{"pub": {ok, state}, "priv": {notfound, notfound}, "keys": {ok, state}, "audit": {notfound, notfound}}},
		{name: "verified-no-rights", dial: user("nora"),
			want: map[string]outcome{"pub": {ok, perm}, "priv": {notfound, notfound}, "keys": {ok, perm}, "audit": {notfound, notfound}}},
		{name: "read", rights: map[string][]string{"rita": {"read"}}, dial: user("rita"),
			want: map[string]outcome{"pub": {ok, perm}, "priv": {ok, perm}, "keys": {ok, perm}, "audit": {ok, perm}}},
		{name: "write-only", rights: map[string][]string{"walt": {"write"}}, dial: user("walt"),
			want: map[string]outcome{"pub": {ok, ok}, "priv": {perm, ok}, "keys": {ok, perm}, "audit": {notfound, notfound}}},
		{name: "manage-only", rights: map[string][]string{"mona": {"manage"}}, dial: user("mona"),
			want: map[string]outcome{"pub": {ok, perm}, "priv": {perm, perm}, "keys": {ok, perm}, "audit": {perm, perm}}},
		{name: "admin", dial: func(*testing.T) *client.Client { return e.Srv.AdminClient() },
			want: map[string]outcome{"pub": {ok, ok}, "priv": {ok, ok}, "keys": {ok, perm}, "audit": {ok, perm}}},
	}
	for _, p := range principals {
		for name, rights := range p.rights {
			for _, ch := range chains {
				for _, r := range rights {
					if r == "write" && (ch == "keys" || ch == "audit") {
						continue // not grantable
					}
					if err := e.Admin.Grant(ctx, name, ch, r); err != nil {
						t.Fatalf("grant %s %s %s: %v", name, ch, r, err)
					}
				}
			}
		}
	}
	// dora is logged in on one connection per call, then disabled.
	dora := map[string]*client.Client{}
	type call struct {
		cmd  string
		args func(chain string) []any
		rput bool
	}
	calls := []call{
		{cmd: "rget", args: func(ch string) []any { return []any{ch, []string{testenv.NewID()}} }},
		{cmd: "rhead", args: func(ch string) []any { return []any{ch} }},
		{cmd: "view", args: func(ch string) []any { return []any{ch, "totals"} }},
		{cmd: "rcons", args: func(ch string) []any { return []any{ch, uint64(0)} }},
		{cmd: "rput", rput: true, args: func(ch string) []any {
			return []any{ch, wire.RawMessage(testenv.NewRecord(t, map[string]any{"n": 1}))}
		}},
	}
	for _, ch := range chains {
		for _, cl := range calls {
			dora[ch+" "+cl.cmd] = user("dora")(t)
		}
	}
	if err := e.Admin.EnableUser(ctx, "dora", false); err != nil {
		t.Fatalf("udis dora: %v", err)
	}
	want := func(o outcome, cl call) wire.Code {
		switch {
		case cl.rput:
			return o.rput
		case cl.cmd == "view" && o.read == ok:
			return wire.CodeInvalid // access passed; no schema
		}
		return o.read
	}
	for _, p := range principals {
		t.Run(p.name, func(t *testing.T) {
			c := p.dial(t)
			defer c.Close()
			for _, ch := range chains {
				for _, cl := range calls {
					_, err := c.Call(ctx, cl.cmd, cl.args(ch)...)
					testenv.WantCode(t, err, want(p.want[ch], cl), p.name+": "+cl.cmd+" "+ch)
				}
			}
		})
	}
	// A disable ends dora's sessions: this server closes her connections
	// at once, and a command that still arrives (another front end's
	// disable) is ERR auth. Either way, no ledger command runs for her.
	t.Run("disabled-after-login", func(t *testing.T) {
		for _, ch := range chains {
			for _, cl := range calls {
				c := dora[ch+" "+cl.cmd]
				_, err := c.Call(context.Background(), cl.cmd, cl.args(ch)...)
				var we *wire.Error
				if errors.As(err, &we) {
					testenv.WantCode(t, err, authErr, "disabled: "+cl.cmd+" "+ch)
				} else if err == nil {
					t.Errorf("disabled: %s %s succeeded", cl.cmd, ch)
				}
				c.Close()
			}
		}
	})
}
