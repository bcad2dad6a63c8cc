package datadir

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// OpenLog returns a logger that writes text records to stderr and to
// log/vserv.log (appended, 0600; the log directory 0700), and the file to
// close at exit.
func (d Dir) OpenLog(stderr io.Writer, level slog.Level) (*slog.Logger, io.Closer, error) {
	path := d.LogPath()
	if err := os.MkdirAll(filepath.Dir(path), DirPerm); err != nil {
		return nil, nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, FilePerm)
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	h := slog.NewMultiHandler(slog.NewTextHandler(stderr, opts), slog.NewTextHandler(f, opts))
	return slog.New(h), f, nil
}
