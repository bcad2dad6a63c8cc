package files

import (
	"fmt"
	"path/filepath"
	"testing"

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
				wantCode(t, fmt.Sprintf("step %d: %s puts %s (%d bytes)", i, st.user, st.name, st.size), err, st.code)
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
	s := newService(t, dir, Quotas{UserBytes: 100, TotalBytes: 150})
	alice, bob := newHome(t, s, "alice"), newHome(t, s, "bob")
	u1, _, err := alice.BeginUpload("", "a", 60, sum(make([]byte, 60)), false, false)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = alice.BeginUpload("", "b", 60, sum(make([]byte, 60)), false, false)
	wantCode(t, "second upload over the user quota", err, wire.CodeLimit)
	_, _, err = bob.BeginUpload("", "b", 91, sum(make([]byte, 91)), false, false)
	wantCode(t, "bob's upload over the total", err, wire.CodeLimit)
	u1.Write(0, make([]byte, 30))
	u1.Abort() // keeps 30 bytes on disk, which still count
	if b, f := s.Usage("alice"); b != 30 || f != 0 {
		t.Errorf("usage after abort = %d %d, want 30 0", b, f)
	}
	_, _, err = alice.BeginUpload("", "b", 71, sum(make([]byte, 71)), false, false)
	wantCode(t, "upload over what the kept temporary leaves", err, wire.CodeLimit)
	// Resuming needs only the remaining 30 bytes... of 100 minus 30 kept.
	u1, off, err := alice.BeginUpload("", "a", 60, sum(make([]byte, 60)), false, false)
	if err != nil || off != 30 {
		t.Fatalf("resume = %d, %v", off, err)
	}
	u1.Write(30, make([]byte, 30))
	if err := u1.Finish(); err != nil {
		t.Fatal(err)
	}
	if b, f := s.Usage("alice"); b != 60 || f != 1 {
		t.Errorf("usage after finish = %d %d, want 60 1", b, f)
	}
	u2, _, err := alice.BeginUpload("", "c", 40, sum(make([]byte, 40)), false, false)
	if err != nil {
		t.Fatal(err)
	}
	u2.Write(0, make([]byte, 10))
	u2.Discard()
	if b, f := s.Usage("alice"); b != 60 || f != 1 {
		t.Errorf("usage after discard = %d %d, want 60 1", b, f)
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

// The global total counts homes written before a restart.
func TestTotalQuotaCountsExistingHomes(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "alice", "old"), string(make([]byte, 80)))
	s := newService(t, dir, Quotas{TotalBytes: 100})
	bob := newHome(t, s, "bob")
	wantCode(t, "bob over the total", put(bob, "", "f", make([]byte, 21), false, false), wire.CodeLimit)
	wantCode(t, "bob within the total", put(bob, "", "f", make([]byte, 20), false, false), "")
	if b, f := s.Usage("alice"); b != 80 || f != 1 {
		t.Errorf("alice usage = %d %d, want 80 1", b, f)
	}
}
