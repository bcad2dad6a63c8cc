package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestFileRoundTripAtChunkBoundaries(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("alice")
	for _, n := range []int{0, 1, 61439, 61440, 61441, 2*61440 + 7, 1<<20 + 3} {
		data := testenv.FileBytes(n, 1)
		name := "f" + string(rune('a'+n%26)) + "-" + time.Duration(n).String()
		mustUpload(t, c, name, data, nil)
		onDisk, err := os.ReadFile(filepath.Join(srv.Home("alice"), name))
		if err != nil || !bytes.Equal(onDisk, data) {
			t.Fatalf("%d bytes: file on disk differs (%d bytes, err %v)", n, len(onDisk), err)
		}
		if got := mustDownload(t, c, name, nil); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: downloaded %d bytes that differ", n, len(got))
		}
		fi, err := c.Stat(context.Background(), name, nil)
		if err != nil || fi.Size != int64(n) || fi.Dir || fi.Name != name {
			t.Fatalf("%d bytes: stat = %+v, %v", n, fi, err)
		}
	}
	if temps := uploadTemps(t, srv.Home("alice")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

func TestFileSmallChunksBothWays(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("alice")
	ctx := context.Background()
	if n, err := c.ChunkSize(ctx); err != nil || n != 61440 {
		t.Fatalf("default buff = %d, %v; want 61440", n, err)
	}
	if n, err := c.SetChunk(ctx, 1000); err != nil || n != 1000 {
		t.Fatalf("buff 1000 = %d, %v", n, err)
	}
	data := testenv.FileBytes(10_500, 2)
	var steps []int64
	_, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), testenv.Sum256(data), "small", &client.UploadOptions{
		Progress: func(done, total int64) { steps = append(steps, done) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 10500}; !slices.Equal(steps, want) {
		t.Errorf("upload progress %v, want %v (1000-byte chunks)", steps, want)
	}
	steps = nil
	var buf bytes.Buffer
	if _, err := c.Download(ctx, "small", &buf, &client.DownloadOptions{Progress: func(done, _ int64) { steps = append(steps, done) }}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) || len(steps) != 11 || steps[0] != 1000 {
		t.Errorf("download in 1000-byte chunks: %d bytes equal=%v, progress %v", buf.Len(), bytes.Equal(buf.Bytes(), data), steps)
	}
}

func TestFileNonASCIINamesRoundTrip(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("bob")
	ctx := context.Background()
	dirs := []string{"Привет", "مرحبا", "日本語"}
	files := []string{"José.txt", "Привет/файл.txt", "مرحبا/ملف.txt", "日本語/ファイル 1.txt", "emoji-😀.bin", "Zürich ßtraße"}
	for _, d := range dirs {
		if err := c.Mkdir(ctx, d, nil); err != nil {
			t.Fatalf("mkdir %q: %v", d, err)
		}
	}
	for i, f := range files {
		data := testenv.FileBytes(100+i, uint64(i))
		mustUpload(t, c, f, data, nil)
		if got := mustDownload(t, c, f, nil); !bytes.Equal(got, data) {
			t.Errorf("%q: downloaded content differs", f)
		}
		if _, err := os.Stat(filepath.Join(srv.Home("bob"), f)); err != nil {
			t.Errorf("%q is not on disk under the same name: %v", f, err)
		}
	}
	top, err := c.ListFiles(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"José.txt", "Zürich ßtraße", "emoji-😀.bin", "Привет/", "مرحبا/", "日本語/"}
	if got := listNames(top); !slices.Equal(got, want) {
		t.Errorf("ls = %q, want %q (bytewise order)", got, want)
	}
	if cwd, err := c.Cd(ctx, "日本語", nil); err != nil || cwd != "日本語" {
		t.Fatalf("cd 日本語 = %q, %v", cwd, err)
	}
	if got, err := c.ListFiles(ctx, "", nil); err != nil || !slices.Equal(listNames(got), []string{"ファイル 1.txt"}) {
		t.Errorf("ls in 日本語 = %q, %v", listNames(got), err)
	}
	if err := c.DeleteFile(ctx, "ファイル 1.txt", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cd(ctx, "..", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rmdir(ctx, "日本語", nil); err != nil {
		t.Errorf("rmdir 日本語 after emptying it: %v", err)
	}
}

func TestCdThenEveryRelativeCommand(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("alice")
	ctx := context.Background()
	for _, d := range []string{"a", "a/b"} {
		if err := c.Mkdir(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	if cwd, err := c.Cd(ctx, "a", nil); err != nil || cwd != "a" {
		t.Fatalf("cd a = %q, %v", cwd, err)
	}
	if cwd, err := c.Cd(ctx, "b", nil); err != nil || cwd != "a/b" {
		t.Fatalf("cd b from a = %q, %v", cwd, err)
	}
	// pyvserv broke every relative command after one cd: run each of them.
	data := testenv.FileBytes(5000, 3)
	mustUpload(t, c, "x", data, nil)
	if _, err := os.Stat(filepath.Join(srv.Home("alice"), "a", "b", "x")); err != nil {
		t.Fatalf("fput after cd did not land in a/b: %v", err)
	}
	if got := mustDownload(t, c, "x", nil); !bytes.Equal(got, data) {
		t.Fatal("fget after cd: content differs")
	}
	if fi, err := c.Stat(ctx, "x", nil); err != nil || fi.Size != 5000 {
		t.Fatalf("stat x after cd = %+v, %v", fi, err)
	}
	if err := c.Mkdir(ctx, "c", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ListFiles(ctx, "", nil); err != nil || !slices.Equal(listNames(got), []string{"c/", "x"}) {
		t.Fatalf("ls after cd = %q, %v", listNames(got), err)
	}
	if got, err := c.ListDirs(ctx, "", nil); err != nil || !slices.Equal(listNames(got), []string{"c/"}) {
		t.Fatalf("lsd after cd = %q, %v", listNames(got), err)
	}
	if got, err := c.ListFiles(ctx, "../..", nil); err != nil || !slices.Equal(listNames(got), []string{"a/"}) {
		t.Fatalf("ls ../.. from a/b = %q, %v", listNames(got), err)
	}
	if _, err := c.ResumeUpload(ctx, bytes.NewReader(data), 5000, testenv.Sum256(data), "y", nil); err != nil {
		t.Fatalf("file+data after cd: %v", err)
	}
	if err := c.Rmdir(ctx, "c", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteFile(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ListFiles(ctx, "", nil); err != nil || !slices.Equal(listNames(got), []string{"y"}) {
		t.Fatalf("ls after rmdir and del = %q, %v", listNames(got), err)
	}
	// A failed cd leaves the working directory where it was.
	_, err := c.Cd(ctx, "nowhere", nil)
	testenv.WantCode(t, err, wire.CodeNotFound, "cd nowhere")
	_, err = c.Cd(ctx, "y", nil)
	testenv.WantCode(t, err, wire.CodeInvalid, "cd to a file")
	_, err = c.Cd(ctx, "../../..", nil)
	testenv.WantCode(t, err, wire.CodePerm, "cd above the home")
	if cwd, err := c.Pwd(ctx, nil); err != nil || cwd != "a/b" {
		t.Fatalf("pwd after failed cds = %q, %v; want a/b", cwd, err)
	}
	if cwd, err := c.Cd(ctx, "../..", nil); err != nil || cwd != "" {
		t.Fatalf("cd ../.. = %q, %v; want the top", cwd, err)
	}
	// The working directory belongs to the connection.
	other := srv.LoginAs("alice")
	if cwd, err := other.Pwd(ctx, nil); err != nil || cwd != "" {
		t.Errorf("a second connection's pwd = %q, %v; want the top", cwd, err)
	}
}

func TestFileOverwriteNeedsForceAndBackupKeepsTheOldOne(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("alice")
	ctx := context.Background()
	v1, v2, v3 := testenv.FileBytes(300, 1), testenv.FileBytes(400, 2), testenv.FileBytes(500, 3)
	mustUpload(t, c, "doc", v1, nil)
	_, err := c.Upload(ctx, bytes.NewReader(v2), 400, testenv.Sum256(v2), "doc", nil)
	testenv.WantCode(t, err, wire.CodeExists, "fput onto an existing file without force")
	if got := mustDownload(t, c, "doc", nil); !bytes.Equal(got, v1) {
		t.Fatal("a refused overwrite changed the file")
	}
	mustUpload(t, c, "doc", v2, &client.UploadOptions{Force: true})
	if got := mustDownload(t, c, "doc", nil); !bytes.Equal(got, v2) {
		t.Fatal("force did not replace the file")
	}
	if _, err := c.Stat(ctx, "doc~", nil); err == nil {
		t.Fatal("force without backup left doc~")
	}
	mustUpload(t, c, "doc", v3, &client.UploadOptions{Force: true, Backup: true})
	if got := mustDownload(t, c, "doc", nil); !bytes.Equal(got, v3) {
		t.Fatal("force+backup did not replace the file")
	}
	if got := mustDownload(t, c, "doc~", nil); !bytes.Equal(got, v2) {
		t.Fatal("backup doc~ does not hold the replaced version")
	}
	// A wrong hash is refused at the end and leaves nothing.
	_, err = c.Upload(ctx, bytes.NewReader(v1), 300, testenv.Sum256(v2), "other", nil)
	testenv.WantCode(t, err, wire.CodeInvalid, "fput with a wrong sha256")
	if _, err := c.Stat(ctx, "other", nil); err == nil {
		t.Error("an upload with a wrong hash appeared")
	}
	if temps := uploadTemps(t, srv.Home("alice")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

func TestStatAndListReplyShapes(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("alice")
	ctx := context.Background()
	if err := c.Mkdir(ctx, "d", nil); err != nil {
		t.Fatal(err)
	}
	mustUpload(t, c, "d/f", testenv.FileBytes(42, 4), nil)
	before := uint64(time.Now().Add(-time.Minute).UnixMilli())
	vals, err := c.Call(ctx, "stat", "d/f")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(vals) != 1 || wire.Unmarshal(vals[0], &m) != nil {
		t.Fatalf("stat reply %v, want one map", vals)
	}
	if len(m) != 4 || m["name"] != "f" || m["size"] != uint64(42) || m["dir"] != false || m["mtime"].(uint64) < before {
		t.Errorf("stat d/f = %v, want {name: f, size: 42, dir: false, mtime: unix ms}", m)
	}
	vals, err = c.Call(ctx, "ls")
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if len(vals) != 1 || wire.Unmarshal(vals[0], &list) != nil || len(list) != 1 {
		t.Fatalf("ls reply %v, want one array of one map", vals)
	}
	if l := list[0]; l["name"] != "d" || l["dir"] != true || l["size"] != uint64(0) {
		t.Errorf("ls entry = %v, want the directory d", l)
	}
	vals, err = c.Call(ctx, "pwd")
	if err != nil || len(vals) != 1 {
		t.Fatalf("pwd = %v, %v", vals, err)
	}
	var cwd string
	if wire.Unmarshal(vals[0], &cwd) != nil || cwd != "" {
		t.Errorf("pwd at the top = %q, want \"\"", cwd)
	}
}

// TestFileDownloadChecksAndReportsFailures pins what a client sees when the
// bytes do not match what fget announced (ErrChecksum), and when the file
// cannot be read to its end (an ERR in place of the data); the connection
// stays usable after both.
func TestFileDownloadChecksAndReportsFailures(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	c := srv.LoginAs("alice")
	data := testenv.FileBytes(3*testenv.ChunkSize, 11)
	mustUpload(t, c, "f", data, nil)
	// Changed behind the server's back with inode, size and mtime kept: the
	// server announces the hash its upload checked, the bytes differ.
	p := filepath.Join(srv.Home("alice"), "f")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, testenv.FileBytes(3*testenv.ChunkSize, 12), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	_, err = c.Download(ctx, "f", io.Discard, nil)
	if !errors.Is(err, client.ErrChecksum) {
		t.Fatalf("download of changed bytes: err = %v, want ErrChecksum", err)
	}
	wantOneAnswer(t, c, "after a checksum failure")

	// Cut short while it is being sent: the server puts an ERR in place of
	// the next data message.
	big := make([]byte, 32<<20)
	mustUpload(t, c, "big", big, nil)
	cut := false
	_, err = c.Download(ctx, "big", io.Discard, &client.DownloadOptions{Progress: func(done, total int64) {
		if !cut {
			cut = true
			if err := os.Truncate(filepath.Join(srv.Home("alice"), "big"), 1<<20); err != nil {
				t.Error(err)
			}
		}
	}})
	testenv.WantCode(t, err, wire.CodeInternal, "download of a file cut short while it is sent")
	wantOneAnswer(t, c, "after a download cut short")
}

func TestFileDownloadResumesFromWhatTheClientHolds(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	c := srv.LoginAs("alice")
	data := testenv.FileBytes(3*testenv.ChunkSize+99, 13)
	mustUpload(t, c, "f", data, nil)
	for _, held := range []int{0, 1, testenv.ChunkSize, 2*testenv.ChunkSize + 5, len(data)} {
		var rest bytes.Buffer
		n, err := c.Download(ctx, "f", &rest, &client.DownloadOptions{Resume: bytes.NewReader(data[:held])})
		if err != nil || n != int64(len(data)) || !bytes.Equal(rest.Bytes(), data[held:]) {
			t.Fatalf("resume from %d: size %d, %d bytes received, equal %v, err %v", held, n, rest.Len(), bytes.Equal(rest.Bytes(), data[held:]), err)
		}
	}
	wrong := bytes.Clone(data[:testenv.ChunkSize])
	wrong[0] ^= 1
	_, err := c.Download(ctx, "f", io.Discard, &client.DownloadOptions{Resume: bytes.NewReader(wrong)})
	if !errors.Is(err, client.ErrChecksum) {
		t.Fatalf("resume with a wrong prefix: err = %v, want ErrChecksum", err)
	}
	_, err = c.Download(ctx, "f", io.Discard, &client.DownloadOptions{Resume: bytes.NewReader(append(bytes.Clone(data), 0))})
	testenv.WantCode(t, err, wire.CodeInvalid, "resume with more bytes than the file has")
	wantOneAnswer(t, c, "after the resumed downloads")
}
