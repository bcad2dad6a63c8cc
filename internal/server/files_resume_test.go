package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// readAnswer reads one message and returns nil for OK or the ERR.
func readAnswer(t testing.TB, c *client.Client) ([]wire.RawMessage, error) {
	t.Helper()
	msg, err := c.Conn().ReadMessage(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	resp, err := wire.DecodeResponse(msg)
	if err != nil {
		t.Fatalf("answer %x: %v", msg, err)
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp.Vals, nil
}

func TestFileTransferCutMidwayThenResumedByteExact(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	data := testenv.FileBytes(20*testenv.ChunkSize+1234, 7)
	size := int64(len(data))
	cases := []struct {
		name       string
		cut        func(t *testing.T, c *client.Client, name string) int64 // returns what the server holds
		resumeWith string
	}{
		{"fput cut after 7 chunks, resumed with fput", testenv.CutFput(7), "fput"},
		{"fput cut after 7 chunks, resumed with file+data", testenv.CutFput(7), "file"},
		{"fput cut inside a frame, resumed with fput", cutFputInsideFrame(11), "fput"},
		{"file+data cut after 5 chunks, resumed with file+data", cutFileData(5), "file"},
		{"file+data cut after 5 chunks, resumed with fput", cutFileData(5), "fput"},
		{"fput cut before any data, resumed with fput", testenv.CutFput(0), "fput"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("big-%d", i)
			c := srv.LoginAs("alice")
			held := tc.cut(t, c, name)
			c.Close()
			other := srv.LoginAs("alice")
			// Nothing appears under the real name before the upload completes.
			_, err := other.Stat(ctx, name, nil)
			testenv.WantCode(t, err, wire.CodeNotFound, "stat of an interrupted upload")
			var resumedAt int64
			err = testenv.RetryWhileBusy(t, func() (err error) {
				if tc.resumeWith == "fput" {
					resumedAt, err = other.Upload(ctx, bytes.NewReader(data), size, testenv.Sum256(data), name, nil)
				} else {
					resumedAt, err = other.ResumeUpload(ctx, bytes.NewReader(data), size, testenv.Sum256(data), name, nil)
				}
				return err
			})
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if resumedAt != held {
				t.Errorf("the server resumed at %d, want %d (what it had received)", resumedAt, held)
			}
			if got := mustDownload(t, other, name, nil); !bytes.Equal(got, data) {
				t.Fatalf("resumed file differs from the original (%d bytes vs %d)", len(got), len(data))
			}
			if temps := uploadTemps(t, srv.Home("alice")); len(temps) != 0 {
				t.Errorf("temporary files left after the resumed upload: %v", temps)
			}
		})
	}
	// Another size or hash is another upload: it starts from 0.
	c := srv.LoginAs("alice")
	held := testenv.CutFput(3)(t, c, "changed")
	c.Close()
	if held != 3*testenv.ChunkSize {
		t.Fatalf("held %d", held)
	}
	other := srv.LoginAs("alice")
	changed := bytes.Clone(data)
	changed[0] ^= 1
	var resumedAt int64
	if err := testenv.RetryWhileBusy(t, func() (err error) {
		resumedAt, err = other.Upload(ctx, bytes.NewReader(changed), size, testenv.Sum256(changed), "changed", nil)
		return err
	}); err != nil || resumedAt != 0 {
		t.Fatalf("upload of other content to the same name resumed at %d (%v), want 0", resumedAt, err)
	}
}

// cutFputInsideFrame sends whole chunks, then a frame header and only part
// of its body: what the server keeps is the whole chunks.
func cutFputInsideFrame(chunks int64) func(t *testing.T, c *client.Client, name string) int64 {
	return func(t *testing.T, c *client.Client, name string) int64 {
		held := testenv.CutFput(chunks)(t, c, name)
		if err := c.Conn().WriteRaw(append([]byte{0, 0, 0xff, 0xff}, make([]byte, 1000)...)); err != nil {
			t.Fatal(err)
		}
		return held
	}
}

func cutFileData(chunks int64) func(t *testing.T, c *client.Client, name string) int64 {
	return func(t *testing.T, c *client.Client, name string) int64 {
		data := testenv.FileBytes(20*testenv.ChunkSize+1234, 7)
		ctx := context.Background()
		if _, err := c.Call(ctx, "file", name, uint64(len(data)), testenv.Sum256(data)); err != nil {
			t.Fatal(err)
		}
		for i := range chunks {
			off := i * testenv.ChunkSize
			vals, err := c.Call(ctx, "data", uint64(off), data[off:off+testenv.ChunkSize])
			var next uint64
			if err != nil || wire.Unmarshal(vals[0], &next) != nil || next != uint64(off+testenv.ChunkSize) {
				t.Fatalf("data at %d: %v %v", off, vals, err)
			}
		}
		return chunks * testenv.ChunkSize
	}
}

func TestFileTwoUploadsToOneName(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	a, b := testenv.FileBytes(3*testenv.ChunkSize+5, 1), testenv.FileBytes(2*testenv.ChunkSize+9, 2)

	// Different contents, interleaved: both are accepted at the start; the
	// first to finish wins, the other finds the name taken.
	c1, c2 := srv.LoginAs("alice"), srv.LoginAs("alice")
	testenv.StartFput(t, c1, "same", a)
	testenv.StartFput(t, c2, "same", b)
	testenv.SendData(t, c1, a, 0, testenv.ChunkSize)
	testenv.SendData(t, c2, b, 0, testenv.ChunkSize)
	testenv.SendData(t, c2, b, testenv.ChunkSize, int64(len(b)))
	if _, err := readAnswer(t, c2); err != nil {
		t.Fatalf("second upload, finished first: %v", err)
	}
	testenv.SendData(t, c1, a, testenv.ChunkSize, int64(len(a)))
	_, err := readAnswer(t, c1)
	testenv.WantCode(t, err, wire.CodeExists, "the upload that finished second")
	if got := mustDownload(t, c1, "same", nil); !bytes.Equal(got, b) {
		t.Fatal("the file is not the upload that finished first")
	}

	// The same content twice at once: the second is ERR conflict while the
	// first runs (they would share the temporary file).
	testenv.StartFput(t, c1, "twin", a)
	testenv.SendData(t, c1, a, 0, testenv.ChunkSize)
	_, err = c2.Call(ctx, "fput", "twin", uint64(len(a)), testenv.Sum256(a))
	testenv.WantCode(t, err, wire.CodeConflict, "the same upload while it runs")
	testenv.SendData(t, c1, a, testenv.ChunkSize, int64(len(a)))
	if _, err := readAnswer(t, c1); err != nil {
		t.Fatal(err)
	}

	// Many at once with force: every one succeeds, and the file is exactly
	// one of them, never a mix.
	const n = 4
	contents := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		contents[i] = testenv.FileBytes(4*testenv.ChunkSize+i, uint64(10+i))
		c := srv.LoginAs("alice")
		wg.Go(func() {
			_, errs[i] = c.Upload(ctx, bytes.NewReader(contents[i]), int64(len(contents[i])), testenv.Sum256(contents[i]), "raced", &client.UploadOptions{Force: true})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent forced upload %d: %v", i, err)
		}
	}
	got := mustDownload(t, c1, "raced", nil)
	whole := false
	for _, want := range contents {
		whole = whole || bytes.Equal(got, want)
	}
	if !whole {
		t.Errorf("after %d concurrent uploads the file (%d bytes) is none of them", n, len(got))
	}
	if temps := uploadTemps(t, srv.Home("alice")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
	if _, err := os.Stat(filepath.Join(srv.Home("alice"), "raced~")); err == nil {
		t.Error("a backup appeared without backup")
	}
}
