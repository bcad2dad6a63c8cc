package server

// state is a connection's place in DESIGN.md §2.5. The order matters: a
// command runs when the connection's state is at least the command's minimum.
type state int

const (
	stateInitial  state = iota // connected, clear text
	stateSession               // encrypted session, not logged in
	stateUser                  // password accepted, a second factor still owed
	stateVerified              // logged in
)

func (s state) String() string {
	switch s {
	case stateInitial:
		return "initial"
	case stateSession:
		return "session"
	case stateUser:
		return "user"
	case stateVerified:
		return "verified"
	}
	return "unknown"
}
