package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestDownloadFromOffset(t *testing.T) {
	s := newService(t, t.TempDir(), Quotas{})
	h := newHome(t, s, "alice")
	data := randomBytes(2*chunk+10, 3)
	if err := put(h, "", "f", data, false, false); err != nil {
		t.Fatal(err)
	}
	if err := h.Mkdir("", "d"); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, chunk, int64(len(data)) - 1, int64(len(data))} {
		d, err := h.OpenDownload("", "f", off)
		if err != nil {
			t.Fatalf("OpenDownload at %d: %v", off, err)
		}
		if d.Size() != int64(len(data)) || !bytes.Equal(d.SHA256(), sum(data)) {
			t.Errorf("at %d: size %d, hash of the whole file %v", off, d.Size(), bytes.Equal(d.SHA256(), sum(data)))
		}
		var got []byte
		buf := make([]byte, chunk)
		for {
			o, n, err := d.ReadChunk(buf)
			if o != off+int64(len(got)) {
				t.Fatalf("chunk offset %d, want %d", o, off+int64(len(got)))
			}
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || n == 0 {
				t.Fatalf("ReadChunk = %d, %v", n, err)
			}
		}
		if !bytes.Equal(got, data[off:]) {
			t.Errorf("from %d: got %d bytes, not the file's tail", off, len(got))
		}
		d.Close()
	}
	for _, c := range []struct {
		p    string
		off  int64
		code wire.Code
	}{
		{"f", int64(len(data)) + 1, wire.CodeInvalid},
		{"f", -1, wire.CodeInvalid},
		{"d", 0, wire.CodeInvalid},
		{".", 0, wire.CodeInvalid},
		{"nope", 0, wire.CodeNotFound},
	} {
		_, err := h.OpenDownload("", c.p, c.off)
		testenv.WantCode(t, err, c.code, fmt.Sprintf("fget %s at %d", c.p, c.off))
	}
}

// A download keeps sending the file it announced, even if an upload replaces
// the name meanwhile; the next download sees the new file and its hash.
func TestDownloadDuringReplace(t *testing.T) {
	s := newService(t, t.TempDir(), Quotas{})
	h := newHome(t, s, "alice")
	oldData, newData := randomBytes(chunk*2, 1), randomBytes(chunk*2, 2)
	if err := put(h, "", "f", oldData, false, false); err != nil {
		t.Fatal(err)
	}
	d, err := h.OpenDownload("", "f", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := put(h, "", "f", newData, true, false); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, oldData) || !bytes.Equal(d.SHA256(), sum(oldData)) {
		t.Errorf("open download changed under a replace (err %v)", err)
	}
	if got := get(t, h, "", "f"); !bytes.Equal(got, newData) {
		t.Error("a new download does not see the new file")
	}
}

// TestUploadSeedsTheHashCache pins that a download right after an upload
// announces the hash the upload checked without reading the file again: a
// change made behind the service's back that keeps inode, size and mtime is
// not seen, which proves the lookup hit.
func TestUploadSeedsTheHashCache(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	data := randomBytes(3*chunk, 5)
	if err := put(h, "", "f", data, false, false); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "alice", "f")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("changed"), 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	d, err := h.OpenDownload("", "f", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !bytes.Equal(d.SHA256(), sum(data)) {
		t.Error("the download hashed the file again instead of using the hash its upload checked")
	}
}
