package auth

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// countingStore is the real store, counting its read transactions.
type countingStore struct {
	store.Store
	views atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(store.ReadTx) error) error {
	c.views.Add(1)
	return c.Store.View(ctx, fn)
}

// Access answers the rule of docs/protocol.md §9 for every principal, chain
// and need, in one read transaction (none below verified, nor to read a
// public chain).
func TestAccessAnswersThePolicyInOneTransaction(t *testing.T) {
	env := newTestEnv(t, false)
	cs := &countingStore{Store: env.st}
	s, err := New(cs, Options{Argon: TestArgon2, SecretKey: testKey, ServerID: "srv1", Now: env.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, a := range []struct {
		name string
		role Role
	}{{"nora", RoleUser}, {"rita", RoleUser}, {"walt", RoleUser}, {"mona", RoleUser}, {"dora", RoleUser}, {"boss", RoleAdmin}, {"gone", RoleAdmin}} {
		env.mustAdd(t, a.name, a.name+" password", a.role)
	}
	grants := map[string][]Right{"rita": {RightRead}, "walt": {RightWrite}, "mona": {RightManage, RightReplicate}, "dora": {RightRead, RightWrite}}
	for name, rights := range grants {
		for _, ch := range []string{"pub", "priv", "audit", "mirror"} {
			for _, r := range rights {
				if err := s.Grant(ctx, name, ch, r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := s.SetEnabled(ctx, "dora", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	const (
		ok       = wire.Code("")
		notfound = wire.CodeNotFound
		perm     = wire.CodePerm
		state    = wire.CodeState
	)
	chains := map[string]ChainFacts{
		"pub":    {Arg: "vserv/srv1/pub", Name: "pub", Public: true},
		"priv":   {Arg: "priv", Name: "priv"},
		"audit":  {Arg: "audit", Name: "audit", ServerWritten: true},
		"mirror": {Arg: "mirror", Name: "mirror", Mirror: true},
	}
	verified := func(name string) Principal { return Principal{Account: name, Verified: true, State: "verified"} }
	cases := []struct {
		who   string
		p     Principal
		chain string
		need  Right
		want  wire.Code
		views int64
		held  []Right // the rights the Grant reports on success
		admin bool
	}{
		{"anonymous", Principal{State: "session"}, "pub", RightRead, ok, 0, nil, false},
		{"anonymous", Principal{State: "session"}, "pub", RightWrite, state, 0, nil, false},
		{"anonymous", Principal{State: "session"}, "priv", RightRead, notfound, 0, nil, false},
		{"anonymous", Principal{State: "session"}, "priv", RightWrite, notfound, 0, nil, false},
		{"user state, rights held", Principal{Account: "walt", State: "user"}, "priv", RightWrite, notfound, 0, nil, false},
		{"user state, rights held", Principal{Account: "walt", State: "user"}, "pub", RightWrite, state, 0, nil, false},
		{"no rights", verified("nora"), "pub", RightRead, ok, 0, nil, false},
		{"no rights", verified("nora"), "pub", RightWrite, perm, 1, nil, false},
		{"no rights", verified("nora"), "priv", RightRead, notfound, 1, nil, false},
		{"no rights", verified("nora"), "audit", RightWrite, notfound, 1, nil, false},
		{"read", verified("rita"), "priv", RightRead, ok, 1, []Right{RightRead}, false},
		{"read", verified("rita"), "priv", RightWrite, perm, 1, nil, false},
		{"read", verified("rita"), "audit", RightRead, ok, 1, []Right{RightRead}, false},
		{"write only", verified("walt"), "priv", RightRead, perm, 1, nil, false},
		{"write only", verified("walt"), "priv", RightWrite, ok, 1, []Right{RightWrite}, false},
		{"write only", verified("walt"), "pub", RightRead, ok, 0, nil, false},
		{"write only", verified("walt"), "audit", RightWrite, perm, 1, nil, false},
		{"write only", verified("walt"), "mirror", RightWrite, perm, 1, nil, false},
		{"read only", verified("rita"), "mirror", RightWrite, perm, 1, nil, false},
		{"manage", verified("mona"), "priv", RightManage, ok, 1, []Right{RightManage, RightReplicate}, false},
		{"manage", verified("mona"), "priv", RightReplicate, ok, 1, []Right{RightManage, RightReplicate}, false},
		{"manage", verified("mona"), "priv", RightWrite, perm, 1, nil, false},
		{"manage", verified("mona"), "priv", RightRead, perm, 1, nil, false},
		{"admin", verified("boss"), "priv", RightWrite, ok, 1, nil, true},
		{"admin", verified("boss"), "priv", RightManage, ok, 1, nil, true},
		{"admin", verified("boss"), "audit", RightRead, ok, 1, nil, true},
		{"admin", verified("boss"), "pub", RightRead, ok, 0, nil, false}, // public: nothing read
		{"admin", verified("boss"), "audit", RightWrite, perm, 1, nil, false},
		{"admin", verified("boss"), "mirror", RightWrite, perm, 1, nil, false},
		{"admin", verified("boss"), "mirror", RightRead, ok, 1, nil, true},
		{"disabled", verified("dora"), "priv", RightRead, notfound, 1, nil, false},
		{"disabled", verified("dora"), "pub", RightRead, ok, 0, nil, false},
		{"disabled", verified("dora"), "pub", RightWrite, perm, 1, nil, false},
		{"deleted", verified("gone"), "priv", RightRead, notfound, 1, nil, false},
	}
	for _, c := range cases {
		what := c.who + " " + string(c.need) + " " + c.chain
		before := cs.views.Load()
		g, err := s.Access(ctx, c.p, chains[c.chain], c.need)
		if n := cs.views.Load() - before; n != c.views {
			t.Errorf("%s: %d read transactions, want %d", what, n, c.views)
		}
		we := testenv.WantCode(t, err, c.want, what)
		switch {
		case we != nil && we.Text == "":
			t.Errorf("%s: ERR %s without a text", what, we.Code)
		case c.want == notfound && we.Text != `no chain "`+chains[c.chain].Arg+`"`:
			t.Errorf("%s: text %q, want the ledger's own for a missing chain", what, we.Text)
		case c.want == ok && (g.Admin != c.admin || !slices.Equal(g.Held, c.held) || !g.Has(c.need)):
			t.Errorf("%s: grant %+v, want admin %v, held %v, holding %s", what, g, c.admin, c.held, c.need)
		case c.chain == "mirror" && c.need == RightWrite && !strings.Contains(we.Text, "written only at its home"):
			// Whoever may see it, and whatever they hold, is told why.
			t.Errorf("%s: text %q, want it to say the mirror is written only at its home", what, we.Text)
		}
	}
	if _, err := s.Access(ctx, verified("boss"), chains["priv"], "delete"); err == nil {
		t.Error("Access with an unknown right succeeded")
	}
}
