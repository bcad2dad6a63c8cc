package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestFileAdminActsInAnotherHome(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	admin := srv.LoginAs(testenv.AdminName)
	asBob := &client.FileOptions{As: "bob"}
	data := testenv.FileBytes(3*testenv.ChunkSize+11, 9)

	if err := admin.Mkdir(ctx, "in", asBob); err != nil {
		t.Fatalf("mkdir as bob: %v", err)
	}
	if _, err := admin.Upload(ctx, bytes.NewReader(data), int64(len(data)), testenv.Sum256(data), "in/report", &client.UploadOptions{As: "bob"}); err != nil {
		t.Fatalf("fput as bob: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(srv.Home("bob"), "in", "report")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("the admin's upload as bob is not in bob's home: %v", err)
	}
	bob := srv.LoginAs("bob")
	if got := mustDownload(t, bob, "in/report", nil); !bytes.Equal(got, data) {
		t.Fatal("bob reads something else than the admin uploaded")
	}
	if got := mustDownload(t, admin, "in/report", &client.DownloadOptions{As: "BOB"}); !bytes.Equal(got, data) {
		t.Fatal("fget as BOB (other case) differs")
	}
	// The admin's own home is untouched, and has its own working directory.
	if _, err := admin.Stat(ctx, "in", nil); err == nil {
		t.Error("mkdir as bob created a directory in the admin's own home")
	}
	if err := admin.Mkdir(ctx, "mine", nil); err != nil {
		t.Fatal(err)
	}
	if cwd, err := admin.Cd(ctx, "in", asBob); err != nil || cwd != "in" {
		t.Fatalf("cd in as bob = %q, %v", cwd, err)
	}
	if cwd, err := admin.Pwd(ctx, nil); err != nil || cwd != "" {
		t.Errorf("the admin's own pwd after cd as bob = %q, %v; want the top", cwd, err)
	}
	if cwd, err := admin.Cd(ctx, "mine", nil); err != nil || cwd != "mine" {
		t.Fatalf("cd mine = %q, %v", cwd, err)
	}
	if cwd, err := admin.Pwd(ctx, asBob); err != nil || cwd != "in" {
		t.Errorf("pwd as bob = %q, %v; want in", cwd, err)
	}
	if got, err := admin.ListFiles(ctx, "", asBob); err != nil || !slices.Equal(listNames(got), []string{"report"}) {
		t.Errorf("ls as bob (in bob's cwd) = %q, %v", listNames(got), err)
	}
	if fi, err := admin.Stat(ctx, "report", asBob); err != nil || fi.Size != int64(len(data)) {
		t.Errorf("stat as bob = %+v, %v", fi, err)
	}
	if _, err := admin.ResumeUpload(ctx, bytes.NewReader(data), int64(len(data)), testenv.Sum256(data), "copy", &client.UploadOptions{As: "bob"}); err != nil {
		t.Errorf("file+data as bob: %v", err)
	}
	if got, err := bob.ListFiles(ctx, "in", nil); err != nil || !slices.Equal(listNames(got), []string{"copy", "report"}) {
		t.Errorf("bob's ls in = %q, %v", listNames(got), err)
	}
	for _, p := range []string{"copy", "report"} {
		if err := admin.DeleteFile(ctx, p, asBob); err != nil {
			t.Errorf("del %s as bob: %v", p, err)
		}
	}
	if _, err := admin.Cd(ctx, "..", asBob); err != nil {
		t.Fatal(err)
	}
	if err := admin.Rmdir(ctx, "in", asBob); err != nil {
		t.Errorf("rmdir as bob: %v", err)
	}
	if _, err := admin.Call(ctx, "buff", uint64(1000), map[string]any{"as": "bob"}); err != nil {
		t.Errorf("buff with as, by an admin: %v", err)
	}

	_, err := admin.Stat(ctx, "x", &client.FileOptions{As: "nobody"})
	testenv.WantCode(t, err, wire.CodeNotFound, "as an account that does not exist")
	_, err = admin.Stat(ctx, "x", &client.FileOptions{As: "bad name!"})
	testenv.WantCode(t, err, wire.CodeInvalid, "as a malformed name")
	if _, err := os.Stat(srv.Home("nobody")); err == nil {
		t.Error("as nobody created a home for an account that does not exist")
	}
}

func TestFileUserAsIsRefusedForEveryCommand(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	alice := srv.LoginAs("alice")
	mustUpload(t, alice, "private", []byte("alice only"), nil)
	before := diskSnapshot(t, filepath.Join(srv.DataRoot, "files"))
	bob := srv.LoginAs("bob")
	sum := testenv.Sum256([]byte("abc"))
	for _, as := range []string{"alice", "bob", "admin", "nobody"} {
		opt := map[string]any{"as": as}
		calls := [][]any{
			{"fput", "private", uint64(3), sum, opt}, {"file", "private", uint64(3), sum, opt},
			{"fget", "private", opt}, {"fget", "private", uint64(0), opt}, {"del", "private", opt},
			{"ls", opt}, {"ls", ".", opt}, {"lsd", opt}, {"cd", ".", opt}, {"pwd", opt},
			{"stat", "private", opt}, {"mkdir", "new", opt}, {"rmdir", "new", opt}, {"buff", opt}, {"buff", uint64(10), opt},
			{"fpart", "ls", opt}, {"fpart", "rm", "private", opt},
		}
		for _, call := range calls {
			_, err := bob.Call(ctx, call[0].(string), call[1:]...)
			testenv.WantCode(t, err, wire.CodePerm, "bob: "+call[0].(string)+" as "+as)
		}
	}
	sameDisk(t, "the homes", before, diskSnapshot(t, filepath.Join(srv.DataRoot, "files")))
	if n, err := bob.ChunkSize(ctx); err != nil || n != testenv.ChunkSize {
		t.Errorf("a refused buff changed the chunk size to %d (%v)", n, err)
	}
}
