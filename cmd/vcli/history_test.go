package main

import (
	"os/exec"
	"strings"
	"testing"
)

func TestHistoryLeavesOutTheLinesOfSecretCommands(t *testing.T) {
	cases := []struct {
		line string
		kept bool
	}{
		{"pass hunter2", false},
		{"chpass old new", false},
		{"uini admin pw token", false},
		{"uadd bob pw", false},
		{"aadd root pw", false},
		{"twofa 123456", false},
		{"qr ABCD-EFGH", false},
		{"u2fa bob reset", false},
		{"  pass padded", false},
		{"ihost example.org", false}, // ihost add carries the password we log in with there
		{"user bob", true},
		{"rput notes {}", true},
		{"help pass", true},
		{"ls", true},
	}
	for _, tc := range cases {
		h := &history{} // no path: memory only
		h.Add(tc.line)
		if kept := len(h.lines) == 1; kept != tc.kept {
			t.Errorf("history after %q: %q, want kept=%v", tc.line, h.lines, tc.kept)
		}
	}
}

// vcli reads which commands are secret from the same declarations the
// server's table is built from (internal/server/cmdspec), which must not
// bring the server's storage into the client binary.
func TestVcliDoesNotLinkTheServersStorage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, bad := range []string{"go.etcd.io/bbolt", "internal/ledger", "internal/files", "internal/auth", "vserv/internal/server"} {
			if strings.Contains(pkg, bad) && pkg != "github.com/vserv/vserv/internal/server/cmdspec" {
				t.Errorf("vcli depends on %s", pkg)
			}
		}
	}
}
