package files

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A partial upload's info file lives and dies with its temporary file: it is
// gone after Finish, and a restart removes one whose temporary file is gone
// (stale, or removed by hand) without counting it.
func TestPartialUploadInfoFollowsItsTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	data := []byte("0123456789")
	for _, name := range []string{"kept", "stale", "orphan", "done"} {
		u, _, err := h.BeginUpload("", name, int64(len(data)), sum(data), false, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFrom(u, data[:4], 0); err != nil {
			t.Fatal(err)
		}
		if name == "done" {
			if err := writeFrom(u, data, 4); err != nil {
				t.Fatal(err)
			}
			if err := u.Finish(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := u.Abort(); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := h.Partials()
	if err != nil || len(parts) != 3 {
		t.Fatalf("Partials = %+v, %v; want kept, orphan, stale", parts, err)
	}
	if p := parts[0]; p.Name != "kept" || p.Size != 10 || p.Have != 4 || !bytes.Equal(p.SHA256, sum(data)) {
		t.Errorf("Partials[0] = %+v", p)
	}
	temp := func(name string) string {
		return filepath.Join(dir, "alice", tempName(name, int64(len(data)), sum(data)))
	}
	if _, err := os.Stat(temp("done") + infoSuffix); !os.IsNotExist(err) {
		t.Errorf("info file of a finished upload: %v, want gone", err)
	}
	old := time.Now().Add(-StaleAfter - time.Hour)
	if err := os.Chtimes(temp("stale"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(temp("orphan")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = newService(t, dir, Quotas{})
	if b, f := s.Usage("alice"); b != 10+block || f != 2 {
		t.Errorf("usage after the restart = %d %d, want %d 2 (done and kept)", b, f, 10+block)
	}
	var left []string
	for _, p := range tempFiles(t, dir) {
		left = append(left, strings.TrimPrefix(p, filepath.Join(dir, "alice")+string(filepath.Separator)))
	}
	want := []string{filepath.Base(temp("kept")), filepath.Base(temp("kept")) + infoSuffix}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("temporary files after the restart = %v, want %v", left, want)
	}
	h = newHome(t, s, "alice")
	if parts, err := h.Partials(); err != nil || len(parts) != 1 || parts[0].Name != "kept" {
		t.Errorf("Partials after the restart = %+v, %v; want kept", parts, err)
	}
}
