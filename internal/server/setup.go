package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// setupTokenFile is written at first start while no account exists; `uini`
// must present its contents, so that only someone who can read the data
// directory creates the first admin (loopback alone is not enough on a shared
// machine).
const setupTokenFile = "setup-token"

func (s *Server) writeSetupTokenIfNeeded(ctx context.Context) error {
	n, err := s.accounts.Count(ctx)
	if err != nil {
		return fmt.Errorf("count accounts: %w", err)
	}
	path := filepath.Join(s.cfg.DataRoot, setupTokenFile)
	if n > 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale setup token: %w", err)
		}
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil // keep the token a user may already have copied
	}
	if err := writeFileAtomic(path, []byte(newID(16)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write setup token: %w", err)
	}
	s.log.Info("no account exists yet: create the first admin from this machine with `vcli uini`", "setup_token_file", path)
	return nil
}

// checkSetupToken compares token with the file in constant time.
func (s *Server) checkSetupToken(token string) bool {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.cfg.DataRoot, setupTokenFile))
	if err != nil {
		return false
	}
	want := strings.TrimSuffix(string(b), "\n")
	return len(want) == 32 && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

func (s *Server) removeSetupToken() {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	if err := os.Remove(filepath.Join(s.cfg.DataRoot, setupTokenFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("remove setup token", "err", err)
	}
}

// writeFileAtomic writes data to path through a synced temporary file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there (NTFS journals renames)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// OpenLog returns a logger that writes text records to stderr and to
// <dataroot>/log/vserv.log, and the file to close at exit.
func OpenLog(dataroot string, stderr io.Writer, level slog.Level) (*slog.Logger, io.Closer, error) {
	dir := filepath.Join(dataroot, "log")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "vserv.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	h := slog.NewMultiHandler(slog.NewTextHandler(stderr, opts), slog.NewTextHandler(f, opts))
	return slog.New(h), f, nil
}
