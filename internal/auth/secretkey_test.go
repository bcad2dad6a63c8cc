package auth

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateSecretKey(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadOrCreateSecretKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 || bytes.Equal(key, make([]byte, 32)) {
		t.Fatalf("key = %x, want 32 random bytes", key)
	}
	path := filepath.Join(dir, "secret.key")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	again, err := LoadOrCreateSecretKey(dir)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second load = %x, %v; want the same key", again, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data directory holds %d entries, want only secret.key (no temporary left)", len(entries))
	}
}

func TestLoadOrCreateSecretKeyConcurrentAgree(t *testing.T) {
	dir := t.TempDir()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			var err error
			if keys[i], err = LoadOrCreateSecretKey(dir); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("concurrent callers got different keys: %x and %x", keys[0], keys[i])
		}
	}
}

func TestLoadOrCreateSecretKeyRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"short", make([]byte, 31), 0o600, "exactly 32 bytes"},
		{"long", make([]byte, 33), 0o600, "exactly 32 bytes"},
		{"readable by others", make([]byte, 32), 0o644, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "secret.key")
			if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateSecretKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tt.content) {
				t.Fatal("the bad key file was modified")
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	env := newTestEnv(t, false)
	for _, opts := range []Options{
		{Argon: TestArgon2, SecretKey: make([]byte, 16)},
		{Argon: TestArgon2},
		{Argon: Argon2Params{Time: 1, MemoryKiB: 4, Threads: 1}, SecretKey: testKey},
	} {
		if _, err := New(env.st, opts); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", opts.Argon)
		}
	}
}
