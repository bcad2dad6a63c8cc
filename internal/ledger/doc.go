// Package ledger keeps vserv's chains (DESIGN.md §4): it validates records,
// appends entries through one group-committing writer, maintains the RFC 6962
// Merkle tree and signed checkpoints, answers reads and proofs, and verifies
// a database offline.
//
// The formats themselves (records, entries, checkpoints, receipts) live in
// the public package verify, so that the server and every independent
// verifier share one definition; this package adds state and durability.
//
// Storage sits behind the small Store interface (store.go). The bbolt
// implementation lives in this package rather than in a subpackage on
// purpose: Open takes the *bbolt.DB the server already holds, and the
// interface, the committer that uses it and the tests that pin its
// behaviour change together while there is one backend. A PostgreSQL
// backend implements Store in a package of its own and is passed to
// OpenStore; the conformance tests in store_test.go are written against the
// interface so that they can run on it unchanged.
//
// Durability: Append returns only after the bbolt transaction that holds the
// entries, their indexes, Merkle nodes and the new signed checkpoint has been
// committed, and bbolt fsyncs on commit. Nothing is shown to a reader before
// that: the in-memory head of a chain is updated after the commit.
package ledger
