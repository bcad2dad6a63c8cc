// Package store defines the storage a vserv server runs on: chains (entries,
// id and time indexes, Merkle nodes, checkpoints, the rules' state of a
// schema chain), accounts (records, rights, second factors), the peers of
// replication and the witness state (witness.go), read and written in
// transactions.
//
// A backend (store/bolt, the embedded default; later store/postgres)
// implements Store and passes the conformance suite in store/storetest.
// Everything above this package (ledger, auth) talks to the interfaces only,
// so a second backend changes no caller.
//
// Values the account tables hold are opaque bytes: their encoding belongs to
// internal/auth; so are the peer table's, whose encoding is internal/replic's. Every byte slice a transaction returns is valid only until
// the transaction ends; copy what must outlive it.
package store

import (
	"context"
	"errors"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vserv/vserv/apps"
)

// ChainKey names a chain: the server-id of its home (its origin, §2.4 of
// docs/protocol.md) and its name there. A mirror holds chains of several
// origins side by side, so a name alone is not a key.
type ChainKey struct {
	Origin string // server-id of the chain's home
	Name   string
}

// String is the key as in a checkpoint's origin line minus "vserv/":
// "<server-id>/<name>".
func (k ChainKey) String() string { return k.Origin + "/" + k.Name }

// ChainMeta is what is stored about a chain besides its entries.
type ChainMeta struct {
	// Origin is the server-id of the chain's home. Empty in layout 1 (every
	// chain was the home's own); backends fill it when they read.
	Origin  string `cbor:"origin,omitempty"`
	Name    string `cbor:"name"`
	Public  bool   `cbor:"public"`
	PoWBits int    `cbor:"pow_bits"`
	Schema  string `cbor:"schema"`
	// Authority is the chain's authority keys in their text form, only with
	// a schema, fixed at creation.
	Authority []string `cbor:"authority,omitempty"`
	// ServerWritten chains (audit, keys) take records only from the server.
	ServerWritten bool `cbor:"server_written"`
}

// Key is the chain's key.
func (m ChainMeta) Key() ChainKey { return ChainKey{Origin: m.Origin, Name: m.Name} }

// IDRef is the id index's value: where a record id sits and the record hash
// it was accepted with, so a duplicate is told from a conflict without
// reading the entry.
type IDRef struct {
	Seq  uint64
	Hash [32]byte
}

// Keep says why a checkpoint is kept when a newer one is stored.
type Keep byte

const (
	KeepMilestone  Keep = 1 << iota // first to reach or pass a multiple of 1,000
	KeepExplicit                    // cosigned, or kept on request
	KeepBatchPoint                  // its size is a multiple of 128 (ledger.BatchEvery)
)

// StoredCheckpoint is a signed checkpoint note as stored.
type StoredCheckpoint struct {
	Size uint64
	Note []byte
	Keep Keep
	// Cosignatures are the witnesses' cosignature lines of the note (each
	// ending in a newline, docs/formats.md "Cosignatures"), nil for none.
	Cosignatures []byte
}

// TimeRef is one row of the server-time index.
type TimeRef struct {
	Ms  uint64
	Seq uint64
	ID  [16]byte
}

// Row is one entry to append, with what its indexes hold.
type Row struct {
	Seq        uint64
	Entry      []byte
	ID         [16]byte // the record id (id index, time index)
	RecordHash [32]byte // the id index's conflict check
	Ms         uint64   // server time (time index)
}

// Node is one Merkle tree node: its position and its 32-byte hash.
type Node struct {
	ID   compact.NodeID
	Hash []byte
}

// Fork is the evidence of a fork seen while mirroring a chain (DESIGN.md
// §5.2): the checkpoint the mirror held and the one it was offered, which
// cannot both be honest, kept so that anyone can check both signatures.
type Fork struct {
	Ms      uint64 // when the mirror saw it, unix ms
	Reason  string // what did not agree, for people
	Held    []byte // the checkpoint note the mirror held (nil before its first)
	Offered []byte // the checkpoint note it was offered
}

// ErrNoChain is returned, wrapped, for a chain the store does not hold.
var ErrNoChain = errors.New("no such chain in the store")

// Store is a storage backend. Its methods are safe for concurrent use.
type Store interface {
	// View runs fn in a read transaction: one consistent snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Update runs fn in a write transaction and returns only when the
	// transaction is durable; an error from fn (or ctx ending before the
	// commit) rolls everything back, leaving no trace.
	Update(ctx context.Context, fn func(WriteTx) error) error
	// Close releases the store. Transactions must have ended.
	Close() error
}

// ReadTx reads one consistent snapshot.
type ReadTx interface {
	ChainReader
	AccountReader
	WitnessReader
	PeerReader
}

// WriteTx changes the store inside one durable transaction.
type WriteTx interface {
	ReadTx
	ChainWriter
	AccountWriter
	WitnessWriter
	PeerWriter
	// OnCommit registers fn to run after the transaction is durable (not
	// when it is rolled back), in registration order.
	OnCommit(fn func())
}

// ChainReader reads the chains.
type ChainReader interface {
	// ServerID is the home's server-id, "" before it is set.
	ServerID() (string, error)
	// Chains lists every chain of every origin, by origin then name.
	Chains() ([]ChainMeta, error)
	// Size is one past the highest stored seq (0 for an empty chain).
	Size(c ChainKey) (uint64, error)
	// Entry returns nil when there is no entry at seq.
	Entry(c ChainKey, seq uint64) ([]byte, error)
	// Entries calls fn for the stored entries from seq from upward, in
	// order, with the seq they are stored under, until fn returns false or
	// an error.
	Entries(c ChainKey, from uint64, fn func(seq uint64, entry []byte) (bool, error)) error
	LookupID(c ChainKey, id [16]byte) (IDRef, bool, error)
	// Nodes returns the hashes of the given nodes, in the order asked; a
	// node that is not stored is nil.
	Nodes(c ChainKey, ids []compact.NodeID) ([][]byte, error)
	Checkpoint(c ChainKey, size uint64) (StoredCheckpoint, bool, error)
	LatestCheckpoint(c ChainKey) (StoredCheckpoint, bool, error)
	// Checkpoints calls fn for every stored checkpoint by increasing size.
	Checkpoints(c ChainKey, fn func(StoredCheckpoint) error) error
	// Times calls fn for index rows from (ms, seq) upward until fn returns
	// false or an error.
	Times(c ChainKey, ms, seq uint64, fn func(TimeRef) (bool, error)) error
	// AppState is the rules' state of a schema chain (apps.KV) and the chain
	// size it reflects; ok is false when it was never written. In a read
	// transaction the KV refuses Put.
	AppState(c ChainKey) (kv apps.KV, size uint64, ok bool, err error)
	// Forks calls fn for the fork evidence stored for chain c, oldest
	// first; a chain without any (or unknown to the store) calls it never.
	Forks(c ChainKey, fn func(Fork) error) error
}

// ChainWriter changes the chains.
type ChainWriter interface {
	SetServerID(id string) error
	// PutChain creates a chain or replaces its metadata.
	PutChain(meta ChainMeta) error
	// LockHead locks the chain's head against other writers until the
	// transaction ends and returns its size as stored now; the caller then
	// re-reads the frontier it extends. On a backend with one writer at a
	// time (bbolt) it only reads the size; on a shared database it is what
	// keeps two front ends from signing two heads of one size.
	LockHead(c ChainKey) (size uint64, err error)
	// Append stores entries with their id and time index rows.
	Append(c ChainKey, rows []Row) error
	PutNodes(c ChainKey, nodes []Node) error
	PutCheckpoint(c ChainKey, cp StoredCheckpoint) error
	DeleteCheckpoint(c ChainKey, size uint64) error
	// PutAppStateSize records the chain size the rules' state reflects, in
	// the same transaction as the entries and the state's writes.
	PutAppStateSize(c ChainKey, size uint64) error
	// ResetAppState drops the rules' state of a chain (to rebuild it).
	ResetAppState(c ChainKey) error
	// PutFork adds fork evidence for chain c, after every earlier one. The
	// chain need not be stored: evidence outlives what it is about.
	PutFork(c ChainKey, f Fork) error
}

// AccountReader reads the account tables. Keys are home names
// (auth.HomeName); values are auth's encoding.
type AccountReader interface {
	// Account returns nil when there is none.
	Account(home string) ([]byte, error)
	// Accounts calls fn for every account by home name.
	Accounts(fn func(home string, rec []byte) error) error
	AccountCount() (int, error)
	// Right returns nil when the account holds no right on chain.
	Right(home, chain string) ([]byte, error)
	// Rights calls fn for every chain an account holds rights on, by name.
	Rights(home string, fn func(chain string, v []byte) error) error
	// TwoFA returns nil when the account has no second-factor state.
	TwoFA(home string) ([]byte, error)
}

// AccountWriter changes the account tables.
type AccountWriter interface {
	PutAccount(home string, rec []byte) error
	// DeleteAccount removes the account record only (see DeleteRights,
	// DeleteTwoFA).
	DeleteAccount(home string) error
	// NextGeneration returns a number larger than every one it returned
	// before, in this store (account generations, which end sessions).
	NextGeneration() (uint64, error)
	PutRight(home, chain string, v []byte) error
	DeleteRight(home, chain string) error
	// DeleteRights removes every right of an account.
	DeleteRights(home string) error
	PutTwoFA(home string, v []byte) error
	DeleteTwoFA(home string) error
}

// PeerReader reads the peer table of replication and witnessing (the
// `ihost` entries, docs/protocol.md §11). Keys are internal/replic's (role
// and peer); values are its encoding.
type PeerReader interface {
	// Peer returns nil when there is none.
	Peer(key string) ([]byte, error)
	// Peers calls fn for every peer by key, in order.
	Peers(fn func(key string, v []byte) error) error
}

// PeerWriter changes the peer table.
type PeerWriter interface {
	PutPeer(key string, v []byte) error
	// DeletePeer removes a peer; removing one that is not there is no
	// error.
	DeletePeer(key string) error
}
