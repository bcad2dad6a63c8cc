// Package cmdspec describes protocol commands as a client sees them: the
// connection states of DESIGN.md §2.5, and for each command its lowest
// state, argument counts, usage text and flags (secret, allowed in state
// user). It imports nothing of the server, so a client binary can read the
// same declarations the server's command table is built from without
// pulling in its storage: vcli's history filter is Secret's list.
//
// The core commands (connection, accounts, second factor, help) are
// declared here, in Core; the server binds their handlers. Commands of other
// areas (ledger, files) declare their Spec beside their handler.
package cmdspec

// State is a connection's place in DESIGN.md §2.5. The order matters: a
// command runs when the connection's state is at least the command's minimum.
type State int

const (
	Initial  State = iota // connected, clear text
	Session               // encrypted session, not logged in
	User                  // password accepted, a second factor still owed
	Verified              // logged in
)

func (s State) String() string {
	switch s {
	case Initial:
		return "initial"
	case Session:
		return "session"
	case User:
		return "user"
	case Verified:
		return "verified"
	}
	return "unknown"
}

// Flags are the properties of a command that code outside its handler
// acts on.
type Flags uint8

const (
	// Secret: the arguments carry credentials (passwords, codes, tokens).
	// They are never logged, and clients keep such lines out of their
	// history.
	Secret Flags = 1 << iota
	// UserState: the command runs in state user, where a password was
	// accepted and a second factor is owed (DESIGN.md §2.5). A command
	// whose minimum is User runs there only with this flag; one whose
	// minimum is Initial or Session runs there as in an anonymous session.
	UserState
	// Replicate: a peer account (DESIGN.md §3.5) may run it. A peer
	// account in state verified runs what an anonymous session runs,
	// logout, and the commands with this flag; anything else is ERR perm.
	Replicate
)

// Spec is the client-visible description of one command; the table holds
// it under the command's name.
type Spec struct {
	Min              State // the lowest state it runs in
	MinArgs, MaxArgs int
	Usage            string // what `help name` shows, before "(needs state …)"
	Flags            Flags
}

// IsSecret reports whether the command (or alias) name is Secret: the
// secret commands are all in Core and Replication.
func IsSecret(name string) bool {
	if n, found := CoreAliases()[name]; found {
		name = n
	}
	return (Core()[name].Flags|Replication()[name].Flags)&Secret != 0
}
