package auth

import (
	"context"
	"crypto/ed25519"
	"slices"
	"sync"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestCreateInitialOnlyWhileEmpty(t *testing.T) {
	env := newTestEnv(t, false)
	a, err := env.store.CreateInitial(t.Context(), "Root", "root password")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "Root" || a.Role != RoleAdmin || !a.Initial || !a.Enabled || a.Has2FA || a.Peer || !a.Created.Equal(env.clock.Now()) {
		t.Fatalf("CreateInitial = %+v", a)
	}
	_, err = env.store.CreateInitial(t.Context(), "other", "other password")
	testenv.WantCode(t, err, wire.CodeState, "second CreateInitial")
	if n, err := env.store.Count(t.Context()); n != 1 || err != nil {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
}

func TestCreateInitialConcurrentOnlyOneWins(t *testing.T) {
	env := newTestEnv(t, false)
	var wg sync.WaitGroup
	results := make([]error, 6)
	for i := range results {
		wg.Go(func() {
			_, results[i] = env.store.CreateInitial(t.Context(), "admin"+string(rune('a'+i)), "admin password")
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
		} else {
			testenv.WantCode(t, err, wire.CodeState, "losing CreateInitial")
		}
	}
	if n, _ := env.store.Count(t.Context()); ok != 1 || n != 1 {
		t.Fatalf("%d CreateInitial calls succeeded and %d accounts exist; want 1 and 1", ok, n)
	}
}

func TestCreateInitialAfterAddIsState(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	_, err := env.store.CreateInitial(t.Context(), "root", "root password")
	testenv.WantCode(t, err, wire.CodeState, "CreateInitial with an account present")
}

func TestAddRules(t *testing.T) {
	env := newTestEnv(t, true) // production: password rules enforced
	env.mustAdd(t, "Alice", "alice long password", RoleUser)
	tests := []struct {
		name, pass string
		role       Role
		want       wire.Code
	}{
		{"alice", "another long password", RoleUser, wire.CodeExists},
		{"ALICE", "another long password", RoleAdmin, wire.CodeExists},
		{"bob", "another long password", "root", wire.CodeInvalid},
		{"bob", "", RoleUser, wire.CodeInvalid},
		{"bob", "password", RoleUser, wire.CodeInvalid},
		{".bob", "another long password", RoleUser, wire.CodeInvalid},
		{"bob", "another long password", RoleUser, ""},
	}
	for _, tt := range tests {
		_, err := env.store.Add(t.Context(), tt.name, tt.pass, tt.role)
		testenv.WantCode(t, err, tt.want, "Add("+tt.name+")")
	}
	a, err := env.store.Get(t.Context(), "aLiCe")
	if err != nil || a.Name != "Alice" {
		t.Fatalf("Get(aLiCe) = %+v, %v; want the account Alice", a, err)
	}
}

func TestDeveloperModeAcceptsWeakPassword(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "1234", RoleUser)
	if _, err := env.store.CheckPassword(context.Background(), "alice", "1234"); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteGuards(t *testing.T) {
	env := newTestEnv(t, false)
	if _, err := env.store.CreateInitial(t.Context(), "root", "root password"); err != nil {
		t.Fatal(err)
	}
	env.mustAdd(t, "admin2", "admin2 password", RoleAdmin)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	steps := []struct {
		name string
		want wire.Code
	}{
		{"ROOT", wire.CodePerm}, // the initial admin
		{"admin2", ""},          // another admin remains
		{"admin2", wire.CodeNotFound},
		{"alice", ""},
		{"nobody", wire.CodeNotFound},
		{"bad/name", wire.CodeInvalid},
	}
	for _, st := range steps {
		testenv.WantCode(t, env.store.Delete(t.Context(), st.name), st.want, "Delete("+st.name+")")
	}
	if n, _ := env.store.Count(t.Context()); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
}

// The last-admin rule holds on its own: an initial admin that is no longer
// an admin is impossible, so it is exercised with an account store where the
// only admin is not the initial one.
func TestDeleteLastAdmin(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "boss", "boss password", RoleAdmin)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	testenv.WantCode(t, env.store.Delete(t.Context(), "boss"), wire.CodePerm, "Delete(last admin)")
	env.mustAdd(t, "boss2", "boss2 password", RoleAdmin)
	testenv.WantCode(t, env.store.Delete(t.Context(), "boss"), "", "Delete(admin with another left)")
}

// A disabled admin does not count: deleting the last enabled admin would
// leave nobody able to enable the others again.
func TestDeleteLastEnabledAdminWithDisabledAdminsLeft(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "boss", "boss password", RoleAdmin)
	env.mustAdd(t, "sleeper", "sleeper password", RoleAdmin)
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "sleeper", false), "", "disable sleeper")
	testenv.WantCode(t, env.store.Delete(t.Context(), "boss"), wire.CodePerm, "Delete(last enabled admin)")
	testenv.WantCode(t, env.store.Delete(t.Context(), "sleeper"), "", "Delete(a disabled admin while an enabled one stays)")
}

func TestSetEnabledLastEnabledAdmin(t *testing.T) {
	env := newTestEnv(t, false)
	if _, err := env.store.CreateInitial(t.Context(), "root", "root password"); err != nil {
		t.Fatal(err)
	}
	env.mustAdd(t, "admin2", "admin2 password", RoleAdmin)
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "admin2", false), "", "disable admin2")
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "root", false), wire.CodePerm, "disable root, the last enabled admin")
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "admin2", true), "", "enable admin2")
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "root", false), "", "disable root with admin2 enabled")
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "ADMIN2", false), wire.CodePerm, "disable admin2 now last")
	testenv.WantCode(t, env.store.SetEnabled(t.Context(), "nobody", false), wire.CodeNotFound, "unknown")
}

// pyvserv told unknown users from wrong passwords; every failure must be the
// same error.
func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	env.mustAdd(t, "admin", "admin password", RoleAdmin)
	env.mustAdd(t, "dora", "dora password", RoleUser)
	if err := env.store.SetEnabled(t.Context(), "dora", false); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ what, name, pass string }{
		{"wrong password", "alice", "alice passworD"},
		{"unknown name", "mallory", "alice password"},
		{"disabled account, right password", "dora", "dora password"},
		{"malformed name", "../etc", "x"},
		{"empty password", "alice", ""},
		{"empty name", "", "alice password"},
	}
	var texts []string
	for _, c := range cases {
		_, err := env.store.CheckPassword(context.Background(), c.name, c.pass)
		wantAuthFailed(t, c.what, err)
		texts = append(texts, err.Error())
	}
	if len(slices.Compact(slices.Clone(texts))) != 1 {
		t.Fatalf("login failure texts differ: %q", texts)
	}
	a, err := env.store.CheckPassword(context.Background(), "ALICE", "alice password")
	if err != nil || a.Name != "alice" || a.Role != RoleUser {
		t.Fatalf("CheckPassword(ALICE) = %+v, %v", a, err)
	}
}

func TestListFilters(t *testing.T) {
	env := newTestEnv(t, false)
	if _, err := env.store.CreateInitial(t.Context(), "root", "root password"); err != nil {
		t.Fatal(err)
	}
	env.mustAdd(t, "Carol", "carol password", RoleUser)
	env.mustAdd(t, "bob", "bob password", RoleAdmin)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	if err := env.store.SetEnabled(t.Context(), "carol", false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"alice", "bob", "Carol", "root"}},
		{"all", []string{"alice", "bob", "Carol", "root"}},
		{"user", []string{"alice", "Carol"}},
		{"admin", []string{"bob", "root"}},
		{"disabled", []string{"Carol"}},
	}
	for _, tt := range tests {
		list, err := env.store.List(t.Context(), tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range list {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.filter, names, tt.want)
		}
	}
	_, err := env.store.List(t.Context(), "peers")
	testenv.WantCode(t, err, wire.CodeInvalid, "List(peers)")
}

// The generation changes on every event that must end sessions, and never
// comes back for a re-created name.
func TestGenerationChanges(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "admin", "admin password", RoleAdmin)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	seen := map[uint64]string{}
	check := func(event string, wantChange bool) {
		t.Helper()
		gen, err := env.store.Generation(t.Context(), "alice")
		if err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		prev, dup := seen[gen]
		if wantChange && dup {
			t.Fatalf("%s: generation %d unchanged since %s", event, gen, prev)
		}
		if !wantChange && !dup {
			t.Fatalf("%s: generation changed to %d", event, gen)
		}
		seen[gen] = event
	}
	check("add", true)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(env.store.Grant(t.Context(), "alice", "votes", RightRead))
	check("grant", false)
	must2 := func(_ uint64, err error) { t.Helper(); must(err) }
	must2(env.store.SetPassword(t.Context(), "alice", "new password"))
	check("password change", true)
	must(env.store.SetEnabled(t.Context(), "alice", false))
	check("disable", true)
	must(env.store.SetEnabled(t.Context(), "alice", true))
	check("enable", false)
	must2(env.store.Reset2FA(t.Context(), "alice"))
	check("2fa reset", true)
	must(env.store.Delete(t.Context(), "alice"))
	_, err := env.store.Generation(t.Context(), "alice")
	testenv.WantCode(t, err, wire.CodeNotFound, "Generation after delete")
	env.mustAdd(t, "Alice", "alice password", RoleUser)
	check("re-created", true)
	a, err := env.store.CheckPassword(context.Background(), "alice", "alice password")
	if g, _ := env.store.Generation(t.Context(), "alice"); err != nil || a.Generation != g {
		t.Fatalf("CheckPassword generation = %v (%v), want %d", a, err, g)
	}
}

func TestSetPassword(t *testing.T) {
	env := newTestEnv(t, true)
	env.mustAdd(t, "alice", "alice long password", RoleUser)
	setPassword := func(name, pass string) error {
		_, err := env.store.SetPassword(t.Context(), name, pass)
		return err
	}
	testenv.WantCode(t, setPassword("alice", "1234"), wire.CodeInvalid, "weak in production")
	testenv.WantCode(t, setPassword("bob", "bob long password"), wire.CodeNotFound, "unknown")
	testenv.WantCode(t, setPassword("alice", "alice new password"), "", "change")
	_, err := env.store.CheckPassword(context.Background(), "alice", "alice long password")
	wantAuthFailed(t, "old password", err)
	if _, err := env.store.CheckPassword(context.Background(), "alice", "alice new password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestPeerKey(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "mirror1", "mirror password", RoleUser)
	env.mustAdd(t, "boss", "boss password", RoleAdmin)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.store.PeerKey(t.Context(), "mirror1")
	testenv.WantCode(t, err, wire.CodeNotFound, "PeerKey before set")
	testenv.WantCode(t, env.store.SetPeerKey(t.Context(), "mirror1", pub[:31]), wire.CodeInvalid, "short key")
	testenv.WantCode(t, env.store.SetPeerKey(t.Context(), "boss", pub), wire.CodeInvalid, "admin peer")
	testenv.WantCode(t, env.store.SetPeerKey(t.Context(), "mirror1", pub), "", "set")
	got, err := env.store.PeerKey(t.Context(), "MIRROR1")
	if err != nil || !got.Equal(pub) {
		t.Fatalf("PeerKey = %x, %v; want %x", got, err, pub)
	}
	a, _ := env.store.Get(t.Context(), "mirror1")
	if !a.Peer {
		t.Fatal("Account.Peer is false after SetPeerKey")
	}
	_, err = env.store.BeginEnroll(t.Context(), "mirror1")
	testenv.WantCode(t, err, wire.CodePerm, "BeginEnroll for a peer")
	testenv.WantCode(t, env.store.SetPeerKey(t.Context(), "mirror1", nil), "", "clear")
	_, err = env.store.PeerKey(t.Context(), "mirror1")
	testenv.WantCode(t, err, wire.CodeNotFound, "PeerKey after clear")
}

// A session that changes its own account adopts exactly the generation its
// change wrote: reading it afterwards could adopt a later change made
// elsewhere (a disable on another front end) and so survive it.
func TestSetPasswordAndReset2FAReturnTheGenerationTheyWrote(t *testing.T) {
	env := newTestEnv(t, false)
	before := env.mustAdd(t, "alice", "alice password", RoleUser).Generation
	for _, tc := range []struct {
		what   string
		change func() (uint64, error)
	}{
		{"SetPassword", func() (uint64, error) { return env.store.SetPassword(t.Context(), "alice", "alice password 2") }},
		{"Reset2FA", func() (uint64, error) { return env.store.Reset2FA(t.Context(), "alice") }},
	} {
		gen, err := tc.change()
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		now, err := env.store.Generation(t.Context(), "alice")
		if err != nil || gen != now || gen <= before {
			t.Fatalf("%s returned generation %d; Generation = %d (%v), before %d: want the new one", tc.what, gen, now, err, before)
		}
		before = gen
		if err := env.store.SetEnabled(t.Context(), "alice", false); err != nil {
			t.Fatal(err)
		}
		if later, _ := env.store.Generation(t.Context(), "alice"); later == gen {
			t.Fatalf("after %s, a disable left generation %d", tc.what, gen)
		}
		if err := env.store.SetEnabled(t.Context(), "alice", true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.store.SetPassword(t.Context(), "nobody", "some password"); wire.CodeOf(err) != wire.CodeNotFound {
		t.Fatalf("SetPassword of an unknown account: %v, want ERR notfound", err)
	}
}
