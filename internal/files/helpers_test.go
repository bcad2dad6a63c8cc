package files

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// chunk is the protocol's default data chunk (DESIGN.md §3.3, `buff`).
const chunk = 60 * 1024

func newService(t *testing.T, dir string, q Quotas) *Service {
	t.Helper()
	s, err := New(dir, q, nil)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newHome(t *testing.T, s *Service, user string) *Home {
	t.Helper()
	h, err := s.Home(user)
	if err != nil {
		t.Fatalf("Home(%q): %v", user, err)
	}
	return h
}

func sum(data []byte) []byte {
	s := sha256.Sum256(data)
	return s[:]
}

// put uploads data to p in chunks, as the server would.
func put(h *Home, cwd Cwd, p string, data []byte, force, backup bool) error {
	u, off, err := h.BeginUpload(cwd, p, int64(len(data)), sum(data), force, backup)
	if err != nil {
		return err
	}
	if err := writeFrom(u, data, off); err != nil {
		u.Discard()
		return err
	}
	return u.Finish()
}

func writeFrom(u *Upload, data []byte, off int64) error {
	for off < int64(len(data)) {
		end := min(off+chunk, int64(len(data)))
		next, err := u.Write(off, data[off:end])
		if err != nil {
			return err
		}
		if next != end {
			return fmt.Errorf("Write returned next %d, want %d", next, end)
		}
		off = next
	}
	return nil
}

// get downloads p whole and checks the announced hash against the bytes.
func get(t *testing.T, h *Home, cwd Cwd, p string) []byte {
	t.Helper()
	d, err := h.OpenDownload(cwd, p, 0)
	if err != nil {
		t.Fatalf("OpenDownload(%q): %v", p, err)
	}
	defer d.Close()
	data, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("read %q: %v", p, err)
	}
	if int64(len(data)) != d.Size() || string(sum(data)) != string(d.SHA256()) {
		t.Fatalf("download %q: %d bytes, size %d, hash match %v", p, len(data), d.Size(), string(sum(data)) == string(d.SHA256()))
	}
	return data
}

// snapshot records everything about the tree under dir that an operation
// could change: names, types, modes, sizes, contents, link targets and
// modification times, of directories too (so a temporary file created and
// removed again shows).
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	return walkTree(t, dir, true)
}

// contents is snapshot without directory times: what is in the tree, for
// operations that may use a temporary file but must leave nothing.
func contents(t *testing.T, dir string) string {
	t.Helper()
	return walkTree(t, dir, false)
}

func walkTree(t *testing.T, dir string, dirTimes bool) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size())
		if dirTimes || !fi.IsDir() {
			line += fmt.Sprintf(" %d", fi.ModTime().UnixNano())
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sum(data))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %q: %v", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tempFiles lists the upload temporary files under dir, on disk.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func mustWrite(t *testing.T, p string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
