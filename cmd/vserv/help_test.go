package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestVservHelpDescribesEveryCommandAndFlagAsBuilt pins `vserv --help`:
// no promise about features "as they are built", every subcommand and every
// visible flag listed, and what the first stderr line means.
func TestVservHelpDescribesEveryCommandAndFlagAsBuilt(t *testing.T) {
	stdout, stderr, code := runVserv(t, "--help")
	if code != 0 {
		t.Fatalf("vserv --help: exit %d; stderr:\n%s", code, stderr)
	}
	for _, stale := range []string{"as they are built", "DESIGN", "§"} {
		if strings.Contains(stdout, stale) {
			t.Errorf("vserv --help says %q:\n%s", stale, stdout)
		}
	}
	for _, want := range []string{"keygen", "verify", "service", "serve", `"listening on HOST:PORT"`, "once the server will serve", "Exit status"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("vserv --help does not mention %q:\n%s", want, stdout)
		}
	}
	newRootCmd().Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && !strings.Contains(stdout, "--"+f.Name+" ") {
			t.Errorf("vserv --help does not list --%s", f.Name)
		}
	})
}
