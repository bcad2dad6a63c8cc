package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// appsEnv is a real server with the first admin made and throttling off,
// and vcli run against it as the real binary.
type appsEnv struct {
	t   *testing.T
	srv *testenv.Server
	dir string
}

func newAppsEnv(t *testing.T) *appsEnv {
	t.Helper()
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	e := &appsEnv{t: t, srv: testenv.Start(t), dir: t.TempDir()}
	c := e.srv.AdminClient()
	defer c.Close()
	if _, err := c.Throttle(context.Background(), "off"); err != nil {
		t.Fatalf("throt off: %v", err)
	}
	return e
}

var asAdmin = []string{"VSERV_PASSWORD=" + testenv.AdminPass}

// vcli runs vcli as the admin and checks the exit status.
func (e *appsEnv) vcli(wantCode int, args ...string) (string, string) {
	e.t.Helper()
	out, errOut, code := e.srv.Vcli("", asAdmin, append([]string{"-u", testenv.AdminName}, args...)...)
	if code != wantCode {
		e.t.Fatalf("vcli %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
	}
	return out, errOut
}

// serverKey is the server's public key as `vcli id` prints it.
func (e *appsEnv) serverKey() string {
	c := e.srv.Dial()
	defer c.Close()
	return secure.PublicKeyText(c.Identity())
}

func (e *appsEnv) path(name string) string { return filepath.Join(e.dir, name) }

var eidLine = regexp.MustCompile(`(?m)^eid ([a-z2-7]{16})$`)

func eidOf(t *testing.T, out string) string {
	t.Helper()
	m := eidLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no eid line in:\n%s", out)
	}
	return m[1]
}

func TestVcliKeyNewWritesAPrivateFileAndPrintsThePublicKey(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k")
	out, errOut, code := testenv.RunVcli(t, "", nil, "key", "new", "-o", f)
	if code != 0 {
		t.Fatalf("key new: exit %d: %s", code, errOut)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9+/]{43}=\n$`).MatchString(out) {
		t.Fatalf("key new printed %q, want one public key text", out)
	}
	st, err := os.Stat(f)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v, want 0600", err, st.Mode())
	}
	if _, _, code := testenv.RunVcli(t, "", nil, "key", "new", "-o", f); code != 2 {
		t.Fatalf("key new over an existing file: exit %d, want 2", code)
	}
	if _, errOut, code := testenv.RunVcli(t, "", nil, "key", "new"); code != 2 || !strings.Contains(errOut, "-o FILE") {
		t.Fatalf("key new without -o: exit %d, want 2 naming -o FILE: %s", code, errOut)
	}
}

func TestVcliUIDNewCheckProvesTheTextAndRefusesAnotherUID(t *testing.T) {
	dir := t.TempDir()
	kf, of := filepath.Join(dir, "pub.key"), filepath.Join(dir, "alice.opening")
	pub, errOut, code := testenv.RunVcli(t, "", nil, "uid", "keygen", "-o", kf)
	if code != 0 {
		t.Fatalf("uid keygen: exit %d: %s", code, errOut)
	}
	pub = strings.TrimSpace(pub)
	if st, err := os.Stat(kf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("uid key file: %v, want mode 0600", err)
	}
	out, errOut, code := testenv.RunVcli(t, "", nil, "uid", "new", "--publisher", pub, "Alice Example", "-o", of)
	if code != 0 {
		t.Fatalf("uid new: exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`(?m)^uid    (u[a-z2-7]{32})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("uid new printed no uid:\n%s", out)
	}
	out, errOut, code = testenv.RunVcli(t, "", nil, "uid", "check", m[1], of)
	if code != 0 || out != "ok: "+m[1]+" stands for \"Alice Example\"\n" {
		t.Fatalf("uid check: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	other := "u" + strings.Repeat("a", 32)
	_, errOut, code = testenv.RunVcli(t, "", nil, "uid", "check", other, of)
	if code != 1 || !strings.Contains(errOut, "opening does not match") {
		t.Fatalf("uid check of another uid: exit %d, want 1 with a mismatch: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"uid", "new", "Alice"},                    // no --publisher
		{"uid", "new", "--publisher", "nope", "A"}, // bad key
		{"uid", "check", m[1]},                     // no opening file
		{"uid", "open", "donation", "0"},           // no --key
		{"uid", "keygen"},                          // no -o
		{"uid", "check", m[1], filepath.Join(dir, "missing")},
	} {
		if _, _, code := testenv.RunVcli(t, "", nil, args...); code != 2 {
			t.Errorf("vcli %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestVcliRecountOfACraftedChainNamesTheSeqAndRuleOfARefusedEvent(t *testing.T) {
	e := newAppsEnv(t)
	e.vcli(0, "chain", "create", "crafted", "--public")
	e.vcli(0, "rec", "put", "crafted", "--type", "ballot.open", "--payload", `{"ballot":"b1","question":"Colour?","choices":["red","blue"]}`)
	out, _ := e.vcli(0, "recount", "crafted", "--schema", "vote")
	if !strings.Contains(out, "ok: replayed 1 entries with the vote rules; the chain has no schema") {
		t.Fatalf("recount of a good crafted chain:\n%s", out)
	}
	// A cast by a voter nobody registered: the server keeps it (no schema),
	// the rules refuse it.
	e.vcli(0, "rec", "put", "crafted", "--type", "vote.cast", "--payload", `{"eid":"aaaaaaaaaaaaaaaa","ballot":"b1","choice":"red"}`)
	out, errOut := e.vcli(1, "recount", "crafted", "--schema", "vote")
	want := "chain crafted seq 1: recorded event refused by rule registered: vote.cast: voter aaaaaaaaaaaaaaaa is not registered in this chain\n"
	if out != want {
		t.Fatalf("recount stdout:\n%q\nwant\n%q\nstderr: %s", out, want, errOut)
	}
	out, _ = e.vcli(1, "--json", "recount", "crafted", "--schema", "vote")
	if !strings.Contains(out, `"rule": "registered"`) || !strings.Contains(out, `"ok": false`) {
		t.Fatalf("recount --json:\n%s", out)
	}
	e.vcli(2, "recount", "crafted") // no schema, no --schema
	e.vcli(0, "chain", "create", "ruled", "--public", "--schema", "vote")
	e.vcli(2, "recount", "ruled", "--schema", "vote")    // has one already
	e.vcli(2, "recount", "crafted", "--schema", "poll")  // no such schema
	e.vcli(2, "recount")                                 // no chain
	e.vcli(2, "recount", "crafted", "--from", "nowhere") // not HOST:PORT
	e.vcli(1, "recount", "nosuch")
}
