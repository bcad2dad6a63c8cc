package files

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/vserv/vserv/internal/wire"
)

// Download is one file being sent. It reads from the file it opened, so a
// concurrent upload that replaces the name does not change what it sends: the
// size and hash announced always match the bytes streamed.
type Download struct {
	f    *os.File
	size int64
	sum  []byte
	off  int64
}

// OpenDownload opens the file p names for sending from offset (0 ≤ offset ≤
// size, else ERR invalid) and computes its SHA-256, which `fget` announces
// before the data. Directories and special files are ERR invalid.
func (h *Home) OpenDownload(cwd Cwd, p string, offset int64) (*Download, error) {
	rel, err := resolve(cwd, p)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "negative offset %d", offset)
	}
	f, err := h.root.OpenFile(rel, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, h.err("fget", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, h.err("fget", p, err)
	}
	switch {
	case fi.IsDir():
		f.Close()
		return nil, wire.Errorf(wire.CodeInvalid, "%q is a directory", p)
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, wire.Errorf(wire.CodeInvalid, "%q is not a regular file", p)
	case offset > fi.Size():
		f.Close()
		return nil, wire.Errorf(wire.CodeInvalid, "offset %d is past the size %d of %q", offset, fi.Size(), p)
	}
	sum, err := h.hashes.sum(rel, fi, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fget %q: %w", p, err)
	}
	return &Download{f: f, size: fi.Size(), sum: sum, off: offset}, nil
}

// Size is the file's size in bytes.
func (d *Download) Size() int64 { return d.size }

// SHA256 is the hash of the whole file (not only from the offset).
func (d *Download) SHA256() []byte { return append([]byte(nil), d.sum...) }

// Offset is where the next chunk starts.
func (d *Download) Offset() int64 { return d.off }

// ReadChunk reads the next chunk into buf and returns its offset and length;
// at the end it returns io.EOF with n == 0.
func (d *Download) ReadChunk(buf []byte) (offset int64, n int, err error) {
	offset = d.off
	if offset >= d.size {
		return offset, 0, io.EOF
	}
	if left := d.size - offset; int64(len(buf)) > left {
		buf = buf[:left]
	}
	n, err = d.f.ReadAt(buf, offset)
	d.off += int64(n)
	if n == len(buf) {
		return offset, n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the file shrank under us: not ours to explain
	}
	return offset, n, fmt.Errorf("read download: %w", err)
}

// Read makes a Download an io.Reader of the file from its offset.
func (d *Download) Read(p []byte) (int, error) {
	_, n, err := d.ReadChunk(p)
	return n, err
}

// Close releases the file.
func (d *Download) Close() error { return d.f.Close() }

// hashCache remembers file hashes so that fetching a file again, or resuming
// a download, does not reread it twice. Uploads replace files by rename (a
// new inode) so the key changes with the content; in-place edits by other
// programs change size or mtime.
type hashCache struct {
	mu sync.Mutex
	m  map[hashKey][]byte
}

type hashKey struct {
	rel       string
	ino, size int64
	mtimeNs   int64
}

// hashCacheMax bounds the cache; when full it starts over, which is simple
// and keeps memory flat.
const hashCacheMax = 1024

func keyOf(rel string, fi fs.FileInfo) hashKey {
	return hashKey{rel: rel, ino: inode(fi), size: fi.Size(), mtimeNs: fi.ModTime().UnixNano()}
}

// put records the hash of a file whose content is known to have it: an
// upload just checked it, so a download right after need not reread it.
func (c *hashCache) put(rel string, fi fs.FileInfo, s []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= hashCacheMax {
		c.m = make(map[hashKey][]byte)
	}
	c.m[keyOf(rel, fi)] = bytes.Clone(s)
}

func (c *hashCache) sum(rel string, fi fs.FileInfo, f *os.File) ([]byte, error) {
	k := keyOf(rel, fi)
	c.mu.Lock()
	s, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return nil, err
	}
	s = h.Sum(nil)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= hashCacheMax {
		c.m = make(map[hashKey][]byte)
	}
	c.m[k] = s
	c.mu.Unlock()
	return s, nil
}
