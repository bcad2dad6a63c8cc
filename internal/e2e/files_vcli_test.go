package e2e_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
)

func writeTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVcliFilePutLsGet(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	files := map[string][]byte{
		"a.txt":            []byte("hello\n"),
		"sub/b.bin":        testenv.FileBytes(200_000, 8),
		"sub/deeper/empty": {},
		"sub/ünï ćödé.txt": []byte("non-ASCII\n"),
	}
	writeTree(t, tree, files)
	if err := os.Symlink("/etc", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := srv.VcliAs("alice", "file", "put", "-R", tree, "docs")
	testenv.WantExit(t, "put -R", code, 0, out, errOut)
	for name := range files {
		if !strings.Contains(out, "-> docs/"+name+" (") {
			t.Errorf("put -R output does not name docs/%s:\n%s", name, out)
		}
	}
	if _, err := os.Lstat(filepath.Join(srv.Home("alice"), "docs", "link")); err == nil {
		t.Error("put -R uploaded a symbolic link")
	}

	out, errOut, code = srv.VcliAs("alice", "file", "ls", "docs")
	testenv.WantExit(t, "ls docs", code, 0, out, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "  a.txt") || !strings.HasSuffix(lines[1], "  sub/") || !strings.HasPrefix(lines[0], "6  ") {
		t.Errorf("ls docs =\n%s\nwant a.txt (6 bytes) then sub/", out)
	}
	out, errOut, code = srv.VcliAs("alice", "--json", "file", "ls", "docs/sub")
	testenv.WantExit(t, "ls --json", code, 0, out, errOut)
	var listing struct {
		OK      bool `json:"ok"`
		Entries []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
			Dir  bool   `json:"dir"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &listing); err != nil || !listing.OK || len(listing.Entries) != 3 {
		t.Fatalf("ls --json docs/sub = %s (%v)", out, err)
	}
	if e := listing.Entries[0]; e.Name != "b.bin" || e.Size != 200_000 || e.Dir {
		t.Errorf("first entry %+v, want b.bin of 200000 bytes", e)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "lsd", "docs/sub")
	testenv.WantExit(t, "lsd", code, 0, out, errOut)
	if strings.TrimSpace(out) == "" || strings.Count(out, "\n") != 1 || !strings.HasSuffix(strings.TrimSpace(out), "deeper/") {
		t.Errorf("lsd docs/sub =\n%s\nwant only deeper/", out)
	}

	got := filepath.Join(dir, "got")
	out, errOut, code = srv.VcliAs("alice", "file", "get", "-R", "docs", got)
	testenv.WantExit(t, "get -R", code, 0, out, errOut)
	for name, want := range files {
		b, err := os.ReadFile(filepath.Join(got, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("get -R: %s differs (%v)", name, err)
		}
	}

	one := filepath.Join(dir, "one.txt")
	out, errOut, code = srv.VcliAs("alice", "file", "get", "docs/a.txt", one)
	testenv.WantExit(t, "get", code, 0, out, errOut)
	if b, _ := os.ReadFile(one); string(b) != "hello\n" {
		t.Errorf("get docs/a.txt wrote %q", b)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "get", "docs/a.txt", "-")
	testenv.WantExit(t, "get to stdout", code, 0, out, errOut)
	if out != "hello\n" {
		t.Errorf("get docs/a.txt - printed %q", out)
	}

	// Exit statuses: ERR is 1, a usage mistake 2.
	out, errOut, code = srv.VcliAs("alice", "file", "put", filepath.Join(tree, "a.txt"), "docs/a.txt")
	testenv.WantExit(t, "put onto an existing file", code, 1, out, errOut)
	if !strings.Contains(errOut, "ERR exists") {
		t.Errorf("stderr %q does not say ERR exists", errOut)
	}
	writeTree(t, dir, map[string][]byte{"new.txt": []byte("new\n")})
	out, errOut, code = srv.VcliAs("alice", "file", "put", "--force", "--backup", filepath.Join(dir, "new.txt"), "docs/a.txt")
	testenv.WantExit(t, "put --force --backup", code, 0, out, errOut)
	if b, _ := os.ReadFile(filepath.Join(srv.Home("alice"), "docs", "a.txt~")); string(b) != "hello\n" {
		t.Errorf("backup holds %q, want the old content", b)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "put", filepath.Join(dir, "new.txt"), "docs/")
	testenv.WantExit(t, "put into a directory", code, 0, out, errOut)
	if !strings.Contains(out, "-> docs/new.txt") {
		t.Errorf("put into docs/ went to: %s", out)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "get", "docs/a.txt", one)
	testenv.WantExit(t, "get onto an existing local file", code, 2, out, errOut)
	out, errOut, code = srv.VcliAs("alice", "--json", "file", "get", "nope", filepath.Join(dir, "nope"))
	testenv.WantExit(t, "get of a missing file", code, 1, out, errOut)
	var failure struct {
		OK   bool   `json:"ok"`
		Code string `json:"code"`
	}
	if err := json.Unmarshal([]byte(out), &failure); err != nil || failure.OK || failure.Code != "notfound" {
		t.Errorf("--json get nope = %s, want ok false, code notfound", out)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "put", filepath.Join(dir, "missing"))
	testenv.WantExit(t, "put of a missing local file", code, 2, out, errOut)
	out, errOut, code = srv.VcliAs("alice", "file", "put", tree)
	testenv.WantExit(t, "put of a directory without -R", code, 2, out, errOut)
	out, errOut, code = srv.VcliAs("alice", "file", "put")
	testenv.WantExit(t, "put without arguments", code, 2, out, errOut)
	out, errOut, code = srv.VcliAs("alice", "file", "get", "../bob/x", filepath.Join(dir, "x"))
	testenv.WantExit(t, "get outside the home", code, 1, out, errOut)

	// cd, pwd, stat, mkdir, rmdir, del.
	out, errOut, code = srv.VcliAs("alice", "file", "cd", "docs/sub")
	testenv.WantExit(t, "cd", code, 0, out, errOut)
	if out != "/docs/sub\n" {
		t.Errorf("cd docs/sub printed %q", out)
	}
	out, errOut, code = srv.VcliAs("alice", "--json", "file", "pwd")
	testenv.WantExit(t, "pwd", code, 0, out, errOut)
	if !strings.Contains(out, `"cwd": ""`) {
		t.Errorf("pwd in a new connection = %s, want the top", out)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "stat", "docs/sub/b.bin")
	testenv.WantExit(t, "stat", code, 0, out, errOut)
	if !strings.HasPrefix(out, "b.bin: file, 200000 bytes, modified ") {
		t.Errorf("stat printed %q", out)
	}
	for _, step := range [][]string{{"mkdir", "docs/new"}, {"rmdir", "docs/new"}, {"del", "docs/new.txt"}} {
		out, errOut, code = srv.VcliAs("alice", append([]string{"file"}, step...)...)
		testenv.WantExit(t, step[0], code, 0, out, errOut)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "rmdir", "docs")
	testenv.WantExit(t, "rmdir of a full directory", code, 1, out, errOut)

	// --as: the admin may, a user may not.
	out, errOut, code = srv.VcliAs("admin", "file", "put", "--as", "bob", filepath.Join(dir, "new.txt"), "from-admin.txt")
	testenv.WantExit(t, "admin put --as bob", code, 0, out, errOut)
	if b, _ := os.ReadFile(filepath.Join(srv.Home("bob"), "from-admin.txt")); string(b) != "new\n" {
		t.Errorf("bob's home holds %q", b)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "ls", "--as", "bob")
	testenv.WantExit(t, "user ls --as bob", code, 1, out, errOut)
	if !strings.Contains(errOut, "ERR perm") {
		t.Errorf("stderr %q does not say ERR perm", errOut)
	}
}

func TestVcliFilePutResumesACutUpload(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	dir := t.TempDir()
	data := testenv.FileBytes(20*testenv.ChunkSize+1234, 7) // what testenv.CutFput sends
	local := filepath.Join(dir, "big.bin")
	writeTree(t, dir, map[string][]byte{"big.bin": data})
	for _, tc := range []struct {
		name  string
		flags []string
	}{{"put --resume", []string{"--resume"}}, {"put", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			remote := "big-" + strings.TrimPrefix(strings.Join(tc.flags, ""), "--")
			c := srv.LoginAs("alice")
			held := testenv.CutFput(9)(t, c, remote)
			c.Close()
			var out, errOut string
			var code int
			testenv.RetryWhileBusy(t, func() error {
				out, errOut, code = srv.VcliAs("alice", append(append([]string{"file", "put"}, tc.flags...), local, remote)...)
				if code == 1 && strings.Contains(errOut, "ERR conflict") {
					return client.ErrConflict
				}
				return nil
			})
			testenv.WantExit(t, tc.name, code, 0, out, errOut)
			if want := "resumed at " + strconv.FormatInt(held, 10); !strings.Contains(out, want) {
				t.Errorf("%s printed %q, want it to say %q", tc.name, out, want)
			}
			b, err := os.ReadFile(filepath.Join(srv.Home("alice"), remote))
			if err != nil || !bytes.Equal(b, data) {
				t.Fatalf("resumed upload differs (%d bytes, %v)", len(b), err)
			}
		})
	}
}

func TestVcliShellKeepsTheWorkingDirectoryForPutAndGet(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"new.txt": []byte("shell\n")})
	back := filepath.Join(dir, "back.txt")
	script := strings.Join([]string{
		"mkdir docs",
		"cd docs",
		"put " + filepath.Join(dir, "new.txt"),
		"ls",
		"get new.txt " + back,
		"fget new.txt",
		"pwd",
		"hello",
	}, "\n") + "\n"
	out, errOut, code := srv.Vcli(script, []string{"VSERV_PASSWORD=" + testenv.FilePass("alice")}, "-q", "-u", "alice", "shell")
	testenv.WantExit(t, "shell", code, 0, out, errOut)
	lines := strings.Split(strings.TrimRight(out, "\r\n"), "\r\n")
	if len(lines) != 8 {
		t.Fatalf("shell printed %d lines, want 8:\n%s", len(lines), out)
	}
	wantPrefix := []string{`OK`, `OK "docs"`, "put " + filepath.Join(dir, "new.txt") + " -> new.txt", `OK [{"dir":false,`, "got new.txt -> " + back + " (6 bytes)", "error: fget streams data", `OK "docs"`, `OK "hello"`}
	for i, w := range wantPrefix {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	if b, err := os.ReadFile(filepath.Join(srv.Home("alice"), "docs", "new.txt")); err != nil || string(b) != "shell\n" {
		t.Errorf("put in the shell did not follow cd: %v", err)
	}
	if b, err := os.ReadFile(back); err != nil || string(b) != "shell\n" {
		t.Errorf("get in the shell wrote %q, %v", b, err)
	}
}

// TestVcliReadmeFilesTour runs the README's files tour as written.
func TestVcliReadmeFilesTour(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"note.txt": []byte("hello from bob\n")})
	note, cp := filepath.Join(dir, "note.txt"), filepath.Join(dir, "copy.txt")
	for _, step := range [][]string{
		{"file", "mkdir", "notes"},
		{"file", "put", note, "notes/first.txt"},
		{"file", "ls", "notes"},
		{"file", "get", "notes/first.txt", cp},
	} {
		out, errOut, code := srv.VcliAs("bob", step...)
		testenv.WantExit(t, strings.Join(step, " "), code, 0, out, errOut)
		if step[1] == "ls" && !strings.HasSuffix(strings.TrimSpace(out), "  first.txt") {
			t.Errorf("file ls notes printed %q", out)
		}
	}
	if b, err := os.ReadFile(cp); err != nil || string(b) != "hello from bob\n" {
		t.Errorf("copy.txt = %q, %v", b, err)
	}
}
