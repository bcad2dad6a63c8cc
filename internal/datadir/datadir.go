// Package datadir is the data directory of one vserv server (DESIGN.md
// §2.6): the path of everything in it, the one durable writer of its private
// files, the setup token, and the opening of its log. The database is
// opened by its storage backend (internal/store/bolt.OpenDB at DBPath).
//
// It is a leaf: it imports only the standard library, so that
// every package that keeps something in the data directory (secure, auth,
// ledger, server, the offline tools of cmd/vserv) can name and write its
// files through it.
package datadir

import "path/filepath"

// Names inside the data directory (DESIGN.md §2.6).
const (
	DBFile          = "ledger.db"     // the database
	IdentityFile    = "identity.key"  // the Ed25519 seed (0600)
	ServerIDFile    = "server-id"     // the server-id (§2.4)
	PoolDir         = "pool"          // session keys, pool/<kid>.key (0600)
	SecretKeyFile   = "secret.key"    // the key sealing secrets inside the database (0600)
	SetupTokenFile  = "setup-token"   // while no account exists (0600)
	FilesDir        = "files"         // the user homes, files/<user>/
	DeletedHomesDir = "deleted-homes" // the homes of deleted accounts, kept for the operator
	HeadsFile       = "heads"         // the newest checkpoint signed per chain
	LogDir          = "log"           // log/vserv.log
	LogFile         = "vserv.log"
)

// Dir is a data directory, named by its root. The path methods only join
// names; Create, OpenLog and the setup token touch the disk.
type Dir struct{ root string }

// New returns the data directory at root.
func New(root string) Dir { return Dir{root: root} }

// Root is the directory itself.
func (d Dir) Root() string { return d.root }

// Create makes the directory (0700) and its missing parents. An existing
// directory keeps its mode: the operator may have reasons.
func (d Dir) Create() error { return MakePrivateDir(d.root) }

// DBPath is ledger.db.
func (d Dir) DBPath() string { return d.path(DBFile) }

// IdentityPath is identity.key.
func (d Dir) IdentityPath() string { return d.path(IdentityFile) }

// ServerIDPath is server-id.
func (d Dir) ServerIDPath() string { return d.path(ServerIDFile) }

// PoolDir is the session key pool's directory.
func (d Dir) PoolDir() string { return d.path(PoolDir) }

// SecretKeyPath is secret.key.
func (d Dir) SecretKeyPath() string { return d.path(SecretKeyFile) }

// SetupTokenPath is setup-token.
func (d Dir) SetupTokenPath() string { return d.path(SetupTokenFile) }

// FilesDir is the root of the user homes.
func (d Dir) FilesDir() string { return d.path(FilesDir) }

// DeletedHomesDir is where the homes of deleted accounts go.
func (d Dir) DeletedHomesDir() string { return d.path(DeletedHomesDir) }

// HeadsPath is the heads file.
func (d Dir) HeadsPath() string { return d.path(HeadsFile) }

// LogPath is log/vserv.log.
func (d Dir) LogPath() string { return filepath.Join(d.root, LogDir, LogFile) }

func (d Dir) path(name string) string { return filepath.Join(d.root, name) }
