package auth

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// The one test at full cost: the stored form must be the standard PHC string
// with the parameters DESIGN.md §3.2 fixes.
func TestDefaultArgon2PHCString(t *testing.T) {
	h := newHasher(DefaultArgon2)
	enc, err := h.hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(enc) {
		t.Fatalf("hash %q does not match %v", enc, re)
	}
	p, err := parsePHC(enc)
	if err != nil {
		t.Fatal(err)
	}
	// Recompute independently of verify, straight from x/crypto.
	if got := argon2.IDKey([]byte("correct horse battery"), p.salt, 3, 65536, 2, 32); string(got) != string(p.key) {
		t.Fatal("stored key is not argon2id(password, salt, t=3, m=65536, p=2)")
	}
	for pass, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false} {
		ok, err := h.verify(context.Background(), enc, pass)
		if err != nil || ok != want {
			t.Errorf("verify(%q) = %v, %v; want %v", pass, ok, err, want)
		}
	}
}

func TestParsePHCRejectsMalformed(t *testing.T) {
	good := phc{params: TestArgon2, salt: make([]byte, 16), key: make([]byte, 32)}.String()
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(%q): %v", good, err)
	}
	for _, s := range []string{
		"",
		"$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$t=1,m=64,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=0,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
	} {
		if _, err := parsePHC(s); err == nil {
			t.Errorf("parsePHC(%q) succeeded, want an error", s)
		}
	}
}

// At most two hashings run at once; the others wait and all complete.
func TestHashingConcurrencyLimit(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	var running, peak, total atomic.Int32
	inner := env.store.hasher.kdf
	env.store.hasher.kdf = func(p, s []byte, tm, m uint32, th uint8, l uint32) []byte {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		total.Add(1)
		running.Add(-1)
		return inner(p, s, tm, m, th, l)
	}
	const logins = 8
	var wg sync.WaitGroup
	errs := make(chan error, logins)
	for i := range logins {
		wg.Go(func() {
			pass := "alice password"
			if i%2 == 1 {
				pass = "wrong"
			}
			_, err := env.store.CheckPassword(context.Background(), "alice", pass)
			if (err == nil) != (i%2 == 0) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected login result: %v", err)
	}
	if peak.Load() != maxHashing || total.Load() != logins {
		t.Fatalf("peak concurrent hashings = %d, total = %d; want %d and %d", peak.Load(), total.Load(), maxHashing, logins)
	}
}

// A login waiting for a hashing slot gives up when its context ends.
func TestHashingWaitHonoursContext(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	for range maxHashing {
		env.store.hasher.slots <- struct{}{} // occupy every slot
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := env.store.CheckPassword(ctx, "alice", "alice password")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CheckPassword with full slots: got %v, want context.DeadlineExceeded", err)
	}
}
