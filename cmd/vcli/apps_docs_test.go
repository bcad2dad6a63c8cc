package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

// docExample is one tested shell block of a document: the lines after a
// `<!-- docs-test: NAME -->` marker, and the ```text blocks that follow it
// up to the next marker, each of which the script must print exactly.
type docExample struct {
	name   string
	script string
	wants  []string
}

var fence = regexp.MustCompile("(?s)```(sh|text)\n(.*?)```")

func docExamples(t *testing.T, doc string) []docExample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", doc))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "<!-- docs-test: ")[1:]
	var out []docExample
	for _, p := range parts {
		name, rest, _ := strings.Cut(p, " -->")
		ex := docExample{name: name}
		for _, m := range fence.FindAllStringSubmatch(rest, -1) {
			if m[1] == "sh" && ex.script == "" {
				ex.script = m[2]
			} else if m[1] == "text" {
				ex.wants = append(ex.wants, m[2])
			}
		}
		if ex.script == "" {
			t.Fatalf("%s: docs-test %s has no sh block", doc, name)
		}
		out = append(out, ex)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no docs-test blocks", doc)
	}
	return out
}

// runDocExamples runs each example with bash (set -euo pipefail) in one
// directory, with `vcli` and `bin/vcli` being the real binary pointed at the
// test server, and the admin's password in admin.pw.
func runDocExamples(t *testing.T, doc string) {
	e := newAppsEnv(t)
	dir := t.TempDir()
	host, port, _ := strings.Cut(e.srv.Addr, ":")
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -n %s -p %s \"$@\"\n", testenv.Bin(t, "vcli"), host, port)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "vcli"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.pw"), []byte(testenv.AdminPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ex := range docExamples(t, doc) {
		cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+ex.script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME=", "VSERV_PASSWORD=",
			"PATH="+filepath.Join(dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s, example %s: %v\n%s", doc, ex.name, err, out)
		}
		t.Logf("%s, example %s:\n%s", doc, ex.name, out)
		for _, want := range ex.wants {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s, example %s: the output does not contain the documented\n%s\nit is\n%s", doc, ex.name, want, out)
			}
		}
	}
}

func TestApplicationsDocExamplesRunAsDocumented(t *testing.T) {
	runDocExamples(t, "docs/applications.md")
}

func TestReadmeElectionRunsAsDocumented(t *testing.T) {
	runDocExamples(t, "README.md")
}
