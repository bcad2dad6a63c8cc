package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

// largeFileSize is the sparse file TestVcliLargeSparseFile moves: 1 GiB,
// sparse on the client's disk (the server stores all of it), the size the
// file-service issue asks for. It takes about 30 s under -race on the 2-core
// test machine.
const largeFileSize = 1 << 30

func TestVcliLargeSparseFile(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t, "--quota-bytes", "0")
	dir := t.TempDir()
	local := filepath.Join(dir, "sparse.img")
	f, err := os.Create(local)
	if err != nil {
		t.Fatal(err)
	}
	// A few bytes of data at the start, the middle and the end of a hole.
	for _, off := range []int64{0, largeFileSize / 2, largeFileSize - 5} {
		if _, err := f.WriteAt([]byte("vserv"), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	want := fileSum(t, local)

	out, errOut, code := srv.VcliAs("alice", "file", "put", local, "big.img")
	testenv.WantExit(t, "put of the sparse file", code, 0, out, errOut)
	if !strings.Contains(out, fmt.Sprintf("(%d bytes)", largeFileSize)) {
		t.Errorf("put printed %q", out)
	}
	if got := fileSum(t, filepath.Join(srv.Home("alice"), "big.img")); !bytes.Equal(got, want) {
		t.Fatal("the server's copy differs")
	}
	back := filepath.Join(dir, "back.img")
	out, errOut, code = srv.VcliAs("alice", "file", "get", "big.img", back)
	testenv.WantExit(t, "get of the large file", code, 0, out, errOut)
	if got := fileSum(t, back); !bytes.Equal(got, want) {
		t.Fatal("the downloaded copy differs")
	}
}

func fileSum(t testing.TB, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil || n != largeFileSize {
		t.Fatalf("read %s: %d bytes, %v", p, n, err)
	}
	return h.Sum(nil)
}
