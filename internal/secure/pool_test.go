package secure

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func poolFiles(t *testing.T, dataroot string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataroot, "pool"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func kidFiles(kids []string) []string {
	var names []string
	for _, kid := range kids {
		names = append(names, kid+".key")
	}
	slices.Sort(names)
	return names
}

func TestOpenPoolCreatesSignedKeys(t *testing.T) {
	p, id, clock, dataroot := newTestPool(t, 3)
	kids := p.KIDs()
	if len(kids) != 3 {
		t.Fatalf("pool holds %d keys, want 3", len(kids))
	}
	if got, want := poolFiles(t, dataroot), kidFiles(kids); !slices.Equal(got, want) {
		t.Errorf("pool files %v, want %v", got, want)
	}
	if got := fileMode(t, filepath.Join(dataroot, "pool")); got != 0o700 {
		t.Errorf("pool dir mode %04o, want 0700", got)
	}
	wantExp := uint64(clock.now().Add(24 * time.Hour).Unix())
	for _, kid := range kids {
		path := filepath.Join(dataroot, "pool", kid+".key")
		if got := fileMode(t, path); got != 0o600 {
			t.Errorf("%s mode %04o, want 0600", path, got)
		}
		if st, _ := os.Stat(path); st.Size() != 104 {
			t.Errorf("%s is %d bytes, want 104", path, st.Size())
		}
		k, ok := p.Lookup(kid)
		if !ok {
			t.Fatalf("Lookup(%s) failed", kid)
		}
		ki, err := ParseKeyInfo(k.Info())
		if err != nil {
			t.Fatalf("ParseKeyInfo of %s: %v", kid, err)
		}
		if ki.KID != kid || k.KID() != kid || !ki.ID.Equal(id.Public()) || ki.Exp != wantExp || uint64(k.Expires().Unix()) != wantExp {
			t.Errorf("keyinfo %s: kid %s, id %s, exp %d; want %s, %s, %d",
				kid, ki.KID, Fingerprint(ki.ID), ki.Exp, kid, Fingerprint(id.Public()), wantExp)
		}
		if err := ki.CheckFresh(clock.now()); err != nil {
			t.Errorf("fresh key %s: %v", kid, err)
		}
	}
}

func TestOpenPoolReloadsTheSameKeys(t *testing.T) {
	p, id, clock, dataroot := newTestPool(t, 2)
	clock.advance(time.Hour)
	again, err := OpenPool(dataroot, id, 2, 24*time.Hour, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	want, got := p.KIDs(), again.KIDs()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("reloaded kids %v, want %v", got, want)
	}
	for _, kid := range want {
		a, _ := p.Lookup(kid)
		b, _ := again.Lookup(kid)
		if string(a.Info()) != string(b.Info()) {
			t.Errorf("key %s: reloaded keyinfo differs", kid)
		}
	}
}

func TestOpenPoolErasesExpiredKeys(t *testing.T) {
	p, id, clock, dataroot := newTestPool(t, 2)
	old := p.KIDs()
	clock.advance(24*time.Hour + time.Second)
	again, err := OpenPool(dataroot, id, 2, 24*time.Hour, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	kids := again.KIDs()
	if len(kids) != 2 {
		t.Fatalf("pool holds %d keys, want 2", len(kids))
	}
	for _, kid := range old {
		if slices.Contains(kids, kid) {
			t.Errorf("expired key %s still in the pool", kid)
		}
	}
	if got, want := poolFiles(t, dataroot), kidFiles(kids); !slices.Equal(got, want) {
		t.Errorf("pool files %v, want only the new keys %v", got, want)
	}
}

func TestRefreshReplacesRetiredKeysAndErasesTheirFiles(t *testing.T) {
	p, _, clock, dataroot := newTestPool(t, 3)
	old := p.KIDs()

	// Nothing is due yet: Refresh changes nothing.
	clock.advance(22 * time.Hour)
	if err := p.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got := p.KIDs(); len(got) != 3 || !slices.Contains(got, old[0]) {
		t.Fatalf("early Refresh changed the pool: %v, was %v", got, old)
	}

	// 23 h in, the keys are within the 1 h retirement margin.
	clock.advance(time.Hour)
	if p.Pick() != nil {
		t.Error("Pick handed out a key within its retirement margin")
	}
	if _, ok := p.Lookup(old[0]); !ok {
		t.Error("a retired but unexpired key was refused by Lookup before Refresh")
	}
	if err := p.Refresh(); err != nil {
		t.Fatal(err)
	}
	kids := p.KIDs()
	if len(kids) != 3 {
		t.Fatalf("pool holds %d keys after Refresh, want 3", len(kids))
	}
	for _, kid := range old {
		if _, ok := p.Lookup(kid); ok {
			t.Errorf("replaced key %s still found", kid)
		}
		if _, err := os.Stat(filepath.Join(dataroot, "pool", kid+".key")); !os.IsNotExist(err) {
			t.Errorf("replaced key %s: file not erased (%v)", kid, err)
		}
	}
	if got, want := poolFiles(t, dataroot), kidFiles(kids); !slices.Equal(got, want) {
		t.Errorf("pool files %v, want %v", got, want)
	}
	if k := p.Pick(); k == nil || !slices.Contains(kids, k.KID()) {
		t.Errorf("Pick after Refresh = %v, want one of %v", k, kids)
	}
}

func TestLookupRefusesExpiredKeys(t *testing.T) {
	p, _, clock, _ := newTestPool(t, 1)
	kid := p.KIDs()[0]
	clock.advance(24*time.Hour - time.Second)
	if _, ok := p.Lookup(kid); !ok {
		t.Fatal("Lookup refused a key one second before expiry")
	}
	clock.advance(time.Second)
	if _, ok := p.Lookup(kid); ok {
		t.Error("Lookup accepted a key at its expiry")
	}
	if _, ok := p.Lookup("0000000000000000"); ok {
		t.Error("Lookup accepted an unknown kid")
	}
}

func TestPickUsesEveryLiveKey(t *testing.T) {
	p, _, _, _ := newTestPool(t, 4)
	seen := map[string]int{}
	for range 400 {
		seen[p.Pick().KID()]++
	}
	if len(seen) != 4 {
		t.Errorf("400 picks used %d of 4 keys: %v", len(seen), seen)
	}
}

func TestAddKeysAndRotateAll(t *testing.T) {
	p, id, clock, dataroot := newTestPool(t, 2)
	if err := p.AddKeys(3); err != nil {
		t.Fatal(err)
	}
	if p.Len() != 5 {
		t.Fatalf("after AddKeys(3) the pool holds %d keys, want 5", p.Len())
	}
	before := p.KIDs()
	if err := p.RotateAll(); err != nil {
		t.Fatal(err)
	}
	after := p.KIDs()
	if len(after) != 5 {
		t.Fatalf("after RotateAll the pool holds %d keys, want 5", len(after))
	}
	for _, kid := range before {
		if slices.Contains(after, kid) {
			t.Errorf("RotateAll kept key %s", kid)
		}
	}
	if got, want := poolFiles(t, dataroot), kidFiles(after); !slices.Equal(got, want) {
		t.Errorf("pool files %v, want %v", got, want)
	}
	// Extra keys survive a restart: size is a minimum, not a cap.
	again, err := OpenPool(dataroot, id, 2, 24*time.Hour, clock.now)
	if err != nil || again.Len() != 5 {
		t.Errorf("reopen: %v keys, %v; want 5", again.Len(), err)
	}
	if err := p.AddKeys(0); err == nil {
		t.Error("AddKeys(0) succeeded")
	}
}

func TestOpenPoolRefusesDamagedOrExposedKeyFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"group readable", func(t *testing.T, path string) { os.Chmod(path, 0o640) }},
		{"truncated", func(t *testing.T, path string) { os.Truncate(path, 103) }},
		{"renamed", func(t *testing.T, path string) {
			os.Rename(path, filepath.Join(filepath.Dir(path), "0123456789abcdef.key"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, id, clock, dataroot := newTestPool(t, 1)
			tt.setup(t, filepath.Join(dataroot, "pool", p.KIDs()[0]+".key"))
			if _, err := OpenPool(dataroot, id, 1, 24*time.Hour, clock.now); err == nil {
				t.Error("OpenPool accepted the damaged key file")
			}
		})
	}
}

func TestOpenPoolErasesInterruptedWrites(t *testing.T) {
	p, id, clock, dataroot := newTestPool(t, 1)
	tmp := filepath.Join(dataroot, "pool", ".0123456789abcdef.key.tmp-42")
	if err := os.WriteFile(tmp, []byte("partial secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dataroot, "pool", "README")
	if err := os.WriteFile(other, []byte("operator notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPool(dataroot, id, 1, 24*time.Hour, clock.now); err != nil {
		t.Fatal(err)
	}
	want := append(kidFiles(p.KIDs()), "README")
	slices.Sort(want)
	if got := poolFiles(t, dataroot); !slices.Equal(got, want) {
		t.Errorf("pool files %v, want %v", got, want)
	}
}

func TestPoolSignsWithTheCurrentIdentityAfterRotation(t *testing.T) {
	p, _, clock, dataroot := newTestPool(t, 1)
	kid := p.KIDs()[0]
	_, next, err := RotateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenPool(dataroot, next, 1, 24*time.Hour, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := again.Lookup(kid)
	if !ok {
		t.Fatalf("key %s lost across identity rotation", kid)
	}
	ki, err := ParseKeyInfo(k.Info())
	if err != nil || !ki.ID.Equal(next.Public()) {
		t.Errorf("keyinfo after rotation: %v, id %x; want signed by %s", err, ki.ID, Fingerprint(next.Public()))
	}
}

func TestOpenPoolRefusesBadOptions(t *testing.T) {
	dataroot := t.TempDir()
	id, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		size     int
		lifetime time.Duration
		want     string
	}{
		{0, 24 * time.Hour, "size"},
		{-1, 24 * time.Hour, "size"},
		{8, 0, "lifetime"},
		{8, 30 * time.Second, "lifetime"},
		{8, 7*24*time.Hour + time.Second, "lifetime"},
	}
	for _, tt := range tests {
		_, err := OpenPool(dataroot, id, tt.size, tt.lifetime, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenPool(size %d, lifetime %s) = %v, want an error about %s", tt.size, tt.lifetime, err, tt.want)
		}
	}
}
