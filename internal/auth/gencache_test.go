package auth

import "testing"

func TestGenCacheDropsAValueReadBeforeAWrite(t *testing.T) {
	c := newGenCache()
	_, epoch, ok := c.get("alice")
	if ok {
		t.Fatal("empty cache has alice")
	}
	// A reader read generation 5 from the database; meanwhile a write
	// committed (generation 6) and forgot alice. The reader's 5 is stale.
	c.forget("alice")
	c.fill("alice", 5, epoch)
	if gen, _, ok := c.get("alice"); ok {
		t.Fatalf("cache holds %d, read before a write that committed since", gen)
	}
	_, epoch, _ = c.get("alice")
	c.fill("alice", 6, epoch)
	if gen, _, ok := c.get("alice"); !ok || gen != 6 {
		t.Fatalf("cache = %d, %v; want 6", gen, ok)
	}
}

func TestGenerationFollowsEveryAccountChange(t *testing.T) {
	env := newTestEnv(t, true)
	env.mustAdd(t, "admin", "admin password one", RoleAdmin)
	env.mustAdd(t, "alice", "alice password one", RoleUser)
	prev, err := env.store.Generation(t.Context(), "alice") // now cached
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		what   string
		change func() error
		bumps  bool
	}{
		{"grant read", func() error { return env.store.Grant(t.Context(), "alice", "notes", RightRead) }, false},
		{"grant write without a factor (production)", func() error { return env.store.Grant(t.Context(), "alice", "notes", RightWrite) }, true},
		{"grant write again", func() error { return env.store.Grant(t.Context(), "alice", "notes", RightWrite) }, false},
		{"revoke write", func() error { return env.store.Revoke(t.Context(), "alice", "notes", RightWrite) }, false},
		{"set password", func() error { _, err := env.store.SetPassword(t.Context(), "alice", "alice password two"); return err }, true},
		{"disable", func() error { return env.store.SetEnabled(t.Context(), "alice", false) }, true},
		{"enable", func() error { return env.store.SetEnabled(t.Context(), "alice", true) }, false},
		{"reset 2fa", func() error { _, err := env.store.Reset2FA(t.Context(), "alice"); return err }, true},
	}
	for _, ch := range changes {
		if err := ch.change(); err != nil {
			t.Fatalf("%s: %v", ch.what, err)
		}
		gen, err := env.store.Generation(t.Context(), "alice")
		if err != nil {
			t.Fatalf("%s: %v", ch.what, err)
		}
		if (gen != prev) != ch.bumps {
			t.Errorf("%s: generation %d → %d, want changed = %v", ch.what, prev, gen, ch.bumps)
		}
		prev = gen
	}
	if err := env.store.Delete(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Generation(t.Context(), "alice"); err == nil {
		t.Fatal("Generation of a deleted account answered from the cache")
	}
}
