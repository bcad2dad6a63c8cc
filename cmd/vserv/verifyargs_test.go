package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

// TestVservVerifyMissingDataDirectoryIsUsageErrorAndCreatesNothing pins
// that a mistyped -r gets one line naming the directory, exit 2, and that
// the verifier does not create it.
func TestVservVerifyMissingDataDirectoryIsUsageErrorAndCreatesNothing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	for _, args := range [][]string{
		{"verify", "-r", missing},
		{"verify", "-r", missing, "--server-key", secure.PublicKeyText(newPublicKey(t))},
	} {
		stdout, stderr, code := runVserv(t, args...)
		if code != 2 {
			t.Errorf("%v: exit status %d, want 2; stderr:\n%s", args, code, stderr)
		}
		want := "vserv: data directory " + missing + " does not exist"
		if !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
			t.Errorf("%v: stdout %q, stderr %q; want no stdout and one line starting %q", args, stdout, stderr, want)
		}
		if _, err := os.Lstat(missing); err == nil {
			t.Fatalf("%v created %s", args, missing)
		}
	}
}

// TestVservVerifyServerKeyOfAnotherServerSaysItDoesNotMatch pins that a
// --server-key that is not this server's gets one line naming the
// server-id, not a fault line per chain; the server's own keys (first and
// after a rotation) verify.
func TestVservVerifyServerKeyOfAnotherServerSaysItDoesNotMatch(t *testing.T) {
	srv := testenv.Start(t)
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	dir := srv.DataRoot
	idBytes, err := os.ReadFile(filepath.Join(dir, "server-id"))
	if err != nil {
		t.Fatal(err)
	}
	serverID := strings.TrimSpace(string(idBytes))
	first := identityPublicKey(t, dir)

	other := newPublicKey(t)
	stdout, stderr, code := runVserv(t, "verify", "-q", "-r", dir, "--server-key", secure.PublicKeyText(other))
	want := "vserv: --server-key " + secure.Fingerprint(other) + " does not match server-id " + serverID + ":"
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("other server's key: exit %d, stdout %q, stderr %q; want exit 1, no stdout, one line starting %q", code, stdout, stderr, want)
	}

	if _, stderr, code := runVserv(t, "verify", "-q", "-r", dir, "--server-key", secure.PublicKeyText(first)); code != 0 {
		t.Errorf("the server's own key: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	if _, stderr, code := runVserv(t, "keygen", "-r", dir, "--identity", "--yes"); code != 0 {
		t.Fatalf("keygen --identity: exit %d; stderr:\n%s", code, stderr)
	}
	rotated := identityPublicKey(t, dir)
	if _, stderr, code := runVserv(t, "verify", "-q", "-r", dir, "--server-key", secure.PublicKeyText(rotated)); code != 0 {
		t.Errorf("the key after a rotation: exit %d, want 0; stderr:\n%s", code, stderr)
	}
}

func newPublicKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func identityPublicKey(t *testing.T, dir string) ed25519.PublicKey {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(dir, "identity.key"))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("read identity.key: %v (%d bytes)", err, len(seed))
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}
