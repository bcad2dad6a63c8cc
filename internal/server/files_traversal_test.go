package server_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// fileCommandCalls are the file commands that take a path, as raw requests
// for one path: every one of them must refuse every escape the same way.
var fileCommandCalls = []struct {
	name string
	args func(p string) []any
}{
	{"fput", func(p string) []any { return []any{p, uint64(3), testenv.Sum256([]byte("abc"))} }},
	{"file", func(p string) []any { return []any{p, uint64(3), testenv.Sum256([]byte("abc"))} }},
	{"fget", func(p string) []any { return []any{p} }},
	{"fget at an offset", func(p string) []any { return []any{p, uint64(1)} }},
	{"del", func(p string) []any { return []any{p} }},
	{"ls", func(p string) []any { return []any{p} }},
	{"lsd", func(p string) []any { return []any{p} }},
	{"cd", func(p string) []any { return []any{p} }},
	{"stat", func(p string) []any { return []any{p} }},
	{"mkdir", func(p string) []any { return []any{p} }},
	{"rmdir", func(p string) []any { return []any{p} }},
}

func commandOf(name string) string {
	if name == "fget at an offset" {
		return "fget"
	}
	return name
}

// TestFileTraversalMatrix runs every file command against every way out of a
// home that pyvserv let through, from the top of the home and after a cd, and
// proves that each is ERR perm and that nothing anywhere changed on disk.
func TestFileTraversalMatrix(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.MkdirAll(filepath.Join(outside, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"bob", "bobby"} {
		c := srv.LoginAs(u)
		mustUpload(t, c, "secret.txt", []byte(u+"'s secret"), nil)
		if err := c.Mkdir(ctx, "dir", nil); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	alice := srv.LoginAs("alice")
	mustUpload(t, alice, "own.txt", []byte("alice's file"), nil)
	if err := alice.Mkdir(ctx, "sub", nil); err != nil {
		t.Fatal(err)
	}
	// Links planted on disk by someone with shell access, as pyvserv's
	// tests did: out of the data directory, and into sibling homes.
	aliceHome, bobHome := srv.Home("alice"), srv.Home("bob")
	links := map[string]string{
		"out":       outside,
		"outfile":   filepath.Join(outside, "passwd"),
		"outrel":    "../../../../../../../../../../" + outside,
		"sib":       "../bob",
		"sibabs":    bobHome,
		"sibfile":   "../bob/secret.txt",
		"sub/up":    "../../bobby",
		"sub/loop1": "loop2",
		"sub/loop2": "loop1",
		"dangling":  "nothere",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(aliceHome, name)); err != nil {
			t.Fatal(err)
		}
	}

	escapes := []string{
		"..", "../", "../..", "../bob", "../bob/secret.txt", "../bobby/secret.txt", "../bob/dir",
		"./../bob/secret.txt", "sub/../../bob/secret.txt", "sub/../..",
		"/etc/passwd", "/", "/tmp", bobHome + "/secret.txt", outside + "/passwd",
		"out", "out/passwd", "out/dir", "outfile", "outrel/passwd",
		"sib", "sib/secret.txt", "sib/dir", "sibabs/secret.txt", "sibfile", "sub/up/secret.txt", "sub/up",
	}
	dataBefore := diskSnapshot(t, filepath.Join(srv.DataRoot, "files"))
	outsideBefore := diskSnapshot(t, outside)

	check := func(where string, paths []string) {
		for _, cmd := range fileCommandCalls {
			for _, p := range paths {
				_, err := alice.Call(ctx, commandOf(cmd.name), cmd.args(p)...)
				testenv.WantCode(t, err, wire.CodePerm, where+": "+cmd.name+" "+p)
			}
		}
	}
	check("at the top", escapes)
	if cwd, err := alice.Cd(ctx, "sub", nil); err != nil || cwd != "sub" {
		t.Fatalf("cd sub = %q, %v", cwd, err)
	}
	fromSub := []string{"../..", "../../bob/secret.txt", "../../bobby", "../out/passwd", "../sib/secret.txt", "up", "up/secret.txt", "../../../etc/passwd"}
	check("after cd sub", fromSub)
	// A link loop is refused without hanging; a link inside the home that
	// leads nowhere is simply not found.
	_, err := alice.Stat(ctx, "loop1", nil)
	testenv.WantCode(t, err, wire.CodePerm, "stat of a link loop")
	_, err = alice.Stat(ctx, "../dangling", nil)
	testenv.WantCode(t, err, wire.CodeNotFound, "stat of a dangling link")
	if cwd, err := alice.Pwd(ctx, nil); err != nil || cwd != "sub" {
		t.Fatalf("pwd after the matrix = %q, %v; want sub", cwd, err)
	}

	sameDisk(t, "the data directory's homes", dataBefore, diskSnapshot(t, filepath.Join(srv.DataRoot, "files")))
	sameDisk(t, "the directory outside the data directory", outsideBefore, diskSnapshot(t, outside))

	// Listings never show what links lead to outside the home.
	if _, err := alice.Cd(ctx, "..", nil); err != nil {
		t.Fatal(err)
	}
	top, err := alice.ListFiles(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := listNames(top), []string{"own.txt", "sub/"}; !slices.Equal(got, want) {
		t.Errorf("alice's ls = %q, want %q (links out of the home hidden)", got, want)
	}
}

// TestFileBobCannotReachBobby pins pyvserv's string-prefix bug: "bob" is a
// prefix of "bobby", and user ab could read and delete abc's files.
func TestFileBobCannotReachBobby(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	bobby := srv.LoginAs("bobby")
	mustUpload(t, bobby, "x", []byte("bobby's"), nil)
	bob := srv.LoginAs("bob")
	mustUpload(t, bob, "mine", []byte("bob's"), nil)
	if err := os.Symlink("../bobby", filepath.Join(srv.Home("bob"), "b2")); err != nil {
		t.Fatal(err)
	}
	before := diskSnapshot(t, srv.Home("bobby"))
	for _, p := range []string{"../bobby/x", "../bobby", "b2/x", "b2", "../bob/../bobby/x", "../bobbyx", "/../bobby/x"} {
		for _, cmd := range fileCommandCalls {
			_, err := bob.Call(ctx, commandOf(cmd.name), cmd.args(p)...)
			testenv.WantCode(t, err, wire.CodePerm, "bob: "+cmd.name+" "+p)
		}
	}
	sameDisk(t, "bobby's home", before, diskSnapshot(t, srv.Home("bobby")))
	got, err := bob.ListFiles(ctx, "", nil)
	if err != nil || !slices.Equal(listNames(got), []string{"mine"}) {
		t.Errorf("bob's ls = %q, %v; want only his own file", listNames(got), err)
	}
	_, err = bob.Download(ctx, "x", nil, &client.DownloadOptions{})
	testenv.WantCode(t, err, wire.CodeNotFound, "bob fget x (bobby's name, in bob's home)")
}
