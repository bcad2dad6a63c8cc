package testenv

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/wire"
)

// Helpers of the file tests (DESIGN.md §3.3), in internal/server and
// internal/e2e: a server with a few accounts, deterministic file contents,
// and uploads cut on purpose.

// FileUsers are the accounts every file server has; "bob" and "bobby" share
// a prefix on purpose (pyvserv's string-prefix check let one into the other).
var FileUsers = []string{"alice", "bob", "bobby"}

// FilePass is the password of one of FileUsers.
func FilePass(name string) string { return name + "-password" }

// ChunkSize is the server's file chunk size (DESIGN.md §3.3): data messages
// carry at most this many bytes.
const ChunkSize = 61440

// FilesServer is a real vserv process with the admin of InitAdmin and the
// accounts of FileUsers.
type FilesServer struct {
	*Server
	t testing.TB
}

// StartFilesServer starts a server with args and the accounts of FileUsers.
func StartFilesServer(t testing.TB, args ...string) *FilesServer {
	t.Helper()
	// File tests open many sessions from one address; throttling has its
	// own tests.
	args = append([]string{"--rate-ip", "100000", "--max-conns-ip", "10000"}, args...)
	srv := Start(t, WithArgs(args...))
	admin := srv.AdminClient()
	defer admin.Close()
	for _, u := range FileUsers {
		if _, err := admin.AddUser(context.Background(), u, FilePass(u), false); err != nil {
			t.Fatalf("add %s: %v", u, err)
		}
	}
	return &FilesServer{Server: srv, t: t}
}

// LoginAs opens a session as one of FileUsers, or as the admin.
func (s *FilesServer) LoginAs(name string) *client.Client {
	s.t.Helper()
	if name == AdminName {
		return s.Login(name, AdminPass)
	}
	return s.Login(name, FilePass(name))
}

// Home is the directory of an account's home on disk.
func (s *FilesServer) Home(name string) string {
	return filepath.Join(s.DataRoot, "files", strings.ToLower(name))
}

// VcliAs runs vcli logged in as one of FileUsers, or as the admin.
func (s *FilesServer) VcliAs(user string, args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	pass := FilePass(user)
	if user == AdminName {
		pass = AdminPass
	}
	return s.Vcli("", []string{"VSERV_PASSWORD=" + pass}, append([]string{"-q", "-u", user}, args...)...)
}

// FileBytes returns n deterministic pseudo-random bytes; seed tells contents apart.
func FileBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Sum256 is the SHA-256 of b, as fput and fget carry it.
func Sum256(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// StartFput sends fput by hand and returns the offset the server answers,
// leaving the data stream to the test.
func StartFput(t testing.TB, c *client.Client, name string, data []byte, opts ...any) int64 {
	t.Helper()
	args := append([]any{name, uint64(len(data)), Sum256(data)}, opts...)
	vals, err := c.Call(context.Background(), "fput", args...)
	if err != nil {
		t.Fatalf("fput %s: %v", name, err)
	}
	var off uint64
	if len(vals) != 1 || wire.Unmarshal(vals[0], &off) != nil {
		t.Fatalf("fput %s: reply %v, want OK <offset>", name, vals)
	}
	return int64(off)
}

// SendData writes the data messages for data[from:to] in chunks, without
// reading anything back (the fput stream is not answered per message).
func SendData(t testing.TB, c *client.Client, data []byte, from, to int64) {
	t.Helper()
	buf := make([]byte, wire.DataHeaderRoom+ChunkSize)
	for off := from; ; {
		n := min(int64(ChunkSize), to-off)
		copy(buf[wire.DataHeaderRoom:], data[off:off+n])
		if err := c.Conn().WriteMessage(wire.DataMessage(buf, uint64(off), int(n)), time.Now().Add(10*time.Second)); err != nil {
			t.Fatalf("send data at %d: %v", off, err)
		}
		off += n
		if off >= to {
			return
		}
	}
}

// CutFput returns a cut that starts an fput of FileBytes(20*ChunkSize+1234, 7)
// and sends only its first chunks chunks; the cut returns what the server
// holds. The caller closes the connection.
func CutFput(chunks int64) func(t *testing.T, c *client.Client, name string) int64 {
	return func(t *testing.T, c *client.Client, name string) int64 {
		data := FileBytes(20*ChunkSize+1234, 7)
		if off := StartFput(t, c, name, data); off != 0 {
			t.Fatalf("fresh fput answered offset %d", off)
		}
		if chunks > 0 {
			SendData(t, c, data, 0, chunks*ChunkSize)
		}
		return chunks * ChunkSize
	}
}

// RetryWhileBusy repeats fn while the server still holds the interrupted
// upload (ERR conflict until the old connection's goroutine has noticed the
// close and kept the temporary file).
func RetryWhileBusy(t testing.TB, fn func() error) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if !errors.Is(err, client.ErrConflict) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
