package server

import "github.com/vserv/vserv/internal/server/cmdspec"

// state is a connection's place in DESIGN.md §2.5 (cmdspec.State, under the
// short names the core uses).
type state = cmdspec.State

const (
	stateInitial  = cmdspec.Initial
	stateSession  = cmdspec.Session
	stateUser     = cmdspec.User
	stateVerified = cmdspec.Verified
)
