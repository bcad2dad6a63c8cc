package secure

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vserv/vserv/internal/datadir"
)

// readPrivateFile reads a secret file of exactly size bytes and refuses it
// if group or others have any permission on it: a key others could read must
// be treated as leaked, which is the operator's call, not ours.
func readPrivateFile(path string, size int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	// Windows guards files with ACLs, not mode bits (Go reports 0666 or 0444
	// for every file), so there is nothing to check there; docs/operations.md
	// says how to restrict the data directory instead.
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: it must not be accessible to group or others (chmod 600 it if it has not leaked)", path, perm)
	}
	if st.Size() != int64(size) {
		return nil, fmt.Errorf("read %s: %d bytes, want %d", path, st.Size(), size)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf, nil
}

// eraseFile overwrites a secret file with zeros, syncs it, and removes it.
// On copy-on-write or flash storage the old blocks may survive the overwrite;
// it is still the best a program can do, and it defeats a plain undelete.
func eraseFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("erase %s: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, st.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("erase %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("erase %s: %w", path, err)
	}
	return datadir.SyncDir(filepath.Dir(path))
}
