package files

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestCdThenRelativeOps(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	for _, d := range []string{"a", "a/b"} {
		if err := h.Mkdir("", d); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	cwd, err := h.Cd("", "a")
	if err != nil || cwd != "a" || h.Pwd(cwd) != "a" {
		t.Fatalf("cd a = %q, %v", cwd, err)
	}
	// Every relative command works after a cd (pyvserv failed them all).
	if err := put(h, cwd, "f.txt", []byte("in a"), false, false); err != nil {
		t.Fatalf("put after cd: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "alice", "a", "f.txt")); err != nil {
		t.Errorf("put after cd did not land in a/: %v", err)
	}
	if i, err := h.Stat(cwd, "f.txt"); err != nil || i.Name != "f.txt" || i.Size != 4 || i.Dir {
		t.Errorf("stat f.txt = %+v, %v", i, err)
	}
	if got := string(get(t, h, cwd, "f.txt")); got != "in a" {
		t.Errorf("fget after cd = %q", got)
	}
	if l, err := h.List(cwd, ".", false); err != nil || len(l) != 2 || l[0].Name != "b" || l[1].Name != "f.txt" {
		t.Errorf("ls . after cd = %+v, %v", l, err)
	}
	if err := h.Mkdir(cwd, "c"); err != nil {
		t.Errorf("mkdir after cd: %v", err)
	}
	if err := h.Rmdir(cwd, "c"); err != nil {
		t.Errorf("rmdir after cd: %v", err)
	}
	if err := h.Delete(cwd, "f.txt"); err != nil {
		t.Errorf("del after cd: %v", err)
	}
	deeper, err := h.Cd(cwd, "b")
	if err != nil || deeper != "a/b" {
		t.Fatalf("cd b from a = %q, %v", deeper, err)
	}
	steps := []struct {
		from Cwd
		p    string
		want Cwd
		code wire.Code
	}{
		{"a/b", "..", "a", ""},
		{"a/b", "../..", "", ""},
		{"a/b", "../../..", "a/b", wire.CodePerm},
		{"a", "..", "", ""},
		{"", "..", "", wire.CodePerm},
		{"", ".", "", ""},
		{"a/b", "/", "a/b", wire.CodePerm},
		{"", "a/b/../b", "a/b", ""},
		{"", "nope", "", wire.CodeNotFound},
	}
	for _, st := range steps {
		got, err := h.Cd(st.from, st.p)
		testenv.WantCode(t, err, st.code, "cd "+st.p+" from "+string(st.from))
		if got != st.want {
			t.Errorf("cd %q from %q = %q, want %q", st.p, st.from, got, st.want)
		}
	}
	if err := put(h, "", "file", []byte("x"), false, false); err != nil {
		t.Fatal(err)
	}
	_, err = h.Cd("", "file")
	testenv.WantCode(t, err, wire.CodeInvalid, "cd to a file")
}

func TestDirectoryCommands(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	steps := []struct {
		what string
		do   func() error
		want wire.Code
	}{
		{"mkdir d", func() error { return h.Mkdir("", "d") }, ""},
		{"mkdir d again", func() error { return h.Mkdir("", "d") }, wire.CodeExists},
		{"mkdir . (the top)", func() error { return h.Mkdir("", ".") }, wire.CodeExists},
		{"mkdir d/e/f without parent", func() error { return h.Mkdir("", "d/e/f") }, wire.CodeNotFound},
		{"put d/f", func() error { return put(h, "", "d/f", []byte("data"), false, false) }, ""},
		{"rmdir non-empty d", func() error { return h.Rmdir("", "d") }, wire.CodeExists},
		{"rmdir a file", func() error { return h.Rmdir("", "d/f") }, wire.CodeInvalid},
		{"del a directory", func() error { return h.Delete("", "d") }, wire.CodeInvalid},
		{"del the top", func() error { return h.Delete("", ".") }, wire.CodeInvalid},
		{"rmdir the top", func() error { return h.Rmdir("", ".") }, wire.CodePerm},
		{"rmdir missing", func() error { return h.Rmdir("", "nope") }, wire.CodeNotFound},
		{"del missing", func() error { return h.Delete("", "nope") }, wire.CodeNotFound},
		{"del d/f", func() error { return h.Delete("", "d/f") }, ""},
		{"del d/f again", func() error { return h.Delete("", "d/f") }, wire.CodeNotFound},
		{"rmdir empty d", func() error { return h.Rmdir("", "d") }, ""},
		{"rmdir d again", func() error { return h.Rmdir("", "d") }, wire.CodeNotFound},
	}
	for _, st := range steps {
		testenv.WantCode(t, st.do(), st.want, st.what)
	}
	if used, files := s.Usage("alice"); used != 0 || files != 0 {
		t.Errorf("usage after all removed = %d bytes %d files, want 0 0", used, files)
	}
	if fi, err := os.Stat(filepath.Join(dir, "alice")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func TestRmdirRemovesKeptTempsButNotActiveOnes(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	if err := h.Mkdir("", "d"); err != nil {
		t.Fatal(err)
	}
	data := []byte("partial upload")
	u, _, err := h.BeginUpload("", "d/f", int64(len(data)), sum(data), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(0, data[:5]); err != nil {
		t.Fatal(err)
	}
	if l, err := h.List("", "d", false); err != nil || len(l) != 0 {
		t.Errorf("ls d during an upload = %+v, %v; want empty (temporary hidden)", l, err)
	}
	testenv.WantCode(t, h.Rmdir("", "d"), wire.CodeExists, "rmdir with an upload in progress")
	if err := u.Abort(); err != nil {
		t.Fatal(err)
	}
	if used, files := s.Usage("alice"); used != dirCharge+block || files != 2 {
		t.Errorf("usage with a directory and a kept 5-byte temporary = %d %d, want %d 2", used, files, dirCharge+block)
	}
	testenv.WantCode(t, h.Rmdir("", "d"), "", "rmdir with only a kept temporary")
	if used, files := s.Usage("alice"); used != 0 || files != 0 {
		t.Errorf("usage after rmdir = %d %d, want 0 0", used, files)
	}
}

func TestNonASCIINamesRoundTrip(t *testing.T) {
	s := newService(t, t.TempDir(), Quotas{})
	h := newHome(t, s, "alice")
	names := []string{"José.txt", "مرحبا بالعالم.txt", "文件名.txt", "😀🎉.bin", "Привет", "ελληνικά~", "name with spaces"}
	for _, n := range names {
		if err := put(h, "", n, []byte(n), false, false); err != nil {
			t.Fatalf("put %q: %v", n, err)
		}
		if err := h.Mkdir("", "dir-"+n); err != nil {
			t.Fatalf("mkdir dir-%q: %v", n, err)
		}
		names = append(names, "dir-"+n)
	}
	list, err := h.List("", ".", false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range list {
		got = append(got, i.Name)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ls names:\n got %q\nwant %q", got, want)
	}
	for _, n := range names[:7] {
		if i, err := h.Stat("", n); err != nil || i.Name != n || i.Size != int64(len(n)) {
			t.Errorf("stat %q = %+v, %v", n, i, err)
		}
		if data := get(t, h, "", n); string(data) != n {
			t.Errorf("fget %q = %q", n, data)
		}
	}
	dirs, err := h.List("", ".", true)
	if err != nil || len(dirs) != 7 {
		t.Fatalf("lsd = %d entries, %v; want 7", len(dirs), err)
	}
	for _, d := range dirs {
		if !d.Dir || d.Size != 0 {
			t.Errorf("lsd entry %+v is not a directory of size 0", d)
		}
	}
}

func TestStatAndListInfo(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	if err := put(h, "", "f", []byte("12345"), false, false); err != nil {
		t.Fatal(err)
	}
	mtime := time.UnixMilli(1_700_000_000_123)
	if err := os.Chtimes(filepath.Join(dir, "alice", "f"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	want := Info{Name: "f", Size: 5, MtimeMs: 1_700_000_000_123}
	if i, err := h.Stat("", "f"); err != nil || i != want {
		t.Errorf("stat f = %+v, %v; want %+v", i, err, want)
	}
	if l, err := h.List("", "f", false); err != nil || len(l) != 1 || l[0] != want {
		t.Errorf("ls f = %+v, %v; want [%+v]", l, err, want)
	}
	if l, err := h.List("", "f", true); err != nil || len(l) != 0 {
		t.Errorf("lsd f = %+v, %v; want []", l, err)
	}
	if i, err := h.Stat("", "."); err != nil || !i.Dir || i.Name != "." {
		t.Errorf("stat . = %+v, %v", i, err)
	}
	// A FIFO planted on disk is neither listed nor downloadable (and must not hang).
	if err := mkfifo(filepath.Join(dir, "alice", "fifo")); errors.Is(err, errors.ErrUnsupported) {
		return // no FIFOs in this file system (Windows)
	} else if err != nil {
		t.Fatal(err)
	}
	if l, _ := h.List("", ".", false); len(l) != 1 {
		t.Errorf("ls with a fifo = %+v, want only f", l)
	}
	_, err := h.OpenDownload("", "fifo", 0)
	testenv.WantCode(t, err, wire.CodeInvalid, "fget fifo")
}
