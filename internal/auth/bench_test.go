package auth

import (
	"path/filepath"
	"testing"

	"github.com/vserv/vserv/internal/store/bolt"
)

// BenchmarkGeneration measures the read every command of a logged-in
// connection makes (the server's checkGeneration).
func BenchmarkGeneration(b *testing.B) {
	st, err := bolt.OpenFile(b.Context(), filepath.Join(b.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := New(st, Options{Argon: TestArgon2, SecretKey: testKey, ServerID: "srv1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Add(b.Context(), "alice", "alice password", RoleUser); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Generation(b.Context(), "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
