package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vserv/vserv/internal/datadir"
)

// SecretKeyFile is the name of the sealing key inside the data directory.
const SecretKeyFile = datadir.SecretKeyFile

// LoadOrCreateSecretKey returns the 32-byte key in <dataroot>/secret.key,
// creating it with fresh random bytes (mode 0600) when it does not exist.
// The directory must exist. Creation is atomic (datadir.CreateFile): the key
// is written and synced under a temporary name and then hard-linked into
// place, which fails rather than overwrites if another process got there
// first; the loser reads the winner's key. A key file of the wrong size or readable by group or
// others is an error, not something to repair silently: replacing the key
// would make every sealed TOTP secret unreadable.
func LoadOrCreateSecretKey(dataroot string) ([]byte, error) {
	path := filepath.Join(dataroot, SecretKeyFile)
	key, err := readSecretKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, SecretKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate %s: %w", path, err)
	}
	if err := datadir.CreateFile(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecretKey(path)
		}
		return nil, err
	}
	return key, nil
}

func readSecretKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // keeps fs.ErrNotExist visible to the caller
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible to group or others (mode %v): run chmod 600 on it", path, info.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, SecretKeyLen+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(key) != SecretKeyLen {
		return nil, fmt.Errorf("%s must hold exactly %d bytes", path, SecretKeyLen)
	}
	return key, nil
}
