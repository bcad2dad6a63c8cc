// Package replic is replication and witnessing (DESIGN.md §3.5, §5;
// docs/protocol.md §11): this server's peers, mirroring of chains between
// vserv servers over the encrypted protocol, and witnessing with C2SP
// tlog-witness.
//
// Today it holds the peer table, the `ihost` entries: one row per (role,
// peer), stored in the store's peer table (store.PeerReader) in this
// package's CBOR encoding, with the credentials we log in there with
// sealed under secret.key (auth.Store.SealPeerSecret), and, for the roles
// that log in here (mirror, home), the peer account bound to the peer's
// pinned key in the same transaction (auth.Store.BindPeer). Nothing here
// dials yet: the mirroring and witnessing workers come next and read their
// peers from Peers.
package replic
