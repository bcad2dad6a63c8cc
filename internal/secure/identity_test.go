package secure

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateIdentityCreatesPrivateFiles(t *testing.T) {
	dataroot := filepath.Join(t.TempDir(), "a", "data")
	id, created, err := LoadOrCreateIdentity(dataroot)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateIdentity = created %v, %v; want created, no error", created, err)
	}
	if got := fileMode(t, dataroot); got != 0o700 {
		t.Errorf("data dir mode %04o, want 0700", got)
	}
	keyPath := filepath.Join(dataroot, "identity.key")
	if got := fileMode(t, keyPath); got != 0o600 {
		t.Errorf("identity.key mode %04o, want 0600", got)
	}
	seed, err := os.ReadFile(keyPath)
	if err != nil || !bytes.Equal(seed, id.Key.Seed()) {
		t.Errorf("identity.key = %x, %v; want the 32-byte seed %x", seed, err, id.Key.Seed())
	}
	sid, err := os.ReadFile(filepath.Join(dataroot, "server-id"))
	if want := ServerIDOf(id.Public()) + "\n"; err != nil || string(sid) != want {
		t.Errorf("server-id = %q, %v; want %q", sid, err, want)
	}
	if id.ServerID != ServerIDOf(id.Public()) {
		t.Errorf("ServerID = %q, want %q", id.ServerID, ServerIDOf(id.Public()))
	}
	leftovers, _ := filepath.Glob(filepath.Join(dataroot, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestLoadOrCreateIdentityLoadsTheSameKey(t *testing.T) {
	dataroot := t.TempDir()
	first, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	again, created, err := LoadOrCreateIdentity(dataroot)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateIdentity = created %v, %v; want loaded", created, err)
	}
	if !again.Key.Equal(first.Key) || again.ServerID != first.ServerID {
		t.Errorf("reloaded identity %s/%s, want %s/%s",
			Fingerprint(again.Public()), again.ServerID, Fingerprint(first.Public()), first.ServerID)
	}
}

func TestIdentityKeyPermissions(t *testing.T) {
	tests := []struct {
		mode    os.FileMode
		wantErr bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o604, true},
		{0o610, true},
		{0o601, true},
		{0o644, true},
		{0o666, true},
	}
	for _, tt := range tests {
		dataroot := t.TempDir()
		if _, _, err := LoadOrCreateIdentity(dataroot); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dataroot, "identity.key"), tt.mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateIdentity(dataroot)
		if gotErr := err != nil; gotErr != tt.wantErr {
			t.Errorf("mode %04o: err = %v, want error %v", tt.mode, err, tt.wantErr)
		}
		if tt.wantErr && err != nil && !strings.Contains(err.Error(), "group or others") {
			t.Errorf("mode %04o: error %q does not say why", tt.mode, err)
		}
	}
}

func TestIdentityDamagedFilesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dataroot string) error
	}{
		{"short key", func(d string) error {
			return os.WriteFile(filepath.Join(d, "identity.key"), make([]byte, 31), 0o600)
		}},
		{"long key", func(d string) error {
			return os.WriteFile(filepath.Join(d, "identity.key"), make([]byte, 64), 0o600)
		}},
		{"server-id without newline", func(d string) error {
			return os.WriteFile(filepath.Join(d, "server-id"), []byte(strings.Repeat("a", 32)), 0o600)
		}},
		{"server-id upper case", func(d string) error {
			return os.WriteFile(filepath.Join(d, "server-id"), []byte(strings.Repeat("A", 32)+"\n"), 0o600)
		}},
		{"server-id too short", func(d string) error {
			return os.WriteFile(filepath.Join(d, "server-id"), []byte(strings.Repeat("a", 31)+"\n"), 0o600)
		}},
		{"key missing but server-id present", func(d string) error {
			return os.Remove(filepath.Join(d, "identity.key"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataroot := t.TempDir()
			if _, _, err := LoadOrCreateIdentity(dataroot); err != nil {
				t.Fatal(err)
			}
			if err := tt.setup(dataroot); err != nil {
				t.Fatal(err)
			}
			if id, _, err := LoadOrCreateIdentity(dataroot); err == nil {
				t.Errorf("LoadOrCreateIdentity = %s, want an error", id.ServerID)
			}
		})
	}
}

func TestMissingServerIDIsRecomputedOnlyBeforeRotation(t *testing.T) {
	dataroot := t.TempDir()
	first, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	sidPath := filepath.Join(dataroot, "server-id")
	os.Remove(sidPath)
	again, created, err := LoadOrCreateIdentity(dataroot)
	if err != nil || created || again.ServerID != first.ServerID {
		t.Fatalf("after losing server-id: %+v created=%v err=%v; want server-id %s", again, created, err, first.ServerID)
	}
	if b, _ := os.ReadFile(sidPath); string(b) != first.ServerID+"\n" {
		t.Errorf("server-id rewritten as %q, want %q", b, first.ServerID+"\n")
	}

	if _, _, err := RotateIdentity(dataroot); err != nil {
		t.Fatal(err)
	}
	os.Remove(sidPath)
	if _, _, err := LoadOrCreateIdentity(dataroot); err == nil {
		t.Error("server-id lost after a rotation was silently recomputed from the new key")
	}
}

func TestRotateIdentityKeepsServerIDAndOldKey(t *testing.T) {
	dataroot := t.TempDir()
	first, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	seen := []ed25519.PrivateKey{first.Key}
	for i := range 2 {
		old, next, err := RotateIdentity(dataroot)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		if !old.Key.Equal(seen[len(seen)-1]) {
			t.Errorf("rotation %d: old key %s, want the current one", i, Fingerprint(old.Public()))
		}
		if next.Key.Equal(old.Key) {
			t.Errorf("rotation %d: new key equals old key", i)
		}
		if old.ServerID != first.ServerID || next.ServerID != first.ServerID {
			t.Errorf("rotation %d: server-ids %s, %s; want %s", i, old.ServerID, next.ServerID, first.ServerID)
		}
		loaded, created, err := LoadOrCreateIdentity(dataroot)
		if err != nil || created || !loaded.Key.Equal(next.Key) || loaded.ServerID != first.ServerID {
			t.Errorf("rotation %d: reload gave %s/%s (created %v, %v); want %s/%s",
				i, Fingerprint(loaded.Public()), loaded.ServerID, created, err, Fingerprint(next.Public()), first.ServerID)
		}
		seen = append(seen, next.Key)
	}

	olds, err := filepath.Glob(filepath.Join(dataroot, "identity.key.old-*"))
	if err != nil || len(olds) != 2 {
		t.Fatalf("old key files %v, %v; want 2", olds, err)
	}
	var kept [][]byte
	for _, path := range olds {
		if got := fileMode(t, path); got != 0o600 {
			t.Errorf("%s mode %04o, want 0600", path, got)
		}
		b, _ := os.ReadFile(path)
		kept = append(kept, b)
	}
	for _, old := range seen[:2] {
		if !bytes.Equal(kept[0], old.Seed()) && !bytes.Equal(kept[1], old.Seed()) {
			t.Errorf("old seed of %s not kept", Fingerprint(old.Public().(ed25519.PublicKey)))
		}
	}
}

func TestRotateIdentityWithoutIdentityFails(t *testing.T) {
	if _, _, err := RotateIdentity(t.TempDir()); err == nil {
		t.Error("RotateIdentity on an empty directory succeeded")
	}
}

func TestRestoreIdentityUndoesARotation(t *testing.T) {
	dataroot := t.TempDir()
	first, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := RotateIdentity(dataroot)
	if err != nil {
		t.Fatal(err)
	}
	if err := RestoreIdentity(dataroot, old); err != nil {
		t.Fatalf("restore: %v", err)
	}
	loaded, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil || !loaded.Key.Equal(first.Key) || loaded.ServerID != first.ServerID {
		t.Fatalf("after restore: %v, want the first key back", err)
	}
	if got := fileMode(t, filepath.Join(dataroot, "identity.key")); got != 0o600 {
		t.Errorf("identity.key mode %04o, want 0600", got)
	}
	other := &Identity{Key: old.Key, ServerID: strings.Repeat("0", 32)}
	if err := RestoreIdentity(dataroot, other); err == nil {
		t.Error("restoring a key under another server-id succeeded")
	}
}
