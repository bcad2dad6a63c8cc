package replcmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

func TestVcliHostAddListDel(t *testing.T) {
	srv := testenv.Start(t)
	srv.AddUser(peerName, peerPass, false)
	_, _, key := peerKey(t)
	passFile := filepath.Join(t.TempDir(), "pass-at-b")
	if err := os.WriteFile(passFile, []byte("p-at-b-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := []string{"VSERV_PASSWORD=" + testenv.AdminPass}
	as := func(args ...string) []string { return append([]string{"-q", "-u", testenv.AdminName}, args...) }

	out, errOut, code := srv.Vcli("", admin, as("host", "add", "127.0.0.1:7001", "--role", "mirror", "--key", key,
		"--chains", "vote,donation", "--account", peerName, "--remote-user", "peer-a", "--remote-pass-file", passFile)...)
	testenv.WantExit(t, "vcli host add mirror", code, 0, out, errOut)
	if !strings.Contains(out, "added mirror 127.0.0.1:7001") {
		t.Errorf("vcli host add says %q", out)
	}
	out, errOut, code = srv.Vcli("", admin, as("host", "add", "example.com/log", "--role", "log", "--key", key)...)
	testenv.WantExit(t, "vcli host add log", code, 0, out, errOut)
	out, errOut, code = srv.Vcli("", admin, as("host", "add", "b:1", "--role", "friend", "--key", key)...)
	testenv.WantExit(t, "vcli host add with an unknown role", code, 1, out, errOut)
	if !strings.Contains(errOut, "invalid") || !strings.Contains(errOut, "unknown role") {
		t.Errorf("vcli host add --role friend: stderr %q, want the ERR invalid text", errOut)
	}

	longLog := "vserv/0123456789abcdef0123456789abcdef/a-long-chain-name"
	out, errOut, code = srv.Vcli("", admin, as("host", "add", longLog, "--role", "log", "--key", key)...)
	testenv.WantExit(t, "vcli host add log with a long origin", code, 0, out, errOut)

	out, errOut, code = srv.Vcli("", admin, as("host", "list")...)
	testenv.WantExit(t, "vcli host list", code, 0, out, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("vcli host list: %d lines, want a header, 3 peers and a line for the long one:\n%s", len(lines), out)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "PEER ROLE CHAINS HOPS SIZE LAG LAST-ERROR FORKS" {
		t.Errorf("header %q", lines[0])
	}
	wantRows := [][]string{
		{"example.com/log", "log", "-", "0", "0", "0", "/", "0s", "-", "0"},
		{longLog},
		{"log", "-", "0", "0", "0", "/", "0s", "-", "0"},
		{"127.0.0.1:7001", "mirror", "donation,vote", "0", "0", "0", "/", "0s", "-", "0"},
	}
	for i, want := range wantRows {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d = %q, want %q", i+1, got, want)
		}
	}
	// The long peer does not widen the PEER column: ROLE starts where the
	// header's does on every row, the long peer's indented one too.
	col := strings.Index(lines[0], "ROLE")
	for _, i := range []int{1, 3, 4} {
		if r := strings.Fields(lines[i][col:]); len(r) == 0 || lines[i][col-1] != ' ' || !strings.HasPrefix(lines[i][col:], r[0]) {
			t.Errorf("row %d %q: ROLE is not at column %d", i, lines[i], col)
		}
	}
	if !strings.HasPrefix(lines[3], "  ") {
		t.Errorf("the row under the long peer is not indented: %q", lines[3])
	}

	out, errOut, code = srv.Vcli("", admin, as("--json", "host", "list")...)
	testenv.WantExit(t, "vcli --json host list", code, 0, out, errOut)
	var doc struct {
		OK    bool `json:"ok"`
		Hosts []struct {
			Peer, Role, Key, Account string
			Chains                   []string
			LagEntries               uint64 `json:"lag_entries"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.OK || len(doc.Hosts) != 3 || doc.Hosts[2].Key != key {
		t.Fatalf("vcli --json host list = %s (%v)", out, err)
	}

	out, errOut, code = srv.Vcli("", admin, as("host", "del", "127.0.0.1:7001")...)
	testenv.WantExit(t, "vcli host del", code, 0, out, errOut)
	out, errOut, code = srv.Vcli("", admin, as("host", "del", "127.0.0.1:7001")...)
	testenv.WantExit(t, "vcli host del again", code, 1, out, errOut)
	out, _, _ = srv.Vcli("", admin, as("host", "list")...)
	if strings.Contains(out, "127.0.0.1:7001") || !strings.Contains(out, "example.com/log") {
		t.Errorf("after del, vcli host list:\n%s", out)
	}
}
