package client

import (
	"context"
	"fmt"
)

// File commands of DESIGN.md §3.3. Paths are relative to the account's home
// (or to the working directory set by Cd, which lasts as long as this
// connection). Every call takes options; nil means none.

// FileInfo describes a file or directory, as Stat and ListFiles return it.
type FileInfo struct {
	Name    string `cbor:"name" json:"name"`
	Size    int64  `cbor:"size" json:"size"`
	MtimeMs uint64 `cbor:"mtime" json:"mtime"` // modification time, Unix milliseconds
	Dir     bool   `cbor:"dir" json:"dir"`
}

// FileOptions are the options every file command takes.
type FileOptions struct {
	// As acts in another account's home (admins only; else ERR perm).
	As string
}

// MaxChunk is the largest data payload of a transfer message (60 KiB).
const MaxChunk = 60 << 10

// fileArgs appends the options map to args when there is anything in it.
func fileArgs(as string, extra map[string]any, args ...any) []any {
	m := map[string]any{}
	for k, v := range extra {
		m[k] = v
	}
	if as != "" {
		m["as"] = as
	}
	if len(m) > 0 {
		args = append(args, m)
	}
	return args
}

func asOf(o *FileOptions) string {
	if o == nil {
		return ""
	}
	return o.As
}

// Stat describes the file or directory at p.
func (c *Client) Stat(ctx context.Context, p string, o *FileOptions) (*FileInfo, error) {
	vals, err := c.Call(ctx, "stat", fileArgs(asOf(o), nil, p)...)
	if err != nil {
		return nil, err
	}
	fi := &FileInfo{}
	return fi, decode("stat", vals, fi)
}

// ListFiles lists the directory at p ("" = the working directory), sorted by name.
func (c *Client) ListFiles(ctx context.Context, p string, o *FileOptions) ([]FileInfo, error) {
	return c.list(ctx, "ls", p, o)
}

// ListDirs lists only the subdirectories of the directory at p.
func (c *Client) ListDirs(ctx context.Context, p string, o *FileOptions) ([]FileInfo, error) {
	return c.list(ctx, "lsd", p, o)
}

func (c *Client) list(ctx context.Context, cmd, p string, o *FileOptions) ([]FileInfo, error) {
	var args []any
	if p != "" {
		args = append(args, p)
	}
	vals, err := c.Call(ctx, cmd, fileArgs(asOf(o), nil, args...)...)
	if err != nil {
		return nil, err
	}
	var infos []FileInfo
	return infos, decode(cmd, vals, &infos)
}

// Cd changes the working directory for the rest of this connection and
// returns the new one, relative to the home ("" at its top).
func (c *Client) Cd(ctx context.Context, p string, o *FileOptions) (string, error) {
	vals, err := c.Call(ctx, "cd", fileArgs(asOf(o), nil, p)...)
	if err != nil {
		return "", err
	}
	var cwd string
	return cwd, decode("cd", vals, &cwd)
}

// Pwd returns the working directory, relative to the home ("" at its top).
func (c *Client) Pwd(ctx context.Context, o *FileOptions) (string, error) {
	vals, err := c.Call(ctx, "pwd", fileArgs(asOf(o), nil)...)
	if err != nil {
		return "", err
	}
	var cwd string
	return cwd, decode("pwd", vals, &cwd)
}

// Mkdir creates a directory; its parent must exist.
func (c *Client) Mkdir(ctx context.Context, p string, o *FileOptions) error {
	_, err := c.Call(ctx, "mkdir", fileArgs(asOf(o), nil, p)...)
	return err
}

// Rmdir removes an empty directory.
func (c *Client) Rmdir(ctx context.Context, p string, o *FileOptions) error {
	_, err := c.Call(ctx, "rmdir", fileArgs(asOf(o), nil, p)...)
	return err
}

// DeleteFile removes a file.
func (c *Client) DeleteFile(ctx context.Context, p string, o *FileOptions) error {
	_, err := c.Call(ctx, "del", fileArgs(asOf(o), nil, p)...)
	return err
}

// ChunkSize returns the server's chunk size for downloads on this connection.
func (c *Client) ChunkSize(ctx context.Context) (int, error) {
	vals, err := c.Call(ctx, "buff")
	if err != nil {
		return 0, err
	}
	var n uint64
	return int(n), decode("buff", vals, &n)
}

// SetChunk sets the data chunk size, 1 to MaxChunk bytes, for both
// directions: the server sends downloads in chunks of this size, and this
// client sends uploads so.
func (c *Client) SetChunk(ctx context.Context, n int) (int, error) {
	if n < 1 || n > MaxChunk {
		return 0, fmt.Errorf("chunk size %d: want 1 to %d bytes", n, MaxChunk)
	}
	vals, err := c.Call(ctx, "buff", uint64(n))
	if err != nil {
		return 0, err
	}
	var got uint64
	if err := decode("buff", vals, &got); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.chunk = int(got)
	c.mu.Unlock()
	return int(got), nil
}

// uploadChunk is the payload size of upload messages. Called with mu held.
func (c *Client) uploadChunk() int {
	if c.chunk <= 0 || c.chunk > MaxChunk {
		return MaxChunk
	}
	return c.chunk
}

// PartialUpload is an interrupted upload the server keeps so that it can be
// resumed: uploading the same path with the same size and hash continues at
// Have. It counts against the account's quota until resumed or discarded.
type PartialUpload struct {
	Name    string `cbor:"name"`   // target path, relative to the top of the home
	Size    int64  `cbor:"size"`   // declared size
	Have    int64  `cbor:"have"`   // bytes received
	SHA256  []byte `cbor:"sha256"` // declared hash
	MtimeMs uint64 `cbor:"mtime"`  // last write, Unix milliseconds
}

// ListPartials lists the home's partial uploads (`fpart ls`), sorted by name.
func (c *Client) ListPartials(ctx context.Context, o *FileOptions) ([]PartialUpload, error) {
	vals, err := c.Call(ctx, "fpart", fileArgs(asOf(o), nil, "ls")...)
	if err != nil {
		return nil, err
	}
	var parts []PartialUpload
	return parts, decode("fpart", vals, &parts)
}

// DiscardPartial removes the partial uploads to p (`fpart rm`), whatever
// their size and hash, and frees their quota.
func (c *Client) DiscardPartial(ctx context.Context, p string, o *FileOptions) error {
	_, err := c.Call(ctx, "fpart", fileArgs(asOf(o), nil, "rm", p)...)
	return err
}
