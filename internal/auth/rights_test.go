package auth

import (
	"maps"
	"slices"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestGrantRevokeHasRight(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	env.mustAdd(t, "boss", "boss password", RoleAdmin)
	s := env.store
	steps := []struct {
		what string
		err  error
		want wire.Code
	}{
		{"grant write", s.Grant(t.Context(), "alice", "votes", RightWrite), ""},
		{"grant read", s.Grant(t.Context(), "ALICE", "votes", RightRead), ""},
		{"grant read again", s.Grant(t.Context(), "alice", "votes", RightRead), ""},
		{"grant replicate other chain", s.Grant(t.Context(), "alice", "zakat-2030", RightReplicate), ""},
		{"bad right", s.Grant(t.Context(), "alice", "votes", "delete"), wire.CodeInvalid},
		{"bad chain", s.Grant(t.Context(), "alice", "Votes", RightRead), wire.CodeInvalid},
		{"bad chain dash", s.Grant(t.Context(), "alice", "-votes", RightRead), wire.CodeInvalid},
		{"empty chain", s.Grant(t.Context(), "alice", "", RightRead), wire.CodeInvalid},
		{"unknown account", s.Grant(t.Context(), "bob", "votes", RightRead), wire.CodeNotFound},
		{"revoke write", s.Revoke(t.Context(), "alice", "votes", RightWrite), ""},
		{"revoke not held", s.Revoke(t.Context(), "alice", "votes", RightWrite), ""},
	}
	for _, st := range steps {
		testenv.WantCode(t, st.err, st.want, st.what)
	}
	got, err := s.Rights(t.Context(), "alice")
	want := map[string][]Right{"votes": {RightRead}, "zakat-2030": {RightReplicate}}
	if err != nil || !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("Rights = %v, %v; want %v", got, err, want)
	}
	checks := []struct {
		name, chain string
		right       Right
		want        bool
	}{
		{"alice", "votes", RightRead, true},
		{"alice", "votes", RightWrite, false},
		{"alice", "zakat-2030", RightReplicate, true},
		{"alice", "zakat-2030", RightRead, false},
		{"alice", "other", RightRead, false},
		{"boss", "votes", RightWrite, true}, // admins hold every right
		{"boss", "anything", RightReplicate, true},
	}
	for _, c := range checks {
		got, err := s.HasRight(t.Context(), c.name, c.chain, c.right)
		if err != nil || got != c.want {
			t.Errorf("HasRight(%s, %s, %s) = %v, %v; want %v", c.name, c.chain, c.right, got, err, c.want)
		}
	}
	if err := s.SetEnabled(t.Context(), "alice", false); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasRight(t.Context(), "alice", "votes", RightRead); ok || err != nil {
		t.Fatalf("HasRight of a disabled account = %v, %v; want false", ok, err)
	}
}

// Deleting an account deletes its rights, so a new account of the same name
// does not inherit them; a neighbour whose name extends it keeps its own.
func TestDeleteRemovesRights(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "boss", "boss password", RoleAdmin)
	env.mustAdd(t, "ab", "ab password", RoleUser)
	env.mustAdd(t, "abc", "abc password", RoleUser)
	for _, n := range []string{"ab", "abc"} {
		if err := env.store.Grant(t.Context(), n, "votes", RightWrite); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.store.Delete(t.Context(), "ab"); err != nil {
		t.Fatal(err)
	}
	env.mustAdd(t, "AB", "ab password", RoleUser)
	if r, err := env.store.Rights(t.Context(), "ab"); err != nil || len(r) != 0 {
		t.Fatalf("Rights of re-created ab = %v, %v; want none", r, err)
	}
	if ok, err := env.store.HasRight(t.Context(), "abc", "votes", RightWrite); !ok || err != nil {
		t.Fatalf("abc lost its right: %v, %v", ok, err)
	}
}
