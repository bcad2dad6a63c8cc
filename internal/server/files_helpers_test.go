package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
)

// Helpers of the file tests (DESIGN.md §3.3): a server with a few accounts,
// deterministic file contents, and snapshots of what is on disk.

func mustUpload(t testing.TB, c *client.Client, remote string, data []byte, o *client.UploadOptions) {
	t.Helper()
	if _, err := c.Upload(context.Background(), bytes.NewReader(data), int64(len(data)), testenv.Sum256(data), remote, o); err != nil {
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
			desc += " " + hex.EncodeToString(testenv.Sum256(b)) + " mtime " + fi.ModTime().Format(time.RFC3339Nano)
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
