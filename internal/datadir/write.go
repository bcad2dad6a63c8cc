package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// The modes of every directory and file this package makes: nothing in a
// data directory is for group or others (DESIGN.md §2.6).
const (
	DirPerm  fs.FileMode = 0o700
	FilePerm fs.FileMode = 0o600
)

// MakePrivateDir creates dir (and missing parents) with mode 0700. An
// existing directory is left as it is.
func MakePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, DirPerm); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return nil
}

// WriteFile replaces path with data, mode 0600, so that a reader (or a
// crash) sees either the old content or the new, never a mix: a temporary
// file in the same directory, fsync, rename, fsync of the directory so that
// the rename survives a crash too. The temporary file is named
// .<base>.tmp-<random>; a crash may leave one behind, never under path.
func WriteFile(path string, data []byte) error {
	return writeDurable(path, data, false)
}

// CreateFile is WriteFile for a file that must never be replaced: the synced
// temporary file is hard-linked into place, which fails, with an error that
// matches fs.ErrExist, if path exists (another process got there first).
func CreateFile(path string, data []byte) error {
	return writeDurable(path, data, true)
}

func writeDurable(path string, data []byte, exclusive bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp makes 0600 already; Chmod states it whatever the umask.
	if err := tmp.Chmod(FilePerm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if exclusive {
		// The temporary name goes in any case (the deferred Remove).
		if err := os.Link(tmpName, path); err != nil {
			return fmt.Errorf("create %s: %w", path, err) // matches fs.ErrExist when path exists
		}
	} else {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		renamed = true
	}
	return SyncDir(dir)
}

// SyncDir makes a rename, creation or removal in dir durable.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there (NTFS journals renames)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
