package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Helpers of the file tests (DESIGN.md §3.3): a server with a few accounts,
// deterministic file contents, and snapshots of what is on disk.

// fileUsers are the accounts every file server has; "bob" and "bobby" share
// a prefix on purpose (pyvserv's string-prefix check let one into the other).
var fileUsers = []string{"alice", "bob", "bobby"}

func filePass(name string) string { return name + "-password" }

// filesServer is a real vserv process with the admin of testenv and the
// accounts of fileUsers.
type filesServer struct {
	*testenv.Server
	t testing.TB
}

func startFilesServer(t testing.TB, args ...string) *filesServer {
	t.Helper()
	// File tests open many sessions from one address; throttling has its
	// own tests.
	args = append([]string{"--rate-ip", "100000", "--max-conns-ip", "10000"}, args...)
	srv := testenv.Start(t, testenv.WithArgs(args...))
	admin := srv.AdminClient()
	defer admin.Close()
	for _, u := range fileUsers {
		if _, err := admin.AddUser(context.Background(), u, filePass(u), false); err != nil {
			t.Fatalf("add %s: %v", u, err)
		}
	}
	return &filesServer{Server: srv, t: t}
}

// login opens a session as one of fileUsers, or as the admin.
func (s *filesServer) login(name string) *client.Client {
	s.t.Helper()
	if name == testenv.AdminName {
		return s.Login(name, testenv.AdminPass)
	}
	return s.Login(name, filePass(name))
}

// home is the directory of an account's home on disk.
func (s *filesServer) home(name string) string {
	return filepath.Join(s.DataRoot, "files", strings.ToLower(name))
}

// fileBytes returns n deterministic pseudo-random bytes; seed tells contents apart.
func fileBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum256(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func mustUpload(t testing.TB, c *client.Client, remote string, data []byte, o *client.UploadOptions) {
	t.Helper()
	if _, err := c.Upload(context.Background(), bytes.NewReader(data), int64(len(data)), sum256(data), remote, o); err != nil {
		t.Fatalf("upload %q (%d bytes): %v", remote, len(data), err)
	}
}

func mustDownload(t testing.TB, c *client.Client, remote string, o *client.DownloadOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := c.Download(context.Background(), remote, &buf, o)
	if err != nil {
		t.Fatalf("download %q: %v", remote, err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("download %q: size %d announced, %d received", remote, n, buf.Len())
	}
	return buf.Bytes()
}

// wantFileCode fails unless err is ERR code.
func wantFileCode(t testing.TB, err error, code wire.Code, what string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("%s: err = %v, want ERR %s", what, err, code)
	}
}

// diskSnapshot describes every entry under dir: type, size, mode and content
// hash, and for links their target, so that a test can prove nothing changed.
func diskSnapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + hex.EncodeToString(sum256(b)) + " mtime " + fi.ModTime().Format(time.RFC3339Nano)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func sameDisk(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range before {
		if after[k] != v {
			diffs = append(diffs, k+": "+v+" => "+after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, k+": (new) "+v)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s changed on disk:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// uploadTemps lists the upload temporary files left anywhere under dir.
func uploadTemps(t testing.TB, dir string) []string {
	t.Helper()
	var temps []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".vserv-upload-") {
			temps = append(temps, p)
		}
		return nil
	})
	return temps
}

// listNames lists the names of a listing, in order.
func listNames(infos []client.FileInfo) []string {
	out := make([]string, len(infos))
	for i, fi := range infos {
		out[i] = fi.Name
		if fi.Dir {
			out[i] += "/"
		}
	}
	return out
}
