package secure

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

func newKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestKnownHostsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "vserv", "known_hosts")
	kh, err := OpenKnownHosts(path)
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if _, ok := kh.Lookup("[::1]:6666"); ok {
		t.Fatal("empty known_hosts found a key")
	}
	v6, v4, name := newKey(t), newKey(t), seqKey
	for hp, key := range map[string]ed25519.PublicKey{"[::1]:6666": v6, "127.0.0.1:7000": v4} {
		if err := kh.Set(hp, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := kh.Set("Vote.Example.ORG:6666", name); err != nil {
		t.Fatal(err)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("known_hosts mode %04o, want 0600", got)
	}
	if got := fileMode(t, filepath.Dir(path)); got != 0o700 {
		t.Errorf("known_hosts dir mode %04o, want 0700", got)
	}
	data, _ := os.ReadFile(path)
	lines := map[string]bool{
		"[::1]:6666 " + PublicKeyText(v6) + "\n":                               true,
		"127.0.0.1:7000 " + PublicKeyText(v4) + "\n":                           true,
		"vote.example.org:6666 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n": true,
	}
	for line := range lines {
		if !containsLine(string(data), line) {
			t.Errorf("known_hosts lacks line %q; content:\n%s", line, data)
		}
	}
	if n := countLines(string(data)); n != 3 {
		t.Errorf("known_hosts has %d lines, want 3:\n%s", n, data)
	}

	again, err := OpenKnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hostport string
		want     ed25519.PublicKey
	}{
		{"[::1]:6666", v6},
		{"[0:0:0::1]:6666", v6},
		{"[::1]:06666", v6},
		{"127.0.0.1:7000", v4},
		{"vote.example.org:6666", name},
		{"VOTE.example.org:6666", name},
		{"[::1]:6667", nil},
		{"127.0.0.1:6666", nil},
		{"::1:6666", nil}, // unbracketed IPv6 is not an address
	}
	for _, tt := range tests {
		got, ok := again.Lookup(tt.hostport)
		if ok != (tt.want != nil) || !got.Equal(tt.want) {
			t.Errorf("Lookup(%q) = %x, %v; want %x", tt.hostport, got, ok, tt.want)
		}
	}
	if got, ok := again.FindByFingerprint(Fingerprint(v4)); !ok || !got.Equal(v4) {
		t.Errorf("FindByFingerprint = %x, %v; want %x", got, ok, v4)
	}
	if _, ok := again.FindByFingerprint(Fingerprint(newKey(t))); ok {
		t.Error("FindByFingerprint found an unknown key")
	}
}

func containsLine(data, line string) bool {
	for len(data) > 0 {
		i := 0
		for i < len(data) && data[i] != '\n' {
			i++
		}
		if i < len(data) {
			i++
		}
		if data[:i] == line {
			return true
		}
		data = data[i:]
	}
	return false
}

func countLines(data string) int {
	n := 0
	for _, c := range data {
		if c == '\n' {
			n++
		}
	}
	return n
}

func TestKnownHostsSetReplacesAndKeepsComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	old, next := newKey(t), newKey(t)
	content := "# pinned by hand\n\n[::1]:6666 " + PublicKeyText(old) + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	kh, err := OpenKnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := kh.Set("[::1]:6666", next); err != nil {
		t.Fatal(err)
	}
	want := "# pinned by hand\n\n[::1]:6666 " + PublicKeyText(next) + "\n"
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("after Set the file is\n%q\nwant\n%q", got, want)
	}
	if got, _ := kh.Lookup("[::1]:6666"); !got.Equal(next) {
		t.Errorf("Lookup after Set = %x, want %x", got, next)
	}
}

func TestKnownHostsRefusesMalformedFiles(t *testing.T) {
	key := PublicKeyText(seqKey)
	tests := map[string]string{
		"no key":           "[::1]:6666\n",
		"three fields":     "[::1]:6666 " + key + " extra\n",
		"bad key":          "[::1]:6666 AAAA\n",
		"fingerprint":      "[::1]:6666 " + Fingerprint(seqKey) + "\n",
		"no port":          "example.org " + key + "\n",
		"unbracketed ipv6": "::1:6666 " + key + "\n",
		"port 0":           "example.org:0 " + key + "\n",
		"port too big":     "example.org:65536 " + key + "\n",
		"duplicate":        "[::1]:6666 " + key + "\n[0::1]:6666 " + key + "\n",
	}
	for name, content := range tests {
		path := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenKnownHosts(path); err == nil {
			t.Errorf("%s: OpenKnownHosts accepted %q", name, content)
		}
	}
}

func TestKnownHostsSetRefusesBadInput(t *testing.T) {
	kh, _ := OpenKnownHosts(filepath.Join(t.TempDir(), "known_hosts"))
	if err := kh.Set("example.org", seqKey); err == nil {
		t.Error("Set without a port succeeded")
	}
	if err := kh.Set("example.org:6666", seqKey[:31]); err == nil {
		t.Error("Set with a 31-byte key succeeded")
	}
}

func TestDefaultKnownHostsPath(t *testing.T) {
	tests := []struct {
		xdg, home, want string
		wantErr         bool
	}{
		{"/xdg", "/home/u", "/xdg/vserv/known_hosts", false},
		{"", "/home/u", "/home/u/.config/vserv/known_hosts", false},
		{"relative/dir", "/home/u", "/home/u/.config/vserv/known_hosts", false},
		{"", "", "", true},
	}
	for _, tt := range tests {
		t.Setenv("XDG_CONFIG_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		got, err := DefaultKnownHostsPath()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("XDG_CONFIG_HOME=%q HOME=%q: %q, %v; want %q", tt.xdg, tt.home, got, err, tt.want)
		}
	}
}
