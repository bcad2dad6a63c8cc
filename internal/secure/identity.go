package secure

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vserv/vserv/internal/datadir"
)

// File names inside the data directory (§2.6).
const (
	identityFile    = datadir.IdentityFile
	serverIDFile    = datadir.ServerIDFile
	oldIdentityStem = identityFile + ".old-"
)

// Identity is the server's long-term Ed25519 key and its stable server-id.
// The key signs pool keys and checkpoints; the server-id names the server's
// origins and outlives key rotations.
type Identity struct {
	Key      ed25519.PrivateKey
	ServerID string
}

// Public returns the identity's public key.
func (id *Identity) Public() ed25519.PublicKey {
	return id.Key.Public().(ed25519.PublicKey)
}

// LoadOrCreateIdentity loads the identity from dataroot, creating dataroot
// (0700), identity.key (0600) and server-id on first start. created reports
// whether a new key was made. identity.key must not be accessible to group or
// others.
func LoadOrCreateIdentity(dataroot string) (id *Identity, created bool, err error) {
	if err := datadir.MakePrivateDir(dataroot); err != nil {
		return nil, false, fmt.Errorf("data directory: %w", err)
	}
	key, err := loadIdentityKey(dataroot)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createIdentity(dataroot)
	case err != nil:
		return nil, false, err
	}
	serverID, err := loadServerID(dataroot, key)
	if err != nil {
		return nil, false, err
	}
	return &Identity{Key: key, ServerID: serverID}, false, nil
}

func createIdentity(dataroot string) (*Identity, bool, error) {
	// A server-id without its key means the key was lost or moved; making a
	// new key under the old name would silently change who the server is.
	if _, err := os.Lstat(filepath.Join(dataroot, serverIDFile)); err == nil {
		return nil, false, fmt.Errorf("%s exists but %s is missing: restore the key, or remove %s to start as a new server",
			serverIDFile, identityFile, serverIDFile)
	}
	key, err := newIdentityKey()
	if err != nil {
		return nil, false, err
	}
	// Key first: a crash before server-id is written leaves a state that
	// loadServerID repairs from this same (first) key.
	if err := datadir.WriteFile(filepath.Join(dataroot, identityFile), key.Seed()); err != nil {
		return nil, false, err
	}
	id := &Identity{Key: key, ServerID: ServerIDOf(key.Public().(ed25519.PublicKey))}
	if err := writeServerID(dataroot, id.ServerID); err != nil {
		return nil, false, err
	}
	return id, true, nil
}

// RotateIdentity replaces identity.key with a new key, keeping the old seed
// as identity.key.old-<unix> (0600). The server-id does not change. The
// caller (vserv keygen --identity, server stopped) records the rotation in
// the ledger with the old key.
func RotateIdentity(dataroot string) (old, next *Identity, err error) {
	oldKey, err := loadIdentityKey(dataroot)
	if err != nil {
		return nil, nil, fmt.Errorf("rotate identity: %w", err)
	}
	serverID, err := loadServerID(dataroot, oldKey)
	if err != nil {
		return nil, nil, fmt.Errorf("rotate identity: %w", err)
	}
	newKey, err := newIdentityKey()
	if err != nil {
		return nil, nil, err
	}
	// Keep the old seed before replacing it, so that no crash can lose it.
	if err := keepOldIdentity(dataroot, oldKey.Seed(), time.Now().Unix()); err != nil {
		return nil, nil, fmt.Errorf("rotate identity: %w", err)
	}
	if err := datadir.WriteFile(filepath.Join(dataroot, identityFile), newKey.Seed()); err != nil {
		return nil, nil, fmt.Errorf("rotate identity: %w", err)
	}
	return &Identity{Key: oldKey, ServerID: serverID}, &Identity{Key: newKey, ServerID: serverID}, nil
}

// RestoreIdentity puts old back as identity.key: the undo of RotateIdentity
// when the rotation could not be recorded in the ledger (a key nobody can
// follow to must not stay in place). The copy kept as
// identity.key.old-<unix> stays where it is.
func RestoreIdentity(dataroot string, old *Identity) error {
	serverID, err := loadServerID(dataroot, old.Key)
	if err != nil {
		return fmt.Errorf("restore identity: %w", err)
	}
	if serverID != old.ServerID {
		return fmt.Errorf("restore identity: the key is of server %s, this directory is %s", old.ServerID, serverID)
	}
	if err := datadir.WriteFile(filepath.Join(dataroot, identityFile), old.Key.Seed()); err != nil {
		return fmt.Errorf("restore identity: %w", err)
	}
	return nil
}

// keepOldIdentity writes seed to the first free identity.key.old-<unix>,
// counting up from unix: the name only has to be unique and roughly dated,
// and two rotations within a second must not overwrite each other.
func keepOldIdentity(dataroot string, seed []byte, unix int64) error {
	for ; ; unix++ {
		path := filepath.Join(dataroot, oldIdentityStem+strconv.FormatInt(unix, 10))
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return datadir.WriteFile(path, seed)
		} else if err != nil {
			return err
		}
	}
}

func newIdentityKey() (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	return key, nil
}

func loadIdentityKey(dataroot string) (ed25519.PrivateKey, error) {
	seed, err := readPrivateFile(filepath.Join(dataroot, identityFile), ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// loadServerID reads server-id. If it is missing and the key was never
// rotated, key is the first key and the file is rewritten from it (a crash
// between the two writes of createIdentity leaves exactly that state).
func loadServerID(dataroot string, key ed25519.PrivateKey) (string, error) {
	path := filepath.Join(dataroot, serverIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		rotated, gerr := filepath.Glob(filepath.Join(dataroot, oldIdentityStem+"*"))
		if gerr != nil {
			return "", gerr
		}
		if len(rotated) > 0 {
			return "", fmt.Errorf("%s is missing and the identity was rotated, so it cannot be recomputed: restore it", serverIDFile)
		}
		id := ServerIDOf(key.Public().(ed25519.PublicKey))
		return id, writeServerID(dataroot, id)
	}
	if err != nil {
		return "", fmt.Errorf("server-id: %w", err)
	}
	id, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return "", fmt.Errorf("%s: missing final newline", path)
	}
	if err := validServerID(id); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

func writeServerID(dataroot, id string) error {
	// Not a secret, but nothing else in the data directory is for others.
	return datadir.WriteFile(filepath.Join(dataroot, serverIDFile), []byte(id+"\n"))
}
