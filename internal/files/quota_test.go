package files

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestQuotas(t *testing.T) {
	type step struct {
		user, name string
		size       int
		force      bool
		code       wire.Code
	}
	tests := []struct {
		name  string
		q     Quotas
		steps []step
		// usage of alice after the steps
		bytes, files int64
	}{
		{"user bytes", Quotas{UserBytes: 100}, []step{
			{"alice", "a", 60, false, ""},
			{"alice", "b", 41, false, wire.CodeLimit},
			{"alice", "b", 40, false, ""},
			{"alice", "c", 0, false, ""},
			{"alice", "d", 1, false, wire.CodeLimit},
			{"bob", "a", 100, false, ""}, // per account
		}, 100, 3},
		{"user files", Quotas{UserFiles: 2}, []step{
			{"alice", "a", 1, false, ""},
			{"alice", "b", 1, false, ""},
			{"alice", "c", 1, false, wire.CodeLimit},
			{"alice", "c", 0, false, wire.CodeLimit},
			{"bob", "a", 1, false, ""},
		}, 2, 2},
		{"total bytes", Quotas{TotalBytes: 100}, []step{
			{"alice", "a", 70, false, ""},
			{"bob", "a", 31, false, wire.CodeLimit},
			{"bob", "a", 30, false, ""},
			{"alice", "b", 1, false, wire.CodeLimit},
		}, 70, 1},
		// An overwrite is booked as a whole new file up front (conservative),
		// then settled to the real change.
		{"overwrite", Quotas{UserBytes: 100}, []step{
			{"alice", "a", 60, false, ""},
			{"alice", "a", 50, true, wire.CodeLimit},
			{"alice", "a", 40, true, ""},
			{"alice", "a", 60, true, ""},
		}, 60, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newService(t, dir, tt.q)
			for i, st := range tt.steps {
				h := newHome(t, s, st.user)
				before := contents(t, dir)
				err := put(h, "", st.name, randomBytes(st.size, uint64(i)), st.force, false)
				testenv.WantCode(t, err, st.code, fmt.Sprintf("step %d: %s puts %s (%d bytes)", i, st.user, st.name, st.size))
				if err != nil && contents(t, dir) != before {
					t.Errorf("step %d: a refused upload changed the tree", i)
				}
			}
			if b, f := s.Usage("alice"); b != tt.bytes || f != tt.files {
				t.Errorf("alice usage = %d bytes %d files, want %d %d", b, f, tt.bytes, tt.files)
			}
			if tmp := tempFiles(t, dir); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// Uploads in progress hold their space: two that each fit alone cannot both start.
func TestQuotaReservedByUploadsInProgress(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{UserBytes: 10000, TotalBytes: 15000})
	alice, bob := newHome(t, s, "alice"), newHome(t, s, "bob")
	u1, _, err := alice.BeginUpload("", "a", 6000, sum(make([]byte, 6000)), false, false)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = alice.BeginUpload("", "b", 6000, sum(make([]byte, 6000)), false, false)
	testenv.WantCode(t, err, wire.CodeLimit, "second upload over the user quota")
	_, _, err = bob.BeginUpload("", "b", 9001, sum(make([]byte, 9001)), false, false)
	testenv.WantCode(t, err, wire.CodeLimit, "bob's upload over the total")
	u1.Write(0, make([]byte, 3000))
	u1.Abort() // keeps 3000 bytes on disk, which count as one file of one block
	if b, f := s.Usage("alice"); b != block || f != 1 {
		t.Errorf("usage after abort = %d %d, want %d 1", b, f, block)
	}
	_, _, err = alice.BeginUpload("", "b", 10000-block+1, sum(make([]byte, 10000-block+1)), false, false)
	testenv.WantCode(t, err, wire.CodeLimit, "upload over what the kept temporary leaves")
	// Resuming needs only what the finished file adds to the kept block.
	u1, off, err := alice.BeginUpload("", "a", 6000, sum(make([]byte, 6000)), false, false)
	if err != nil || off != 3000 {
		t.Fatalf("resume = %d, %v", off, err)
	}
	u1.Write(3000, make([]byte, 3000))
	if err := u1.Finish(); err != nil {
		t.Fatal(err)
	}
	if b, f := s.Usage("alice"); b != 6000 || f != 1 {
		t.Errorf("usage after finish = %d %d, want 6000 1", b, f)
	}
	u2, _, err := alice.BeginUpload("", "c", 40, sum(make([]byte, 40)), false, false)
	if err != nil {
		t.Fatal(err)
	}
	u2.Write(0, make([]byte, 10))
	u2.Discard()
	if b, f := s.Usage("alice"); b != 6000 || f != 1 {
		t.Errorf("usage after discard = %d %d, want 6000 1", b, f)
	}
	if err := alice.Delete("", "a"); err != nil {
		t.Fatal(err)
	}
	if b, f := s.Usage("alice"); b != 0 || f != 0 {
		t.Errorf("usage after del = %d %d, want 0 0", b, f)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// A file of exactly the bytes left fits, but its partial upload, charged a
// whole block, may not: then the quota wins and nothing is kept.
func TestAbortPastTheQuotaDropsThePartialUpload(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{UserBytes: 100})
	h := newHome(t, s, "alice")
	u, _, err := h.BeginUpload("", "a", 100, sum(make([]byte, 100)), false, false)
	if err != nil {
		t.Fatalf("upload of exactly the quota: %v", err)
	}
	u.Write(0, make([]byte, 30))
	if err := u.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, f := s.Usage("alice"); b != 0 || f != 0 {
		t.Errorf("usage after the abort = %d %d, want 0 0", b, f)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files kept past the quota: %v", tmp)
	}
}

// Directories and kept partial uploads count as files (and a block each), so
// neither can be made without limit; paths are at most maxDepth deep.
func TestDirectoriesAndPartialUploadsCountAgainstTheQuota(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{UserFiles: 3, UserBytes: 1 << 20})
	h := newHome(t, s, "alice")
	for _, d := range []string{"d1", "d2"} {
		if err := h.Mkdir("", d); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	u, _, err := h.BeginUpload("", "p", 10, sum(make([]byte, 10)), false, false)
	if err != nil {
		t.Fatal(err)
	}
	u.Write(0, []byte{1})
	if err := u.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, f := s.Usage("alice"); b != 3*block || f != 3 {
		t.Errorf("usage = %d %d, want %d 3", b, f, 3*block)
	}
	testenv.WantCode(t, h.Mkdir("", "d3"), wire.CodeLimit, "mkdir past the file quota")
	_, _, err = h.BeginUpload("", "q", 1, sum([]byte{1}), false, false)
	testenv.WantCode(t, err, wire.CodeLimit, "upload past the file quota")
	if err := h.Rmdir("", "d2"); err != nil {
		t.Fatal(err)
	}
	if err := h.Mkdir("", "d3"); err != nil {
		t.Errorf("mkdir after rmdir freed a file: %v", err)
	}

	// A restart counts the same.
	s.Close()
	s = newService(t, dir, Quotas{UserFiles: 3})
	if b, f := s.Usage("alice"); b != 3*block || f != 3 {
		t.Errorf("usage after a restart = %d %d, want %d 3", b, f, 3*block)
	}

	s2 := newService(t, t.TempDir(), Quotas{})
	deep := newHome(t, s2, "bob")
	p := "d"
	for i := 1; i < maxDepth; i++ {
		if err := deep.Mkdir("", p); err != nil {
			t.Fatalf("mkdir at depth %d: %v", i, err)
		}
		p += "/d"
	}
	if err := deep.Mkdir("", p); err != nil {
		t.Fatalf("mkdir at depth %d: %v", maxDepth, err)
	}
	testenv.WantCode(t, deep.Mkdir("", p+"/d"), wire.CodeLimit, "mkdir past the depth cap")
	_, _, err = deep.BeginUpload("", p+"/f", 1, sum([]byte{1}), false, false)
	testenv.WantCode(t, err, wire.CodeLimit, "upload past the depth cap")
}

// The global total counts homes written before a restart.
func TestTotalQuotaCountsExistingHomes(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "alice", "old"), string(make([]byte, 80)))
	s := newService(t, dir, Quotas{TotalBytes: 100})
	bob := newHome(t, s, "bob")
	testenv.WantCode(t, put(bob, "", "f", make([]byte, 21), false, false), wire.CodeLimit, "bob over the total")
	testenv.WantCode(t, put(bob, "", "f", make([]byte, 20), false, false), "", "bob within the total")
	if b, f := s.Usage("alice"); b != 80 || f != 1 {
		t.Errorf("alice usage = %d %d, want 80 1", b, f)
	}
}
