package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
	bolt "go.etcd.io/bbolt"
)

var testPriv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32))

func testPub() ed25519.PublicKey { return testPriv.Public().(ed25519.PublicKey) }

var testServerID = verify.ServerIDFromKey(testPub())

// testClock advances by one millisecond on every reading, so entry times are
// distinct and predictable.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) now() time.Time { return time.UnixMilli(c.ms.Add(1)) }

type env struct {
	t      testing.TB
	path   string
	db     *bolt.DB
	l      *Ledger
	clock  *testClock
	signer ed25519.PrivateKey // testPriv when nil
	heads  string             // Config.HeadsFile
}

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newEnv opens a ledger on a fresh ledger.db with a pow-0 chain "t".
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvSigned(t, nil)
}

// newEnvSigned is newEnv with checkpoints signed by signer from the start
// (testPriv when nil).
func newEnvSigned(t testing.TB, signer ed25519.PrivateKey) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "ledger.db"), clock: &testClock{}, signer: signer}
	e.clock.ms.Store(1_700_000_000_000)
	e.open()
	if err := e.l.CreateChain(context.Background(), "t", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	e.db = openDB(e.t, e.path)
	signer := e.signer
	if signer == nil {
		signer = testPriv
	}
	l, err := Open(e.db, Config{ServerID: testServerID, Signer: signer, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HeadsFile: e.heads})
	if err != nil {
		e.t.Fatal(err)
	}
	e.l = l
}

func (e *env) close() {
	if e.l != nil {
		e.l.Close()
		e.l = nil
	}
	if e.db != nil {
		e.db.Close()
		e.db = nil
	}
}

func (e *env) reopen() {
	e.close()
	e.open()
}

func recID(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012x", n) }

func rec(t testing.TB, n int, payload any) []byte {
	t.Helper()
	b, err := wire.Marshal(map[string]any{"id": recID(n), "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) appendN(chain string, from, n int) []Result {
	e.t.Helper()
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = rec(e.t, from+i, map[string]any{"n": from + i, "text": fmt.Sprintf("n-%d", from+i)})
	}
	res, err := e.l.Append(context.Background(), chain, recs, AppendOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

type compactNodeID = compact.NodeID

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }
