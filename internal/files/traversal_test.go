package files

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// traversalSetup builds, under one temporary directory, a data root with the
// homes bob (the one under attack), bobby and bo (names that share a prefix
// with it), and an "outside" tree standing in for the host. bob's home holds
// links planted on disk that lead out of it.
func traversalSetup(t *testing.T) (root string, s *Service, h *Home) {
	root = t.TempDir()
	files := filepath.Join(root, "data", "files")
	mustWrite(t, filepath.Join(files, "bob", "a", "f.txt"), "bob's file")
	mustWrite(t, filepath.Join(files, "bob", "top.txt"), "top")
	mustWrite(t, filepath.Join(files, "bobby", "secret.txt"), "bobby's secret")
	mustWrite(t, filepath.Join(files, "bo", "secret.txt"), "bo's secret")
	mustWrite(t, filepath.Join(root, "outside", "etc", "passwd"), "root:x:0:0")
	home := filepath.Join(files, "bob")
	mustSymlink(t, filepath.Join(root, "outside", "etc"), filepath.Join(home, "etc"))
	mustSymlink(t, "/etc", filepath.Join(home, "hostetc"))
	mustSymlink(t, "../bobby", filepath.Join(home, "sib"))
	mustSymlink(t, "../bobby/secret.txt", filepath.Join(home, "sibfile"))
	mustSymlink(t, "../../bo", filepath.Join(home, "a", "deepsib"))
	s = newService(t, files, Quotas{})
	return root, s, newHome(t, s, "bob")
}

// TestTraversalMatrix runs every operation that takes a path against every
// way of naming something outside the home, or something malformed: each
// must give exactly the design's code and change nothing anywhere.
func TestTraversalMatrix(t *testing.T) {
	root, s, h := traversalSetup(t)
	payload := []byte("x")
	ops := []struct {
		name string
		do   func(cwd Cwd, p string) error
	}{
		{"cd", func(cwd Cwd, p string) error { _, err := h.Cd(cwd, p); return err }},
		{"stat", func(cwd Cwd, p string) error { _, err := h.Stat(cwd, p); return err }},
		{"ls", func(cwd Cwd, p string) error { _, err := h.List(cwd, p, false); return err }},
		{"lsd", func(cwd Cwd, p string) error { _, err := h.List(cwd, p, true); return err }},
		{"mkdir", func(cwd Cwd, p string) error { return h.Mkdir(cwd, p) }},
		{"rmdir", func(cwd Cwd, p string) error { return h.Rmdir(cwd, p) }},
		{"del", func(cwd Cwd, p string) error { return h.Delete(cwd, p) }},
		{"fput", func(cwd Cwd, p string) error {
			u, _, err := h.BeginUpload(cwd, p, 1, sum(payload), true, true)
			if err == nil {
				u.Discard()
			}
			return err
		}},
		{"fget", func(cwd Cwd, p string) error {
			d, err := h.OpenDownload(cwd, p, 0)
			if err == nil {
				d.Close()
			}
			return err
		}},
	}
	long := strings.Repeat("x", 256)
	attempts := []struct {
		cwd  Cwd
		p    string
		want wire.Code
	}{
		{"", "..", wire.CodePerm},
		{"", "../", wire.CodePerm},
		{"", "./../", wire.CodePerm},
		{"", "../bob", wire.CodePerm},
		{"", "../bob/top.txt", wire.CodePerm},
		{"", "../bobby", wire.CodePerm},
		{"", "../bobby/secret.txt", wire.CodePerm},
		{"", "../bo/secret.txt", wire.CodePerm},
		{"", "a/../../x", wire.CodePerm},
		{"", "a/../../bobby/secret.txt", wire.CodePerm},
		{"a", "../../bobby/secret.txt", wire.CodePerm},
		{"a", "../..", wire.CodePerm},
		{"", "/", wire.CodePerm},
		{"", "/etc/passwd", wire.CodePerm},
		{"a", "/etc", wire.CodePerm},
		{"", "etc", wire.CodePerm},         // absolute link to a directory outside
		{"", "etc/passwd", wire.CodePerm},  // ... and through it
		{"", "etc/newname", wire.CodePerm}, // ... even to something new
		{"", "hostetc", wire.CodePerm},     // absolute link to the host's /etc
		{"", "hostetc/passwd", wire.CodePerm},
		{"", "sib", wire.CodePerm}, // relative link to a sibling home
		{"", "sib/secret.txt", wire.CodePerm},
		{"", "sib/new.txt", wire.CodePerm},
		{"", "sibfile", wire.CodePerm}, // link to a sibling's file
		{"a", "deepsib/secret.txt", wire.CodePerm},
		{"", ".vserv-upload-0123", wire.CodePerm},
		{"a", ".vserv-upload-0123", wire.CodePerm},
		{"", "\x00", wire.CodeInvalid},
		{"", "a/f\x00.txt", wire.CodeInvalid},
		{"", "\xff\xfe", wire.CodeInvalid},
		{"", "a/\xc3", wire.CodeInvalid},
		{"", long, wire.CodeInvalid},
		{"", "a/" + long, wire.CodeInvalid},
		{"", "../" + long, wire.CodeInvalid},
		{"", "", wire.CodeInvalid},
		{"a", "", wire.CodeInvalid},
		{"", "nodir/x", wire.CodeNotFound},
		{"", "top.txt/x", wire.CodeNotFound},
		{"a", "nodir/x", wire.CodeNotFound},
	}
	before := snapshot(t, root)
	usedBefore, filesBefore := s.Usage("bob")
	for _, a := range attempts {
		for _, op := range ops {
			err := op.do(a.cwd, a.p)
			testenv.WantCode(t, err, a.want, op.name+" cwd="+string(a.cwd)+" path="+quote(a.p))
			if after := snapshot(t, root); after != before {
				t.Fatalf("%s cwd=%q path=%q changed the tree:\nbefore:\n%s\nafter:\n%s", op.name, a.cwd, quote(a.p), before, after)
			}
		}
	}
	if used, files := s.Usage("bob"); used != usedBefore || files != filesBefore {
		t.Errorf("usage changed: %d bytes %d files, was %d %d", used, files, usedBefore, filesBefore)
	}
}

func quote(p string) string {
	q := fmt.Sprintf("%q", p)
	if len(q) > 40 {
		q = fmt.Sprintf("%s... (%d bytes)", q[:30], len(p))
	}
	return q
}

// TestLinksInsideHomeWork pins that containment is about where a link leads,
// not about links as such: a link to a place inside the home is followed.
func TestLinksInsideHomeWork(t *testing.T) {
	root, _, h := traversalSetup(t)
	home := filepath.Join(root, "data", "files", "bob")
	mustSymlink(t, "a", filepath.Join(home, "toa"))
	mustSymlink(t, "../top.txt", filepath.Join(home, "a", "totop"))
	cwd, err := h.Cd("", "toa")
	if err != nil || cwd != "toa" {
		t.Fatalf("cd toa = %q, %v", cwd, err)
	}
	if got := string(get(t, h, cwd, "totop")); got != "top" {
		t.Errorf("read toa/totop = %q, want %q", got, "top")
	}
	if cwd, err = h.Cd(cwd, ".."); err != nil || cwd != "" {
		t.Errorf("cd .. from toa = %q, %v; want top", cwd, err)
	}
	list, err := h.List("", ".", false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	// etc, hostetc, sib and sibfile lead outside: not listed.
	if got, want := strings.Join(names, ","), "a,toa,top.txt"; got != want {
		t.Errorf("ls = %s, want %s", got, want)
	}
}
