package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vserv/vserv/client"
)

// benchFiles uploads then downloads one file of --file-size bytes over one
// encrypted session: DESIGN.md §8's "file transfer over one session, ≥ 300
// MB/s each way". The data is generated on the fly (never held whole in
// memory); its hash is computed in a first pass that is not timed, as a real
// client hashes before it sends. The upload is timed until the server's final
// OK, which comes after the file is fsynced and renamed into place; the
// download until the client has checked the SHA-256 of everything it got.
func benchFiles(ctx context.Context, env *benchEnv) ([]result, error) {
	c, err := benchLogin(ctx, env)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	size := env.opts.fileSize
	h := sha256.New()
	if _, err := io.Copy(h, newPatternReader(size)); err != nil {
		return nil, err
	}
	sum := h.Sum(nil)

	const name = "vbench-file"
	cpu0, _ := env.cpuSeconds()
	t0 := time.Now()
	var sent time.Duration
	progress := func(done, total int64) {
		if done == total {
			sent = time.Since(t0)
		}
	}
	if _, err := c.Upload(ctx, newPatternReader(size), size, sum, name, &client.UploadOptions{Force: true, Progress: progress}); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	up := time.Since(t0)
	cpu1, _ := env.cpuSeconds()
	t0 = time.Now()
	got, err := c.Download(ctx, name, io.Discard, nil)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	down := time.Since(t0)
	cpu2, cpuErr := env.cpuSeconds()
	if got != size {
		return nil, fmt.Errorf("download: %d bytes, want %d", got, size)
	}
	if err := c.DeleteFile(ctx, name, nil); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	mb := float64(size) / 1e6
	label := sizeLabel(size)
	note := "MB = 10^6 bytes; upload includes the server's fsync"
	res := []result{
		{what: "file upload, " + label + ", one session", value: mb / up.Seconds(), unit: "MB/s", target: "≥ 300 MB/s", note: note},
		{what: "file upload, waiting for the final OK (fsync, rename)", value: ms(up - sent), unit: "ms"},
		{what: "file download, " + label + ", one session", value: mb / down.Seconds(), unit: "MB/s", target: "≥ 300 MB/s", note: "MB = 10^6 bytes"},
	}
	if cpuErr == nil && env.pid() != 0 {
		gib := float64(size) / (1 << 30)
		res = append(res,
			result{what: "server CPU per GiB uploaded", value: (cpu1 - cpu0) / gib, unit: "s"},
			result{what: "server CPU per GiB downloaded", value: (cpu2 - cpu1) / gib, unit: "s"})
	}
	return res, nil
}

func sizeLabel(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// patternReader yields size bytes of a fixed pseudo-random pattern: a 1 MiB
// block, repeated, so that producing data costs one copy and no memory.
type patternReader struct {
	block []byte
	off   int64
	size  int64
}

func newPatternReader(size int64) *patternReader {
	block := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range block {
		block[i] = byte(r.Uint32())
	}
	return &patternReader{block: block, size: size}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.size-p.off)]
	n := 0
	for n < len(b) {
		i := int((p.off + int64(n)) % int64(len(p.block)))
		n += copy(b[n:], p.block[i:])
	}
	p.off += int64(n)
	return n, nil
}

// benchLogin opens a logged-in session: on a server vbench started, as a
// first admin it creates with the setup token; on a running one, as -u with
// $VSERV_PASSWORD.
func benchLogin(ctx context.Context, env *benchEnv) (*client.Client, error) {
	name, pass := env.opts.user, os.Getenv("VSERV_PASSWORD")
	if env.dataDir != "" {
		name, pass = "bench", "bench-password"
		// Scenarios log in many sessions, some at once; the admin is made
		// once, by the first.
		env.adminOnce.Do(func() {
			token, err := os.ReadFile(filepath.Join(env.dataDir, "data", "setup-token"))
			if err != nil {
				env.adminErr = fmt.Errorf("read the setup token: %w", err)
				return
			}
			c, err := env.dial(ctx)
			if err != nil {
				env.adminErr = err
				return
			}
			_, err = c.InitAdmin(ctx, name, pass, strings.TrimSpace(string(token)))
			c.Close()
			if err != nil {
				env.adminErr = fmt.Errorf("uini: %w", err)
			}
		})
		if env.adminErr != nil {
			return nil, env.adminErr
		}
	} else if name == "" || pass == "" {
		return nil, fmt.Errorf("this scenario needs an account: give -u USER and set $VSERV_PASSWORD (or use --vserv)")
	}
	c, err := env.dial(ctx)
	if err != nil {
		return nil, err
	}
	env.loginMu.Lock()
	l, err := c.Login(ctx, name, pass)
	env.loginMu.Unlock()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", name, err)
	}
	if l.Needs2FA {
		c.Close()
		return nil, fmt.Errorf("login %s: the account needs a second factor; use one without", name)
	}
	return c, nil
}
