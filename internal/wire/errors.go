package wire

import (
	"errors"
	"fmt"
)

// Code is an ERR code of DESIGN.md §2.1. The set is closed: a peer that sends
// another code is treated as sending CodeInternal.
type Code string

// The ERR codes.
const (
	CodeProto    Code = "proto"    // malformed message, unknown command, wrong argument types or count
	CodeState    Code = "state"    // not allowed in this connection state
	CodeAuth     Code = "auth"     // login or second factor failed; always one fixed text
	CodePerm     Code = "perm"     // not allowed for this account or address
	CodeNotFound Code = "notfound" // no such record, file, user, host
	CodeExists   Code = "exists"   // duplicate user, chain or file
	CodeConflict Code = "conflict" // same id with other content; inconsistent checkpoint
	CodeInvalid  Code = "invalid"  // well-formed but unacceptable
	CodeLimit    Code = "limit"    // quota, size, connection or rate limit
	CodeInternal Code = "internal" // server fault
)

// Known reports whether c is one of the codes above.
func (c Code) Known() bool {
	switch c {
	case CodeProto, CodeState, CodeAuth, CodePerm, CodeNotFound, CodeExists,
		CodeConflict, CodeInvalid, CodeLimit, CodeInternal:
		return true
	}
	return false
}

// Meaning is a short description of the code, for a person reading an ERR
// whose text is empty.
func (c Code) Meaning() string {
	switch c {
	case CodeProto:
		return "malformed request"
	case CodeState:
		return "not allowed in this connection state"
	case CodeAuth:
		return AuthFailedText
	case CodePerm:
		return "permission denied"
	case CodeNotFound:
		return "not found"
	case CodeExists:
		return "already exists"
	case CodeConflict:
		return "conflicts with what the server holds"
	case CodeInvalid:
		return "well-formed but unacceptable"
	case CodeLimit:
		return "over a limit"
	}
	return "server fault"
}

// AuthFailedText is the one text every login failure carries, so that an
// answer never tells an unknown name from a wrong password or a locked account.
const AuthFailedText = "authentication failed"

// NoChain is the ERR notfound of a chain that does not exist for the
// client, arg exactly as it gave it (docs/protocol.md §9, "Chains that do not
// exist"): the same bytes whether the chain is missing or private to others.
func NoChain(arg string) error { return Errorf(CodeNotFound, "no chain %q", arg) }

// Error is an ERR reply: ["ERR", code, text, extra...]. Packages return it for
// every failure a client should see; anything else becomes CodeInternal.
type Error struct {
	Code  Code
	Text  string
	Extra []any // further reply elements, e.g. the index of a bad record in a batch
}

func (e *Error) Error() string { return "ERR " + string(e.Code) + ": " + e.Text }

// Is makes errors.Is(err, &Error{Code: c}) match any Error with code c, and
// errors.Is(err, ErrNotFound) (the code sentinels below) work on wrapped errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Text == "" || t.Text == e.Text)
}

// Errorf returns an *Error with the given code and a formatted text.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is: errors.Is(err, wire.ErrNotFound) is true for any
// *Error with code notfound.
var (
	ErrProto    = &Error{Code: CodeProto}
	ErrState    = &Error{Code: CodeState}
	ErrAuth     = &Error{Code: CodeAuth}
	ErrPerm     = &Error{Code: CodePerm}
	ErrNotFound = &Error{Code: CodeNotFound}
	ErrExists   = &Error{Code: CodeExists}
	ErrConflict = &Error{Code: CodeConflict}
	ErrInvalid  = &Error{Code: CodeInvalid}
	ErrLimit    = &Error{Code: CodeLimit}
	ErrInternal = &Error{Code: CodeInternal}
)

// CodeOf returns the code of the first *Error in err's chain, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
