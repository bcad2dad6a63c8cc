// Package replic is replication and witnessing (DESIGN.md §3.5, §5;
// docs/protocol.md §11, §12): this server's peers, mirroring of chains
// between vserv servers over the encrypted protocol, and witnessing with
// C2SP tlog-witness.
//
// Today it holds:
//   - the peer table (peers.go), the `ihost` entries: one row per (role,
//     peer) in the store's peer table, with the credentials we log in there
//     with sealed under secret.key, and, for the roles that log in here
//     (mirror, home), the peer account bound to the peer's pinned key in the
//     same transaction;
//   - the witness (witness.go): the tlog-witness endpoint with which this
//     server cosigns the checkpoints of the logs it witnesses (Logs: the
//     peer table's `log` entries and --witness-log);
//   - the submitter (submit.go): our own checkpoints sent to the peer
//     table's `witness` entries, their cosignatures kept with the checkpoint.
//
// The mirroring workers (rpush, ihave, rentries) come next and read their
// peers from Peers; the ledger side of mirroring is internal/ledger's Mirror.
package replic
