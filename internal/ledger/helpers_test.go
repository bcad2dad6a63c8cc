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

	bbolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
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
	st     *bolt.Store // owns ledger.db
	l      *Ledger
	clock  *testClock
	signer ed25519.PrivateKey // testPriv when nil
	heads  string             // Config.HeadsFile
	// serverID is testServerID when empty; logs, when set, gets the log;
	// homeKeys is Config.HomeKeys.
	serverID string
	logs     io.Writer
	homeKeys func(string) []ed25519.PublicKey
	quorum   int // Config.WitnessQuorum
}

func openDB(t testing.TB, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// openStore opens the store in ledger.db at path; the caller closes it.
func openStore(t testing.TB, path string) *bolt.Store {
	t.Helper()
	db := openDB(t, path)
	st, err := bolt.Open(context.Background(), db, bolt.Options{})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return st
}

// testKey is the store's key of a chain of the test ledger.
func testKey(chain string) store.ChainKey { return store.ChainKey{Origin: testServerID, Name: chain} }

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
	e.st = openStore(e.t, e.path)
	signer := e.signer
	if signer == nil {
		signer = testPriv
	}
	id, logs := testServerID, io.Writer(io.Discard)
	if e.serverID != "" {
		id = e.serverID
	}
	if e.logs != nil {
		logs = e.logs
	}
	l, err := Open(context.Background(), e.st, Config{ServerID: id, Signer: signer, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), HeadsFile: e.heads, HomeKeys: e.homeKeys, WitnessQuorum: e.quorum})
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
	if e.st != nil {
		e.st.Close()
		e.st = nil
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

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }
