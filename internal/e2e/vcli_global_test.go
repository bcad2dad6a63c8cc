package e2e_test

import (
	"crypto/ed25519"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

// vcli's global behaviour through the real binary: usage errors, its own
// help, --version, completion, --timeout, profiles, the JSON rule, and the
// server key of verify receipt from known_hosts.

func TestVcliMistypedCommandsAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // on stderr, or in the JSON error
	}{
		{[]string{"user", "lst"}, `vcli user has no subcommand "lst"; it has: 2fa, add, del, disable, enable, list, passwd, reset2fa`},
		{[]string{"verify", "rcpt", "x"}, `vcli verify has no subcommand "rcpt"; it has: chain, receipt`},
		{[]string{"user"}, "vcli user needs a subcommand: 2fa, add,"},
		{[]string{"hello", "extra"}, `vcli hello takes no arguments (got "extra"`},
		{[]string{"id", "a", "b"}, `vcli id takes no arguments (got "a b"`},
		{[]string{"user", "add"}, "vcli user add: wrong number of arguments (0 given; usage: vcli user add NAME"},
		{[]string{"verify", "receipt"}, "vcli verify receipt: wrong number of arguments (0 given; usage: vcli verify receipt FILE"},
		{[]string{"help", "nosuch"}, `vcli has no command "nosuch"`},
		{[]string{"nosuch"}, `unknown command "nosuch" for "vcli"`},
		{[]string{"--timeout", "0s", "hello"}, "--timeout 0s: want a positive duration"},
	} {
		name := strings.Join(tc.args, " ")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Port 1 is closed: none of these may try to connect.
			args := append([]string{"-p", "1"}, tc.args...)
			stdout, stderr, code := testenv.RunVcli(t, "", nil, args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("vcli %s: exit %d, stdout %q, stderr %q; want exit 2, no help on stdout, and %q", name, code, stdout, stderr, tc.want)
			}
			stdout, _, code = testenv.RunVcli(t, "", nil, append([]string{"--json"}, args...)...)
			var doc struct {
				OK    *bool  `json:"ok"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 2 || doc.OK == nil || *doc.OK || !strings.Contains(doc.Error, tc.want) {
				t.Errorf("vcli --json %s: exit %d, stdout %q (%v); want exit 2 and {ok: false, error: %q...}", name, code, stdout, err, tc.want)
			}
		})
	}
}

func TestVcliHelpIsLocalAndHelpServerAsksTheServer(t *testing.T) {
	t.Parallel()
	// Offline: no server at port 1.
	stdout, stderr, code := testenv.RunVcli(t, "", nil, "-p", "1", "help")
	if code != 0 || !strings.Contains(stdout, "Available Commands:") || !strings.Contains(stdout, "verify") || !strings.Contains(stdout, "help --server") {
		t.Errorf("vcli help: exit %d, stdout %q, stderr %q; want vcli's own command list", code, stdout, stderr)
	}
	stdout, _, code = testenv.RunVcli(t, "", nil, "-p", "1", "help", "verify", "receipt")
	if code != 0 || !strings.Contains(stdout, "vcli verify receipt FILE") {
		t.Errorf("vcli help verify receipt: exit %d, stdout %q; want that command's help", code, stdout)
	}

	srv := testenv.Start(t)
	home := newVcliHome(t)
	stdout, _ = vcliRun(t, srv, home, "", 0, "help", "--server")
	words := strings.Fields(stdout)
	if !contains(words, "hello") || !contains(words, "rput") || contains(words, "put") {
		t.Errorf("vcli help --server = %q, want the protocol commands (hello, rput, ...)", stdout)
	}
	stdout, _ = vcliRun(t, srv, home, "", 0, "help", "--server", "uadd")
	if !strings.HasPrefix(stdout, "uadd ") {
		t.Errorf("vcli help --server uadd = %q, want the usage of uadd", stdout)
	}
	vcliRun(t, srv, home, "", 2, "help", "--server", "uadd", "extra")

	stdout, _ = vcliRun(t, srv, home, "help\n", 0, "shell")
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(stdout, "\r\n", "\n"), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "server commands: ") || !strings.Contains(lines[0], " rput ") ||
		lines[1] != "shell commands: login NAME, put LOCAL [REMOTE], get REMOTE [LOCAL], help [NAME], exit" {
		t.Errorf("shell help printed %q, want the server's commands and the shell's own (put, get, ...)", lines)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestVcliVersionAndCompletion(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--version", "-V"} {
		stdout, stderr, code := testenv.RunVcli(t, "", nil, flag)
		if code != 0 || !strings.HasPrefix(stdout, "vcli ") || strings.Count(stdout, "\n") != 1 || len(stdout) < len("vcli x\n") {
			t.Errorf("vcli %s: exit %d, stdout %q, stderr %q; want one line \"vcli VERSION\"", flag, code, stdout, stderr)
		}
	}
	stdout, _, code := testenv.RunVcli(t, "", nil, "completion", "bash")
	if code != 0 || !strings.Contains(stdout, "__start_vcli") {
		t.Errorf("vcli completion bash: exit %d, %d bytes; want a bash completion script", code, len(stdout))
	}
	stdout, _, code = testenv.RunVcli(t, "", nil, "__complete", "user", "re")
	if code != 0 || !strings.HasPrefix(stdout, "reset2fa\t") {
		t.Errorf("completing \"vcli user re\": exit %d, %q; want reset2fa", code, stdout)
	}
}

// TestVcliNoSignOnFailsFastWithAClearMessage points vcli at peers that are
// not vserv servers: one says nothing, one sends garbage.
func TestVcliNoSignOnFailsFastWithAClearMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		greet []byte
	}{
		{"silent", nil},
		{"garbage", []byte("SSH-2.0-OpenSSH_9.6\r\nthis is not vserv at all\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					if tc.greet != nil {
						c.Write(tc.greet)
					}
				}
			}()
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			start := time.Now()
			stdout, stderr, code := testenv.RunVcli(t, "", nil, "-p", port, "--timeout", "1s", "hello")
			elapsed := time.Since(start)
			want := "no vserv sign-on from 127.0.0.1:" + port + " (is this a vserv server?)"
			if code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("vcli hello to a %s peer: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.name, code, stdout, stderr, want)
			}
			if elapsed > 8*time.Second {
				t.Errorf("vcli --timeout 1s took %s to give up", elapsed)
			}
		})
	}
	// The default is 10 s, not the minute a call may take.
	stdout, _, _ := testenv.RunVcli(t, "", nil, "--help")
	if !strings.Contains(stdout, "--timeout duration") || !strings.Contains(stdout, "(default 10s)") {
		t.Errorf("vcli --help does not show --timeout with its 10 s default:\n%s", stdout)
	}
}

// TestVcliVerifyReceiptTakesTheKeyFromKnownHosts runs the README's ledger
// tour as written: no sed, no --server-key.
func TestVcliVerifyReceiptTakesTheKeyFromKnownHosts(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	srv.AddUser("bob", "bobs-password-here", false)
	home := newVcliHome(t)
	adminPW := writeFile(t, "admin.pw", testenv.AdminPass+"\n")
	bobPW := writeFile(t, "bob.pw", "bobs-password-here\n")
	receipt := filepath.Join(t.TempDir(), "note.receipt")

	vcliRun(t, srv, home, "", 0, "chain", "list")
	vcliRun(t, srv, home, "", 0, "-u", "admin", "--pass-file", adminPW, "chain", "create", "notes", "--public", "--pow-bits", "16")
	vcliRun(t, srv, home, "", 0, "-u", "admin", "--pass-file", adminPW, "chain", "grant", "bob", "notes", "write")
	vcliRun(t, srv, home, "", 0, "-u", "bob", "--pass-file", bobPW, "rec", "put", "notes", "--type", "note",
		"--payload", `{"text": "hello", "note": "José, نعم, 是"}`, "--receipt-out", receipt)

	// vcli id --key prints the key alone.
	stdout, _ := vcliRun(t, srv, home, "", 0, "id", "--key")
	key := srv.Dial().Identity()
	if want := secure.PublicKeyText(key) + "\n"; stdout != want {
		t.Errorf("vcli id --key = %q, want %q", stdout, want)
	}

	// With -n/-p: the key recorded for that address.
	stdout, _ = vcliRun(t, srv, home, "", 0, "verify", "receipt", receipt)
	if !strings.HasPrefix(stdout, "ok: record ") {
		t.Errorf("vcli -n -p verify receipt = %q, want ok", stdout)
	}
	// Without them: the key whose server-id is the receipt's origin.
	stdout, stderr, code := testenv.RunVcli(t, "", home.env, "verify", "receipt", receipt)
	if code != 0 || !strings.HasPrefix(stdout, "ok: record ") {
		t.Errorf("vcli verify receipt (key by server-id): exit %d, stdout %q, stderr %q; want ok", code, stdout, stderr)
	}
	// An empty known_hosts has no key for it: a usage error that says what to give.
	stdout, stderr, code = testenv.RunVcli(t, "", nil, "verify", "receipt", receipt)
	if code != 2 || !strings.Contains(stderr, "give --server-key KEY") || !strings.Contains(stderr, srv.Dial().ServerID()) {
		t.Errorf("vcli verify receipt with no known host: exit %d, stdout %q, stderr %q; want exit 2 naming the server-id and --server-key", code, stdout, stderr)
	}
	// known_hosts holds another key for the address: that key is used, and fails.
	other := newVcliHome(t)
	otherKey, _, _ := ed25519.GenerateKey(nil)
	os.MkdirAll(filepath.Dir(other.knownHosts()), 0o700)
	os.WriteFile(other.knownHosts(), []byte(srv.Addr+" "+secure.PublicKeyText(otherKey)+"\n"), 0o600)
	_, stderr = vcliRun(t, srv, other, "", 1, "verify", "receipt", receipt)
	if !strings.Contains(stderr, "does NOT verify") {
		t.Errorf("verify receipt with a wrong recorded key: stderr %q, want does NOT verify", stderr)
	}
	// A malformed receipt does not verify (exit 1), with or without a key.
	broken := writeFile(t, "broken.receipt", "not a receipt\n")
	vcliRun(t, srv, home, "", 1, "verify", "receipt", broken)

	vcliRun(t, srv, home, "", 0, "verify", "chain", "notes")

	// The JSON rule: rec proof without -o has no "file"; with it, the file.
	stdout, _ = vcliRun(t, srv, home, "", 0, "--json", "rec", "proof", "notes", "0")
	if doc := jsonDoc(t, stdout); doc["receipt"] == nil || doc["file"] != nil {
		t.Errorf("vcli --json rec proof notes 0 = %v, want a receipt and no file", doc)
	}
	saved := filepath.Join(t.TempDir(), "again.receipt")
	stdout, _ = vcliRun(t, srv, home, "", 0, "--json", "rec", "proof", "notes", "0", "-o", saved)
	if doc := jsonDoc(t, stdout); doc["file"] != saved {
		t.Errorf("vcli --json rec proof -o = %v, want file %s", doc, saved)
	}
}

func TestVcliProfileSuppliesServerAndLogin(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	srv.InitAdmin()
	home := newVcliHome(t)
	host, port, _ := net.SplitHostPort(srv.Addr)
	dir := filepath.Join(home.dir, ".config", "vserv")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "admin.pw"), []byte(testenv.AdminPass+"\n"), 0o600)
	writeProfile := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	profiles := `[default]
host = "` + host + `"
port = ` + port + `

[ops]
host = "` + host + `"
port = ` + port + `
user = "admin"
pass-file = "admin.pw" # relative to this file
`
	writeProfile(profiles)
	run := func(env []string, wantCode int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := testenv.RunVcli(t, "", append(append([]string{}, home.env...), env...), args...)
		if code != wantCode {
			t.Fatalf("vcli %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}
	// [default] gives the server: no -n/-p.
	if stdout, _ := run(nil, 0, "hello"); !strings.HasPrefix(stdout, "hello from "+srv.Addr) {
		t.Errorf("vcli hello with [default] = %q", stdout)
	}
	// A named profile logs in; so does $VSERV_PROFILE.
	if stdout, _ := run(nil, 0, "--profile", "ops", "user", "list"); !strings.Contains(stdout, "admin") {
		t.Errorf("vcli --profile ops user list = %q, want the accounts", stdout)
	}
	run([]string{"VSERV_PROFILE=ops"}, 0, "user", "list")
	// Flags override the profile: another port, another user.
	run([]string{"VSERV_PROFILE=ops"}, 2, "-p", "1", "user", "list")
	if _, stderr := run(nil, 2, "--profile", "ops", "-u", "bob", "user", "list"); !strings.Contains(stderr, "no password") {
		t.Errorf("-u bob over a profile for admin: stderr %q, want no password (the profile's pass file is admin's)", stderr)
	}
	// --profile wins over $VSERV_PROFILE.
	run([]string{"VSERV_PROFILE=nosuch"}, 0, "--profile", "ops", "hello")

	// The production-mode hints name the server as it was reached.
	stdout, _ := run(nil, 0, "--profile", "ops", "user", "add", "carol", "--new-pass-file", filepath.Join(dir, "admin.pw"))
	if !strings.Contains(stdout, "added user carol") {
		t.Errorf("user add via profile: %q", stdout)
	}

	for _, tc := range []struct {
		name, file string
		args       []string
		want       string
	}{
		{"unknown profile", profiles, []string{"--profile", "prod", "hello"}, "has no profile [prod] (it has: default, ops)"},
		{"unknown key", profiles + "pass_file = \"x\"\n", []string{"hello"}, "unknown key ops.pass_file"},
		{"bad port", "[default]\nport = \"abc\"\n", []string{"hello"}, "config.toml"},
		{"not TOML", "[default\n", []string{"hello"}, "config.toml"},
	} {
		writeProfile(tc.file)
		if _, stderr := run(nil, 2, tc.args...); !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: stderr %q, want %q", tc.name, stderr, tc.want)
		}
	}
	// vcli's own help needs no profile, not even a readable one.
	run(nil, 0, "help", "user")
	run(nil, 0, "completion", "bash")
	writeProfile(profiles)
	if _, stderr := run([]string{"VSERV_PROFILE=prod"}, 2, "hello"); !strings.Contains(stderr, "has no profile [prod]") {
		t.Errorf("$VSERV_PROFILE=prod: stderr %q, want it to say there is no such profile", stderr)
	}
	// No file at all: a named profile is an error, the default is not.
	os.Remove(filepath.Join(dir, "config.toml"))
	run(nil, 2, "--profile", "ops", "-p", port, "hello")
	run(nil, 0, "-p", port, "hello")
}

func TestVcliProductionHintsNameTheServerUsed(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithRealKDF(), testenv.WithArgs("-P"))
	home := newVcliHome(t)
	_, port, _ := net.SplitHostPort(srv.Addr)
	pw := writeFile(t, "admin.pw", "choose-a-long-admin-password\n")
	stdout, _ := vcliRun(t, srv, home, "", 0, "uini", "admin", "--new-pass-file", pw, "-r", srv.DataRoot)
	if want := "enroll a second factor with `vcli -p " + port + " -u admin user 2fa --code "; !strings.Contains(stdout, want) {
		t.Errorf("vcli uini in production printed %q, want the hint %q", stdout, want)
	}
}

func TestVcliJSONLeavesAbsentValuesOut(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	srv.InitAdmin()
	home := newVcliHome(t)
	admin := []string{"-u", "admin", "--pass-file", writeFile(t, "admin.pw", testenv.AdminPass+"\n"), "--json"}
	newPW := writeFile(t, "new.pw", "a-new-password\n")
	note := writeFile(t, "note.txt", "hello\n")
	doc := func(args ...string) map[string]any {
		t.Helper()
		stdout, _ := vcliRun(t, srv, home, "", 0, append(append([]string{}, admin...), args...)...)
		var m map[string]any
		if err := json.Unmarshal([]byte(stdout), &m); err != nil {
			t.Fatalf("vcli %s: %v\n%s", strings.Join(args, " "), err, stdout)
		}
		return m
	}
	for _, tc := range []struct {
		args    []string
		absent  []string
		present []string
	}{
		{[]string{"id"}, []string{"rotation_receipts"}, []string{"server_id", "public_key", "fingerprint"}},
		{[]string{"user", "add", "dave", "--new-pass-file", newPW}, []string{"enrollment_code"}, []string{"name", "role"}},
		{[]string{"chain", "create", "plain"}, []string{"schema"}, []string{"name", "public", "pow_bits"}},
		{[]string{"file", "put", note, "note.txt"}, nil, []string{"files"}},
		{[]string{"file", "stat", "note.txt"}, []string{"mtime_ms"}, []string{"mtime", "size"}},
	} {
		m := doc(tc.args...)
		for _, k := range tc.absent {
			if _, ok := m[k]; ok {
				t.Errorf("vcli --json %s has %q = %v; an absent value is left out", strings.Join(tc.args, " "), k, m[k])
			}
		}
		for _, k := range tc.present {
			if _, ok := m[k]; !ok {
				t.Errorf("vcli --json %s lacks %q: %v", strings.Join(tc.args, " "), k, m)
			}
		}
	}
	// Listings use the same name: mtime, unix milliseconds.
	stdout, _ := vcliRun(t, srv, home, "", 0, append(append([]string{}, admin...), "file", "ls")...)
	if !strings.Contains(stdout, `"mtime": 1`) || strings.Contains(stdout, "mtime_ms") {
		t.Errorf("vcli --json file ls = %s, want mtime in unix ms", stdout)
	}
}

func TestVcliReset2FAWithoutAFactorSaysSo(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t)
	srv.AddUser("bob", "bob-password", false)
	home := newVcliHome(t)
	pw := writeFile(t, "admin.pw", testenv.AdminPass+"\n")
	_, stderr := vcliRun(t, srv, home, "", 1, "-u", "admin", "--pass-file", pw, "user", "reset2fa", "bob")
	if want := "vcli: ERR notfound: bob has no second factor to remove\n"; !strings.HasSuffix(stderr, want) {
		t.Errorf("vcli user reset2fa bob (no factor): stderr %q, want %q", stderr, want)
	}
	stdout, _ := vcliRun(t, srv, home, "", 1, "-u", "admin", "--pass-file", pw, "--json", "user", "reset2fa", "bob")
	var doc jsonErr
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Code != "notfound" || doc.Error != "bob has no second factor to remove" {
		t.Errorf("--json: %q (%v), want code notfound with the text", stdout, err)
	}
}

// A second uini, once the server has deleted its setup token, says why the
// token is missing instead of asking for a data directory it was given.
func TestVcliUiniAfterTheFirstAdminSaysTheTokenIsGone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ledger.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := testenv.RunVcli(t, "pw-long-enough\n", nil, "-p", "1", "uini", "admin", "-r", dir)
	if want := "no setup token in " + dir + ": it is gone once the first admin exists (log in instead)"; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("vcli uini with no token: exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}
}
