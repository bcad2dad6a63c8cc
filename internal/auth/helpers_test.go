package auth

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/wire"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

type testEnv struct {
	store  *Store
	st     *bolt.Store
	dbPath string
	clock  *testClock
}

// newTestEnv opens a real store (store/bolt) in a temporary directory with a Store
// on it, using TestArgon2 and a clock at a fixed instant.
func newTestEnv(t *testing.T, production bool) *testEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	st, err := bolt.OpenFile(t.Context(), path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := newTestClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := New(st, Options{
		Argon: TestArgon2, Production: production, SecretKey: testKey,
		ServerID: "srv1", Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{store: s, st: st, dbPath: path, clock: clock}
}

// mustAdd creates an account or fails the test.
func (e *testEnv) mustAdd(t *testing.T, name, pass string, role Role) *Account {
	t.Helper()
	a, err := e.store.Add(t.Context(), name, pass, role)
	if err != nil {
		t.Fatalf("Add(%q): %v", name, err)
	}
	return a
}

// wantAuthFailed fails the test unless err is exactly the fixed login
// failure.
func wantAuthFailed(t *testing.T, what string, err error) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeAuth || we.Text != wire.AuthFailedText || err.Error() != authFailed().Error() {
		t.Fatalf("%s: got %v, want ERR auth %q", what, err, wire.AuthFailedText)
	}
}
