// Package ledger keeps vserv's chains (DESIGN.md §4): it validates records,
// appends entries through one group-committing writer, maintains the RFC 6962
// Merkle tree and signed checkpoints, answers reads and proofs, and verifies
// a database offline.
//
// The formats themselves (records, entries, checkpoints, receipts) live in
// the public package verify, so that the server and every independent
// verifier share one definition; this package adds state and durability.
//
// Storage is a store.Store (internal/store): the ledger keys its chains by
// (its server-id, name) and reads and writes only through the interfaces, so
// that a second backend changes nothing here. Every backend runs the
// conformance suite of internal/store/storetest; store/bolt, the embedded
// one, holds everything in ledger.db. Open takes a Store the caller opened
// and still owns. The committer locks each chain's head in its transaction
// (store.ChainWriter.LockHead) and reloads the chain when the stored size is
// not the one it holds, so that it signs only checkpoints that extend the
// head as stored, even with another writer on a shared store.
//
// Durability: Append returns only after the store transaction that holds the
// entries, their indexes, Merkle nodes and the new signed checkpoint is
// durable (Store.Update's contract; bbolt fsyncs on commit). Nothing is
// shown to a reader before that: the in-memory head of a chain is updated
// after the commit.
package ledger
