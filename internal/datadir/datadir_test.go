package datadir

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// names lists dir, so that a test sees any temporary file left behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestPathsFollowTheLayoutOfDesign26(t *testing.T) {
	d := New("/srv/vserv")
	for _, tc := range []struct{ got, want string }{
		{d.Root(), "/srv/vserv"},
		{d.DBPath(), "/srv/vserv/ledger.db"},
		{d.IdentityPath(), "/srv/vserv/identity.key"},
		{d.ServerIDPath(), "/srv/vserv/server-id"},
		{d.PoolDir(), "/srv/vserv/pool"},
		{d.SecretKeyPath(), "/srv/vserv/secret.key"},
		{d.SetupTokenPath(), "/srv/vserv/setup-token"},
		{d.FilesDir(), "/srv/vserv/files"},
		{d.DeletedHomesDir(), "/srv/vserv/deleted-homes"},
		{d.HeadsPath(), "/srv/vserv/heads"},
		{d.LogPath(), "/srv/vserv/log/vserv.log"},
	} {
		if tc.got != filepath.FromSlash(tc.want) {
			t.Errorf("path %q, want %q", tc.got, tc.want)
		}
	}
}

func TestWriteFileReplacesWithAPrivateFileAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, []byte("old content, readable by all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatalf("WriteFile over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("content %q, want %q", b, "new")
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, path); m != 0o600 {
			t.Errorf("mode %04o after WriteFile, want 0600", m)
		}
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "key" {
		t.Errorf("directory holds %v, want only [key]", got)
	}
}

func TestWriteFileIntoAMissingDirectoryFailsWithThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "key")
	err := WriteFile(path, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory: %v, want an error naming %s that matches fs.ErrNotExist", err, path)
	}
}

func TestCreateFileNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	if err := CreateFile(path, []byte("first")); err != nil {
		t.Fatalf("CreateFile of a new file: %v", err)
	}
	err := CreateFile(path, []byte("second"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateFile over an existing file: %v, want an error matching fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("content %q after a refused CreateFile, want %q", b, "first")
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, path); m != 0o600 {
			t.Errorf("mode %04o, want 0600", m)
		}
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "secret.key" {
		t.Errorf("directory holds %v, want only [secret.key]", got)
	}
}

func TestCreateMakesAPrivateDirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "vserv-data")
	if err := New(root).Create(); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, root); m != 0o700 {
			t.Errorf("data directory mode %04o, want 0700", m)
		}
	}
}

func TestOpenLogWritesToStderrAndTheLogFile(t *testing.T) {
	d := New(t.TempDir())
	var stderr bytes.Buffer
	log, f, err := d.OpenLog(&stderr, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("hello", "k", "v")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(d.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"stderr": stderr.String(), "log file": string(b)} {
		if !strings.Contains(got, "msg=hello k=v") || strings.Contains(got, "hidden") {
			t.Errorf("%s holds %q, want the info record only", name, got)
		}
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, d.LogPath()); m != 0o600 {
			t.Errorf("log file mode %04o, want 0600", m)
		}
	}
}

func TestSetupTokenLifecycle(t *testing.T) {
	d := New(t.TempDir())
	tok := d.SetupToken()
	if tok.Check("") {
		t.Fatal("Check of a missing token file matched the empty token")
	}
	written, err := tok.Ensure(true)
	if err != nil || !written {
		t.Fatalf("Ensure(true) on a new directory: written %v, %v; want a new token", written, err)
	}
	b, err := os.ReadFile(d.SetupTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).Match(b) {
		t.Fatalf("setup-token holds %q, want 32 lowercase hex characters and a newline", b)
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, d.SetupTokenPath()); m != 0o600 {
			t.Errorf("setup-token mode %04o, want 0600", m)
		}
	}
	token := strings.TrimSuffix(string(b), "\n")
	// A second start while still no account exists keeps the token a user
	// may already have copied.
	if written, err := tok.Ensure(true); err != nil || written {
		t.Fatalf("Ensure(true) with a token present: written %v, %v; want it kept", written, err)
	}
	if b2, _ := os.ReadFile(d.SetupTokenPath()); !bytes.Equal(b, b2) {
		t.Fatalf("token changed from %q to %q", b, b2)
	}
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{token, true},
		{token + "\n", false},
		{strings.ToUpper(token), false},
		{token[:31], false},
		{"", false},
	} {
		if got := tok.Check(tc.token); got != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	if err := tok.Remove(); err != nil {
		t.Fatal(err)
	}
	if tok.Check(token) {
		t.Error("Check matched after Remove")
	}
	if err := tok.Remove(); err != nil {
		t.Errorf("Remove of a removed token: %v, want nil", err)
	}
	// Once an account exists a stale token goes.
	if _, err := tok.Ensure(true); err != nil {
		t.Fatal(err)
	}
	if written, err := tok.Ensure(false); err != nil || written {
		t.Fatalf("Ensure(false): written %v, %v", written, err)
	}
	if _, err := os.Stat(d.SetupTokenPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("setup-token after Ensure(false): %v, want it removed", err)
	}
}

func TestSetupTokenCheckOfAMalformedFileMatchesNothing(t *testing.T) {
	d := New(t.TempDir())
	if err := os.WriteFile(d.SetupTokenPath(), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d.SetupToken().Check("short") {
		t.Error("a token file of the wrong length matched its own content")
	}
}
