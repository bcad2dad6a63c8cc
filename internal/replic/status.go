package replic

import "time"

// ChainStatus is what the replication workers know of one chain at one
// peer: a row of `ihost list`'s detail and of the mirror metrics
// (vserv_mirror_lag_entries, vserv_mirror_lag_seconds).
type ChainStatus struct {
	Peer  string // the ihost entry's peer
	Role  Role   // RoleMirror (we push to it) or RoleHome (we pull from it)
	Chain string // full origin line vserv/<home server-id>/<name>
	// Hops is how far the mirror end is from the home: for a mirror peer
	// the hops it holds the chain at (ours + 1), for a home peer ours.
	Hops uint64
	// Size is what the mirror end holds (the peer for RoleMirror, this
	// server for RoleHome); Want what the home end holds as far as known.
	Size, Want uint64
	// LagEntries is Want-Size; LagSeconds how long ago the oldest entry
	// the mirror end lacks was committed (0 when it lacks none).
	LagEntries uint64
	LagSeconds float64
	LastError  string    // "" after a success
	ErrorAt    time.Time // when LastError was set
	LastOK     time.Time // the last exchange that succeeded
	Forks      uint64    // fork evidence kept for this chain
	// Refused says the peer presented another key than the pinned one (or
	// refused our sign-in): nothing is exchanged, and it is tried again
	// only after the longest backoff (5 min) or when the entry changes.
	Refused bool

	behindSince time.Time // RoleHome: when we learnt we lack entries
}

func (s *ChainStatus) setError(text string, now time.Time) { s.LastError, s.ErrorAt = text, now }
