package ledger

import (
	"github.com/transparency-dev/merkle/compact"
	"github.com/vserv/vserv/apps"
)

// ChainMeta is what is stored about a chain besides its entries.
type ChainMeta struct {
	Name    string `cbor:"name"`
	Public  bool   `cbor:"public"`
	PoWBits int    `cbor:"pow_bits"`
	Schema  string `cbor:"schema"`
	// Authority is the chain's authority keys in their text form (§6.1),
	// only with a schema, fixed at creation.
	Authority []string `cbor:"authority,omitempty"`
	// ServerWritten chains (audit, keys) take records only from the server.
	ServerWritten bool `cbor:"server_written"`
}

// IDRef is the id index's value: where a record id sits and the record hash
// it was accepted with, so a duplicate is told from a conflict without
// reading the entry.
type IDRef struct {
	Seq  uint64
	Hash [32]byte
}

// Keep says why a checkpoint is kept when a newer one is stored (§4.4).
type Keep byte

const (
	KeepMilestone Keep = 1 << iota // first to reach or pass a multiple of 1,000
	KeepExplicit                   // cosigned, or kept on request
)

// StoredCheckpoint is a signed checkpoint note as stored.
type StoredCheckpoint struct {
	Size uint64
	Note []byte
	Keep Keep
}

// TimeRef is one row of the server-time index.
type TimeRef struct {
	Ms  uint64
	Seq uint64
	ID  [16]byte
}

// Store is the storage a Ledger runs on. All byte slices a ReadTx returns
// are valid only until the transaction ends.
type Store interface {
	View(fn func(ReadTx) error) error
	// Update runs fn in a write transaction and returns only when the
	// transaction is durable; an error from fn rolls everything back.
	Update(fn func(WriteTx) error) error
}

// ReadTx reads one consistent snapshot.
type ReadTx interface {
	ServerID() (string, error)
	Chains() ([]ChainMeta, error)
	// Size is one past the highest stored seq (0 for an empty chain).
	Size(chain string) (uint64, error)
	// Entry returns nil when there is no entry at seq.
	Entry(chain string, seq uint64) ([]byte, error)
	// Entries calls fn for the stored entries from seq from upward, in order,
	// with the key they are stored under, until fn returns false or an error.
	Entries(chain string, from uint64, fn func(seq uint64, entry []byte) (bool, error)) error
	LookupID(chain string, id [16]byte) (IDRef, bool, error)
	// Node returns nil when the node is not stored.
	Node(chain string, id compact.NodeID) ([]byte, error)
	Checkpoint(chain string, size uint64) (StoredCheckpoint, bool, error)
	LatestCheckpoint(chain string) (StoredCheckpoint, bool, error)
	// Checkpoints calls fn for every stored checkpoint by increasing size.
	Checkpoints(chain string, fn func(StoredCheckpoint) error) error
	// Times calls fn for index rows from (ms, seq) upward until fn returns
	// false or an error.
	Times(chain string, ms, seq uint64, fn func(TimeRef) (bool, error)) error
	// AppState is the store of the rules' state of a schema chain (apps.KV)
	// and the chain size it reflects; ok is false when it was never written
	// (a chain from before schemas, or a state dropped to be rebuilt). In a
	// read transaction the KV refuses Put.
	AppState(chain string) (kv apps.KV, size uint64, ok bool, err error)
}

// WriteTx changes the store inside one durable transaction.
type WriteTx interface {
	ReadTx
	SetServerID(id string) error
	PutChain(meta ChainMeta) error
	// Append stores the entry at seq with its id and time index rows.
	Append(chain string, seq uint64, entry []byte, id [16]byte, recordHash [32]byte, ms uint64) error
	PutNode(chain string, id compact.NodeID, hash []byte) error
	PutCheckpoint(chain string, cp StoredCheckpoint) error
	DeleteCheckpoint(chain string, size uint64) error
	// PutAppStateSize records the chain size the rules' state reflects, in
	// the same transaction as the entries and the state's writes.
	PutAppStateSize(chain string, size uint64) error
	// ResetAppState drops the rules' state of a chain (to rebuild it).
	ResetAppState(chain string) error
}
