package datadir

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
)

// SetupToken is the setup-token file (DESIGN.md §2.6), written at first
// start while no account exists: `uini` must present its contents, so that
// only someone who can read the data directory creates the first admin
// (loopback alone is not enough on a shared machine). The file holds 32
// lowercase hex characters and a newline.
type SetupToken struct {
	path string
	mu   sync.Mutex // a check never reads a half-removed token
}

// SetupToken returns the data directory's setup token.
func (d Dir) SetupToken() *SetupToken { return &SetupToken{path: d.SetupTokenPath()} }

// Path is the token's file.
func (t *SetupToken) Path() string { return t.path }

// Ensure writes a fresh token when needed (no account exists) and there is
// none yet, keeping one a user may already have copied; when not needed it
// removes a stale one. written reports that a new token was written.
func (t *SetupToken) Ensure(needed bool) (written bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !needed {
		if err := os.Remove(t.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("remove stale setup token: %w", err)
		}
		return false, nil
	}
	if _, err := os.Stat(t.path); err == nil {
		return false, nil
	}
	b := make([]byte, 16)
	rand.Read(b)
	if err := WriteFile(t.path, []byte(hex.EncodeToString(b)+"\n")); err != nil {
		return false, fmt.Errorf("write setup token: %w", err)
	}
	return true, nil
}

// Check compares token with the file in constant time. A missing or
// malformed file matches nothing.
func (t *SetupToken) Check(token string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, err := os.ReadFile(t.path)
	if err != nil {
		return false
	}
	want := strings.TrimSuffix(string(b), "\n")
	return len(want) == 32 && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// Remove deletes the token (once it was used). A missing one is no error;
// any other is the *fs.PathError of the removal, which names the file.
func (t *SetupToken) Remove() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := os.Remove(t.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
