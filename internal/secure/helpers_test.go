package secure

import (
	"crypto/ed25519"
	"os"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock for pools.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestPool makes an identity and a pool of size keys living 24 h in a
// fresh data directory.
func newTestPool(t testing.TB, size int) (*Pool, *Identity, *testClock, string) {
	t.Helper()
	dataroot := t.TempDir() + "/data"
	id, _, err := LoadOrCreateIdentity(dataroot)
	if err != nil {
		t.Fatalf("LoadOrCreateIdentity: %v", err)
	}
	clock := newTestClock()
	p, err := OpenPool(dataroot, id, size, 24*time.Hour, clock.now)
	if err != nil {
		t.Fatalf("OpenPool: %v", err)
	}
	return p, id, clock, dataroot
}

// handshake runs a full handshake against p's key kid and returns both ends.
func handshake(t testing.TB, p *Pool, clientPrologue, serverPrologue []byte) (client, server *Session) {
	t.Helper()
	k := p.Pick()
	if k == nil {
		t.Fatal("Pick returned nil")
	}
	ki, err := ParseKeyInfo(k.Info())
	if err != nil {
		t.Fatalf("ParseKeyInfo: %v", err)
	}
	hs, err := ClientHandshake(ki, clientPrologue)
	if err != nil {
		t.Fatalf("ClientHandshake: %v", err)
	}
	msg2, server, err := p.Accept(hs.KID, hs.CT, hs.Msg1, serverPrologue)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	client, err = hs.Finish(msg2)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return client, server
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Mode().Perm()
}

// seqKey is the public key 00 01 02 ... 1f, for exact expected values.
var seqKey = func() ed25519.PublicKey {
	k := make(ed25519.PublicKey, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()
