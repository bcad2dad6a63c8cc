package secure

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// privateDirPerm and privateFilePerm are the modes of the data directory and
// of every file holding a secret.
const (
	privateDirPerm  = 0o700
	privateFilePerm = 0o600
)

// makePrivateDir creates dir (and missing parents) with mode 0700. An
// existing directory is left as it is: the operator may have reasons.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, privateDirPerm); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a reader (or a crash) sees
// either the old content or the new, never a mix: temp file in the same
// directory, fsync, rename, fsync of the directory so the rename survives.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
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
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes a rename, creation or removal in dir durable.
func syncDir(dir string) error {
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
	return syncDir(filepath.Dir(path))
}
