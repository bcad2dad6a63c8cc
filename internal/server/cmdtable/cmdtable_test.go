package cmdtable_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/server/cmdtable"
	"github.com/vserv/vserv/internal/wire"
)

func TestEveryCommandOfTheDefaultTableHasUsageAndAHandler(t *testing.T) {
	tab := cmdtable.Default()
	for _, name := range tab.Names() {
		cmd, found := tab.Lookup(name)
		if !found {
			t.Fatalf("Names lists %s, Lookup does not find it", name)
		}
		// "name args — what it does"; an alias shows its command's.
		synopsis, what, found := strings.Cut(cmd.Usage, " — ")
		if !found || what == "" || synopsis == "" {
			t.Errorf("%s: usage %q, want \"%s [args] — what it does\"", name, cmd.Usage, name)
			continue
		}
		if named, _ := tab.Lookup(strings.Fields(synopsis)[0]); named.Usage != cmd.Usage {
			t.Errorf("%s: usage %q names another command", name, cmd.Usage)
		}
		if cmd.MaxArgs < cmd.MinArgs {
			t.Errorf("%s: takes %d to %d arguments", name, cmd.MinArgs, cmd.MaxArgs)
		}
	}
}

// docCommands are the command names of the tables of docs/protocol.md
// §6 to §11: the first cell of every row, which names one or more commands
// in backquotes.
func docCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## 6. ")
	if start < 0 {
		t.Fatal("docs/protocol.md has no §6")
	}
	end := strings.Index(text[start:], "\n## 12. ")
	if end < 0 {
		end = len(text) - start
	}
	name := regexp.MustCompile("`([a-z0-9]+)`")
	var names []string
	for _, line := range strings.Split(text[start:start+end], "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		for _, m := range name.FindAllStringSubmatch(cell, -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	slices.Sort(names)
	return names
}

func TestDefaultTableHoldsExactlyTheCommandsOfTheProtocolDoc(t *testing.T) {
	got := cmdtable.Default().Names()
	want := docCommands(t)
	if len(want) < 40 {
		t.Fatalf("found only %d commands in docs/protocol.md: %v", len(want), want)
	}
	if !slices.Equal(got, want) {
		for _, n := range got {
			if !slices.Contains(want, n) {
				t.Errorf("%s is served but not in docs/protocol.md", n)
			}
		}
		for _, n := range want {
			if !slices.Contains(got, n) {
				t.Errorf("%s is in docs/protocol.md but not served", n)
			}
		}
	}
}

// flagged lists the commands of the default table with every flag of f.
func flagged(f cmdspec.Flags) []string {
	tab := cmdtable.Default()
	var out []string
	for _, name := range tab.Names() {
		if cmd, _ := tab.Lookup(name); cmd.Flags&f == f {
			out = append(out, name)
		}
	}
	return out
}

func TestSecretCommandsAreDeclaredOnceWhereClientsReadThem(t *testing.T) {
	want := []string{"aadd", "chpass", "ihost", "pass", "qr", "twofa", "u2fa", "uadd", "uini"}
	if got := flagged(cmdspec.Secret); !slices.Equal(got, want) {
		t.Errorf("secret commands %v, want %v", got, want)
	}
	tab := cmdtable.Default()
	for _, name := range tab.Names() {
		cmd, _ := tab.Lookup(name)
		if secret := cmd.Flags&cmdspec.Secret != 0; secret != cmdspec.IsSecret(name) {
			t.Errorf("%s: Secret %v in the table, cmdspec.IsSecret %v: a secret command must be declared in cmdspec.Core, where vcli reads it", name, secret, !secret)
		}
	}
}

func TestStateUserAddsExactlyTheFactorCommandsAndLogout(t *testing.T) {
	want := []string{"logout", "pauth", "qr", "twofa"}
	if got := flagged(cmdspec.UserState); !slices.Equal(got, want) {
		t.Errorf("UserState commands %v, want %v", got, want)
	}
	tab := cmdtable.Default()
	for _, name := range tab.Names() {
		if cmd, _ := tab.Lookup(name); cmd.Min == cmdspec.User && cmd.Flags&cmdspec.UserState == 0 {
			t.Errorf("%s has minimum user without UserState: it could never run", name)
		}
	}
}

func TestHandleRefusesDuplicatesAndIncompleteCommands(t *testing.T) {
	okCmd := server.Command{Spec: cmdspec.Spec{Min: cmdspec.Session, Usage: "zz — a test command"}}
	cases := []struct {
		name string
		do   func(t *server.Table)
	}{
		{"a core name", func(t *server.Table) { t.Handle("pass", withRun(okCmd)) }},
		{"a ledger name", func(t *server.Table) { t.Handle("rput", withRun(okCmd)) }},
		{"an alias's name", func(t *server.Table) { t.Handle("vers", withRun(okCmd)) }},
		{"twice", func(t *server.Table) { t.Handle("zz", withRun(okCmd)); t.Handle("zz", withRun(okCmd)) }},
		{"an alias taken", func(t *server.Table) { t.Alias("exit", "hello") }},
		{"an alias of nothing", func(t *server.Table) { t.Alias("zz", "nothing") }},
		{"no Run", func(t *server.Table) { t.Handle("zz", okCmd) }},
		{"no usage", func(t *server.Table) {
			c := withRun(okCmd)
			c.Usage = ""
			t.Handle("zz", c)
		}},
		{"no name", func(t *server.Table) { t.Handle("", withRun(okCmd)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tc.do(cmdtable.Default())
		})
	}
	tab := cmdtable.Default()
	tab.Handle("zz", withRun(okCmd))
	tab.Alias("zy", "zz")
	if _, found := tab.Lookup("zy"); !found {
		t.Error("an alias of a new command is not in the table")
	}
}

func withRun(c server.Command) server.Command {
	c.Run = func(context.Context, *server.Session, *wire.Request) (*server.Reply, error) { return server.OK() }
	return c
}
