package auth

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkGeneration measures the read every command of a logged-in
// connection makes (the server's checkGeneration).
func BenchmarkGeneration(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "ledger.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := New(db, Options{Argon: TestArgon2, SecretKey: testKey, ServerID: "srv1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Add("alice", "alice password", RoleUser); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Generation("alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
