package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// ErrChecksum means a download did not match the size and SHA-256 the server
// announced for it.
var ErrChecksum = errors.New("downloaded data does not match the size and sha256 the server announced")

// UploadOptions control an upload.
type UploadOptions struct {
	Force  bool   // replace an existing file
	Backup bool   // with Force, keep the replaced file as "name~"
	As     string // upload into another account's home (admins only)
	// Progress, if set, is called after each chunk with the bytes the server
	// has been sent (counting a resumed prefix) and the total. It runs while
	// the connection is busy and must not call the client.
	Progress func(done, total int64)
}

// DownloadOptions control a download.
type DownloadOptions struct {
	As string // download from another account's home (admins only)
	// Resume, if set, holds the first bytes of the file, from an interrupted
	// download: Download hashes them, asks only for the rest, and checks the hash
	// of the whole.
	Resume io.Reader
	// Progress, as for UploadOptions.
	Progress func(done, total int64)
}

func (o *UploadOptions) args(p string, size int64, sum []byte) []any {
	if o == nil {
		o = &UploadOptions{}
	}
	extra := map[string]any{}
	if o.Force {
		extra["force"] = true
	}
	if o.Backup {
		extra["backup"] = true
	}
	return fileArgs(o.As, extra, p, uint64(size), sum)
}

func (o *UploadOptions) progress(done, total int64) {
	if o != nil && o.Progress != nil {
		o.Progress(done, total)
	}
}

// HashFile returns the size and SHA-256 of a local file, as an upload
// announces them.
func HashFile(path string) (size int64, sum []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return size, h.Sum(nil), nil
}

// UploadFile uploads the local file at local to remote with fput. It returns
// the offset the server resumed from (0 unless an interrupted upload of the
// same content was waiting).
func (c *Client) UploadFile(ctx context.Context, local, remote string, o *UploadOptions) (resumedAt int64, err error) {
	size, sum, err := HashFile(local)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(local)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return c.Upload(ctx, f, size, sum, remote, o)
}

// Upload uploads size bytes with SHA-256 sum, read from r, to remote with fput:
// one request, then the data stream, then one answer once the file is in
// place. r is read from the file's first byte; if the server resumes an
// interrupted upload, Upload skips the bytes it already has (seeking when r is an
// io.Seeker). It returns the offset the server resumed from.
//
// An ERR answer leaves the connection usable. Any other error (a local read
// failure, a cancelled ctx, a broken connection) closes it: the server keeps
// what it received, and the same upload resumes from there.
func (c *Client) Upload(ctx context.Context, r io.Reader, size int64, sum []byte, remote string, o *UploadOptions) (resumedAt int64, err error) {
	if size < 0 {
		return 0, fmt.Errorf("put %s: negative size", remote)
	}
	req, err := wire.EncodeRequest("fput", o.args(remote, size, sum)...)
	if err != nil {
		return 0, fmt.Errorf("encode fput: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	vals, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		return 0, err
	}
	var start uint64
	if err := decode("fput", vals, &start); err != nil || start > uint64(size) {
		c.abandon()
		return 0, fmt.Errorf("fput %s: bad offset in the reply (%v)", remote, err)
	}
	err = c.stream(ctx, func(deadline func() time.Time) error {
		if err := skip(r, int64(start)); err != nil {
			return fmt.Errorf("put %s: skip the %d bytes the server has: %w", remote, start, err)
		}
		chunk := int64(c.uploadChunk())
		buf := make([]byte, wire.DataHeaderRoom+chunk)
		off := int64(start)
		for {
			n := min(chunk, size-off)
			if _, err := io.ReadFull(r, buf[wire.DataHeaderRoom:wire.DataHeaderRoom+n]); err != nil {
				return fmt.Errorf("put %s: read at offset %d: %w", remote, off, err)
			}
			if err := c.wc.WriteMessage(wire.DataMessage(buf, uint64(off), int(n)), deadline()); err != nil {
				return err
			}
			off += n
			o.progress(off, size)
			if off == size {
				return nil
			}
		}
	})
	if err != nil {
		return int64(start), err
	}
	in, err := c.wc.ReadMessage(c.deadline(ctx))
	if err != nil {
		c.abandon()
		return int64(start), c.ioError(ctx, err)
	}
	resp, err := wire.DecodeResponse(in)
	if err != nil {
		c.abandon()
		return int64(start), err
	}
	if resp.Err != nil {
		return int64(start), resp.Err
	}
	return int64(start), nil
}

// skip moves r past the first n bytes.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekCurrent)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}

// ResumeUpload uploads like Upload but with file + data: every chunk is answered
// with the next offset the server expects, so after any failure the caller
// knows exactly what the server holds, and calling ResumeUpload again continues
// from there. It is slower than Upload (one round trip per chunk).
func (c *Client) ResumeUpload(ctx context.Context, r io.ReaderAt, size int64, sum []byte, remote string, o *UploadOptions) (resumedAt int64, err error) {
	vals, err := c.Call(ctx, "file", o.args(remote, size, sum)...)
	if err != nil {
		return 0, err
	}
	var start uint64
	if err := decode("file", vals, &start); err != nil || start > uint64(size) {
		return 0, fmt.Errorf("file %s: bad offset in the reply (%v)", remote, err)
	}
	c.mu.Lock()
	chunk := int64(c.uploadChunk())
	c.mu.Unlock()
	buf := make([]byte, chunk)
	off := int64(start)
	for {
		n := min(chunk, size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return int64(start), fmt.Errorf("put %s: read at offset %d: %w", remote, off, err)
		}
		vals, err := c.Call(ctx, "data", uint64(off), buf[:n])
		if err != nil {
			return int64(start), err
		}
		var next uint64
		if err := decode("data", vals, &next); err != nil {
			return int64(start), err
		}
		if next != uint64(off+n) {
			return int64(start), fmt.Errorf("data: the server expects offset %d, not %d", next, off+n)
		}
		off = int64(next)
		o.progress(off, size)
		if off == size {
			return int64(start), nil
		}
	}
}

// Download downloads remote into w with fget and checks it against the size and
// SHA-256 the server announced (ErrChecksum if it does not match; w has then
// received bad data). It returns the file's size.
//
// An ERR answer leaves the connection usable. Any other error (w failing, a
// cancelled ctx, a broken connection) closes it.
func (c *Client) Download(ctx context.Context, remote string, w io.Writer, o *DownloadOptions) (size int64, err error) {
	if o == nil {
		o = &DownloadOptions{}
	}
	h := sha256.New()
	var start int64
	if o.Resume != nil {
		if start, err = io.Copy(h, o.Resume); err != nil {
			return 0, fmt.Errorf("get %s: read the part already held: %w", remote, err)
		}
	}
	args := []any{remote}
	if start > 0 {
		args = append(args, uint64(start))
	}
	req, err := wire.EncodeRequest("fget", fileArgs(o.As, nil, args...)...)
	if err != nil {
		return 0, fmt.Errorf("encode fget: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	vals, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		return 0, err
	}
	var usize uint64
	var sum []byte
	if err := decode("fget", vals, &usize, &sum); err != nil {
		c.abandon()
		return 0, err
	}
	size = int64(usize)
	var serverErr error
	err = c.stream(ctx, func(deadline func() time.Time) error {
		var ioErr error
		serverErr, ioErr = c.receive(remote, start, size, w, h, o.Progress, deadline)
		return ioErr
	})
	if err != nil {
		return size, err
	}
	if serverErr != nil {
		return size, serverErr
	}
	if !bytes.Equal(h.Sum(nil), sum) {
		return size, fmt.Errorf("get %s: %w", remote, ErrChecksum)
	}
	return size, nil
}

// receive reads the data stream of an fget from offset off up to size. An
// ERR message in place of data ends the stream and is returned as serverErr.
func (c *Client) receive(remote string, off, size int64, w io.Writer, h hash.Hash, progress func(done, total int64), deadline func() time.Time) (serverErr, err error) {
	for {
		in, err := c.wc.ReadMessage(deadline())
		if err != nil {
			return nil, err
		}
		at, data, ok := wire.ParseData(in)
		if !ok {
			resp, err := wire.DecodeResponse(in)
			if err == nil && resp.Err != nil {
				return resp.Err, nil
			}
			return nil, fmt.Errorf("get %s: unexpected message in the data stream", remote)
		}
		if at != uint64(off) || uint64(len(data)) > uint64(size-off) {
			return nil, fmt.Errorf("get %s: data at offset %d (%d bytes), expected offset %d of %d", remote, at, len(data), off, size)
		}
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("get %s: %w", remote, err)
		}
		h.Write(data)
		off += int64(len(data))
		if progress != nil {
			progress(off, size)
		}
		if off == size {
			return nil, nil
		}
	}
}

// stream runs one direction of a transfer with mu held. Each message gets
// its own deadline (the call timeout from now, or ctx's deadline if sooner),
// so a long transfer is bounded by its progress, not its length. Cancelling
// ctx, or any error, closes the connection: the stream cannot be resumed in
// step with the server.
func (c *Client) stream(ctx context.Context, run func(deadline func() time.Time) error) error {
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	deadline := func() time.Time {
		d := time.Now().Add(c.opts.Timeout)
		if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
			return cd
		}
		return d
	}
	if err := run(deadline); err != nil {
		c.abandon()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", c.addr, ctx.Err())
		}
		return err
	}
	return nil
}

// abandon closes a connection whose stream is out of step. Called with mu held.
func (c *Client) abandon() {
	c.closed = true
	c.nc.Close()
}

// Usable reports whether the connection can still take calls: false after
// Close, or after a failure that closed it (a transfer cut off midway, say).
func (c *Client) Usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed
}
