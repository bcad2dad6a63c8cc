package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

// The README's tour through the real binaries: vserv serving, vcli creating
// the first admin, adding a user, logging in, listing, failing in the
// documented ways (exit 1 on ERR, 2 on usage errors), recording the server
// on first contact, and the shell reading commands from a pipe.

// vcliHome is a HOME for vcli runs that share a known_hosts file.
type vcliHome struct {
	dir string
	env []string
}

func newVcliHome(t *testing.T) *vcliHome {
	dir := t.TempDir()
	return &vcliHome{dir: dir, env: []string{"HOME=" + dir, "XDG_CONFIG_HOME="}}
}

func (h *vcliHome) knownHosts() string {
	return filepath.Join(h.dir, ".config", "vserv", "known_hosts")
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// vcliRun runs vcli and checks its exit status.
func vcliRun(t *testing.T, srv *testenv.Server, h *vcliHome, stdin string, wantExit int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := srv.Vcli(stdin, h.env, args...)
	if code != wantExit {
		t.Fatalf("vcli %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantExit, stdout, stderr)
	}
	return stdout, stderr
}

// jsonErr is what vcli --json prints for an ERR.
type jsonErr struct {
	OK    bool   `json:"ok"`
	Code  string `json:"code"`
	Error string `json:"error"`
}

func TestVcliReadmeTour(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	home := newVcliHome(t)
	adminPW := writeFile(t, "admin.pw", "choose-a-long-admin-password\n")
	bobPW := writeFile(t, "bob.pw", "bobs-password-here\n")

	// First contact: a notice with the fingerprint, and the key recorded.
	_, stderr := vcliRun(t, srv, home, "", 0, "uini", "admin", "--new-pass-file", adminPW, "-r", srv.DataRoot)
	key := srv.Dial().Identity()
	notice := "first contact with " + srv.Addr + ": trusting its key " + secure.Fingerprint(key) + " and recording it in " + home.knownHosts()
	if !strings.Contains(stderr, notice) {
		t.Errorf("vcli uini stderr = %q, want the first-contact notice %q", stderr, notice)
	}
	kh, err := os.ReadFile(home.knownHosts())
	if err != nil {
		t.Fatalf("known_hosts after first contact: %v", err)
	}
	if want := srv.Addr + " " + secure.PublicKeyText(key) + "\n"; string(kh) != want {
		t.Errorf("known_hosts = %q, want %q", kh, want)
	}
	if _, err := os.Stat(filepath.Join(srv.DataRoot, "setup-token")); !os.IsNotExist(err) {
		t.Errorf("setup-token after uini: stat err = %v, want it deleted", err)
	}

	stdout, stderr := vcliRun(t, srv, home, "", 0, "-u", "admin", "--pass-file", adminPW, "user", "add", "bob", "--new-pass-file", bobPW)
	if !strings.Contains(stdout, "added user bob") || strings.Contains(stderr, "first contact") {
		t.Errorf("vcli user add: stdout %q, stderr %q; want \"added user bob\" and no second first-contact notice", stdout, stderr)
	}

	stdout, _ = vcliRun(t, srv, home, "", 0, "-u", "bob", "--pass-file", bobPW, "hello")
	if !regexp.MustCompile(`^hello from ` + regexp.QuoteMeta(srv.Addr) + ` \(server [0-9a-f]{32}, connection [0-9a-f]{16}\)\n$`).MatchString(stdout) {
		t.Errorf("vcli -u bob hello = %q", stdout)
	}
	stdout, _ = vcliRun(t, srv, home, "", 0, "-u", "bob", "--pass-file", bobPW, "--json", "hello")
	var hello struct {
		OK           bool   `json:"ok"`
		ServerID     string `json:"server_id"`
		ConnectionID string `json:"connection_id"`
	}
	if err := json.Unmarshal([]byte(stdout), &hello); err != nil || !hello.OK || len(hello.ServerID) != 32 || len(hello.ConnectionID) != 16 {
		t.Errorf("vcli --json hello = %q (%v)", stdout, err)
	}

	stdout, _ = vcliRun(t, srv, home, "", 0, "-u", "admin", "--pass-file", adminPW, "user", "list", "--json")
	var list struct {
		OK    bool `json:"ok"`
		Users []struct {
			Name    string `json:"name"`
			Role    string `json:"role"`
			Enabled bool   `json:"enabled"`
			Has2FA  bool   `json:"has2fa"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("vcli user list --json: %v\n%s", err, stdout)
	}
	if !list.OK || len(list.Users) != 2 ||
		list.Users[0].Name != "admin" || list.Users[0].Role != "admin" || !list.Users[0].Enabled ||
		list.Users[1].Name != "bob" || list.Users[1].Role != "user" || !list.Users[1].Enabled {
		t.Errorf("vcli user list --json = %+v, want admin (admin) and bob (user), both enabled", list)
	}
	stdout, _ = vcliRun(t, srv, home, "", 0, "-u", "admin", "--pass-file", adminPW, "user", "list")
	if !regexp.MustCompile(`(?m)^admin +admin +true`).MatchString(stdout) || !regexp.MustCompile(`(?m)^bob +user +true`).MatchString(stdout) {
		t.Errorf("vcli user list = %q, want a table with admin and bob", stdout)
	}

	// ERR answers: exit 1, and with --json the code.
	for _, tc := range []struct {
		name string
		args []string
		code string
	}{
		{"a user listing accounts", []string{"-u", "bob", "--pass-file", bobPW, "user", "list"}, "perm"},
		{"adding an existing user", []string{"-u", "admin", "--pass-file", adminPW, "user", "add", "BOB", "--new-pass-file", bobPW}, "exists"},
		{"a wrong password", []string{"-u", "bob", "--pass-file", adminPW, "hello"}, "auth"},
		{"an unknown user", []string{"-u", "nobody", "--pass-file", adminPW, "hello"}, "auth"},
		{"a second uini", []string{"uini", "root", "--token", strings.Repeat("0", 32), "--new-pass-file", adminPW}, "state"},
		{"deleting the initial admin", []string{"-u", "admin", "--pass-file", adminPW, "user", "del", "admin"}, "perm"},
		{"an invalid name", []string{"-u", "admin", "--pass-file", adminPW, "user", "add", "..", "--new-pass-file", bobPW}, "invalid"},
	} {
		t.Run("ERR "+tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, _ := vcliRun(t, srv, home, "", 1, append([]string{"--json"}, tc.args...)...)
			var doc jsonErr
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.OK || doc.Code != tc.code || doc.Error == "" {
				t.Errorf("stdout %q (%v), want {ok: false, code: %q, error: ...}", stdout, err, tc.code)
			}
			if tc.code == "perm" || tc.code == "exists" {
				// Without --json the message goes to stderr.
				_, stderr := vcliRun(t, srv, home, "", 1, tc.args...)
				if !strings.Contains(stderr, "ERR "+tc.code) {
					t.Errorf("without --json: stderr %q, want it to name ERR %s", stderr, tc.code)
				}
			}
		})
	}
	// The two login failures say the same thing.
	_, wrongPass := vcliRun(t, srv, home, "", 1, "-u", "bob", "--pass-file", adminPW, "hello")
	_, noUser := vcliRun(t, srv, home, "", 1, "-u", "nobody", "--pass-file", adminPW, "hello")
	if wrongPass != noUser {
		t.Errorf("wrong password says %q, unknown user says %q; want the same", wrongPass, noUser)
	}

	// Usage errors: exit 2, nothing sent.
	host, port, _ := strings.Cut(srv.Addr, ":")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-n", host, "-p", port, "--nosuch", "hello"}},
		{"unknown command", []string{"-n", host, "-p", port, "nosuch"}},
		{"missing -u", []string{"-n", host, "-p", port, "user", "list"}},
		{"no password", []string{"-n", host, "-p", port, "-u", "bob", "hello"}},
		{"port out of range", []string{"-n", host, "-p", "70000", "hello"}},
		{"port not a number", []string{"-n", host, "-p", "abc", "hello"}},
		{"missing argument", []string{"-n", host, "-p", port, "-u", "admin", "--pass-file", adminPW, "user", "add"}},
		{"empty password file", []string{"-n", host, "-p", port, "-u", "bob", "--pass-file", writeFile(t, "empty.pw", "\n"), "hello"}},
		{"uini without a token", []string{"-n", host, "-p", port, "uini", "root", "-r", t.TempDir(), "--new-pass-file", adminPW}},
	} {
		t.Run("usage "+tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := testenv.RunVcli(t, "", home.env, tc.args...)
			if code != 2 || stderr == "" {
				t.Errorf("vcli %s: exit %d, stdout %q, stderr %q; want exit 2 and a message", strings.Join(tc.args, " "), code, stdout, stderr)
			}
		})
	}
	// Unreachable server: exit 2 too.
	if _, stderr, code := testenv.RunVcli(t, "", home.env, "-n", "127.0.0.1", "-p", "1", "hello"); code != 2 || stderr == "" {
		t.Errorf("vcli hello to a closed port: exit %d, stderr %q; want 2", code, stderr)
	}

	// The password from the environment.
	stdout, _ = vcliRun(t, srv, &vcliHome{env: append(home.env, "VSERV_PASSWORD=bobs-password-here")}, "", 0, "-u", "bob", "hello")
	if !strings.HasPrefix(stdout, "hello from ") {
		t.Errorf("vcli -u bob with $VSERV_PASSWORD: %q", stdout)
	}
}

func TestVcliShellFromAPipe(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t)
	srv.AddUser("bob", "bob-password", false)
	home := newVcliHome(t)
	adminPW := writeFile(t, "admin.pw", testenv.AdminPass+"\n")
	id, err := srv.Dial().ID(context.Background())
	if err != nil {
		t.Fatalf("id: %v", err)
	}

	script := strings.Join([]string{
		"hello",
		"",
		"ver",
		"tout 120",
		`help "uadd"`,
		"ulist admin",
		"exit",
		"hello", // after exit: not run
	}, "\n") + "\n"
	stdout, stderr := vcliRun(t, srv, home, script, 0, "-u", "admin", "--pass-file", adminPW, "shell")
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(stdout, "\r\n", "\n"), "\n"), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^OK "hello" "` + id.ServerID + `" "[0-9a-f]{16}"$`),
		regexp.MustCompile(`^OK ".+" 1$`),
		regexp.MustCompile(`^OK 120$`),
		regexp.MustCompile(`^OK "uadd .*"$`),
		regexp.MustCompile(`^OK \[\{"enabled":true,"has2fa":false,"name":"admin","role":"admin"\}\]$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("vcli shell printed %d lines, want %d:\n%s\nstderr: %s", len(lines), len(want), stdout, stderr)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("shell line %d = %q, want %s", i+1, lines[i], re)
		}
	}

	// An ERR is printed, the run goes on, and the exit status is 1.
	script = "nosuch\nuadd\nlogin bob\nbob-password\nulist\nhello\n"
	stdout, _ = vcliRun(t, srv, home, script, 1, "shell")
	lines = strings.Split(strings.TrimRight(strings.ReplaceAll(stdout, "\r\n", "\n"), "\n"), "\n")
	want = []*regexp.Regexp{
		regexp.MustCompile(`^ERR proto ".*nosuch.*"$`),
		regexp.MustCompile(`^ERR state ".*"$`),
		regexp.MustCompile(`^logged in as bob \(user\)$`),
		regexp.MustCompile(`^ERR perm ".*"$`),
		regexp.MustCompile(`^OK "hello" `),
	}
	if len(lines) != len(want) {
		t.Fatalf("vcli shell printed %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("shell line %d = %q, want %s", i+1, lines[i], re)
		}
	}
}
