package e2e_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVcliReadmeTourRunsInItsScratchDirectory pins the README's layout:
// the two set-up commands at the top stay exactly `go run ./cmd/vserv` and
// `make test`; the tour starts by entering its scratch directory, which
// .gitignore covers, so that every file it writes (password files, receipts,
// a PNG holding a 2FA secret) lands there and never in the source tree; and
// the README points at no document outside the repository.
func TestVcliReadmeTourRunsInItsScratchDirectory(t *testing.T) {
	root := filepath.Join("..", "..")
	readme := readFile(t, filepath.Join(root, "README.md"))
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("README has %d sh blocks, want the set-up and the tour", len(blocks))
	}
	var setup []string
	for _, l := range strings.Split(strings.TrimSpace(blocks[0][1]), "\n") {
		cmd, _, _ := strings.Cut(l, "#")
		setup = append(setup, strings.TrimSpace(cmd))
	}
	if strings.Join(setup, "\n") != "go run ./cmd/vserv\nmake test" {
		t.Errorf("the set-up block runs %q, want exactly `go run ./cmd/vserv` and `make test`", setup)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(blocks[1][1]), "\n")
	if cmd, _, _ := strings.Cut(first, "#"); strings.TrimSpace(cmd) != "mkdir -p tour && cd tour" {
		t.Errorf("the tour starts with %q, want `mkdir -p tour && cd tour`", first)
	}
	// Every file the tour writes is a plain relative name: it stays in tour/.
	writes := regexp.MustCompile(`(?:>|-o|--receipt-out)\s+(\S+)`)
	for _, b := range blocks[1:] {
		for _, m := range writes.FindAllStringSubmatch(b[1], -1) {
			if name := m[1]; filepath.IsAbs(name) || strings.Contains(name, "..") || strings.HasPrefix(name, "~") {
				t.Errorf("the tour writes %q, outside its scratch directory", name)
			}
		}
	}
	if !regexp.MustCompile(`(?m)^/?tour/?$`).MatchString(readFile(t, filepath.Join(root, ".gitignore"))) {
		t.Errorf(".gitignore does not cover the tour's scratch directory tour/")
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md found (%v)", err)
	}
	for _, doc := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		if text := readFile(t, doc); strings.Contains(text, "../shared") || strings.Contains(text, "DESIGN") {
			t.Errorf("%s refers to the design document outside the repository; cite docs/ instead", doc)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
