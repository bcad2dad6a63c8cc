// Package apps holds the server-enforced rules and the views of the
// applications (docs/applications.md): the schemas `vote` (§2), `donation`
// (§3) and `resource` (§4), with the common rules of §1. It is pure and
// deterministic code over entries: the server's committer runs it inside its
// write transaction, and `vcli recount` and the web page run the same code
// over downloaded entries (it builds for GOOS=js GOARCH=wasm and imports
// nothing of the server).
//
// A schema keeps its state and its views in a key/value store the caller
// provides (KV): the server keeps it in its database in the same transaction
// as the entry, recount in a MapKV. Apply checks one event against the state
// left by every earlier event of the chain and, if every rule holds, updates
// the state and the views' counters, so that View is O(size of the view).
// docs/applications.md describes every rule and view for users.
package apps

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
)

// KV is the store a schema keeps a chain's state in, one KV per chain.
//
// Get returns nil and no error when key is absent; the schemas decode what
// it returns at once and never modify it, so it may alias the store's pages
// (as bbolt's Get does). Put may keep val without copying: Apply never
// modifies or reuses a slice it has passed to Put (bbolt requires that for
// the life of the transaction). The schemas never store an empty value, so a
// store that cannot tell an empty value from an absent one is fine. Any
// error from either means the store failed, not that a rule did: Apply
// returns it wrapped, never as a *RuleError.
type KV interface {
	Get(key []byte) ([]byte, error)
	Put(key, val []byte) error
}

// MapKV is an in-memory KV, for recount, tests and the browser.
type MapKV map[string][]byte

// Get implements KV.
func (m MapKV) Get(key []byte) ([]byte, error) { return m[string(key)], nil }

// Put implements KV.
func (m MapKV) Put(key, val []byte) error {
	m[string(key)] = bytes.Clone(val)
	return nil
}

// Chain is what a schema needs to know about its chain (§3.4 `mkchain`).
type Chain struct {
	Name      string
	Origin    string // the home's server-id (§4.3 `origin`)
	Schema    string
	Authority []ed25519.PublicKey // 0–16 keys, fixed at creation
}

// Event is one record of a schema chain as the rules see it: the entry's
// position, time and leaf hash, and the record's type, payload and author.
type Event struct {
	Seq  uint64
	Time uint64   // the entry's server time, unix ms (§4.3)
	Leaf [32]byte // the entry's leaf hash (§4.3)
	Type string
	// Payload is the record's payload as package canon decodes it: maps are
	// map[string]any, unsigned integers uint64, negative ones int64, byte
	// strings []byte. Values of other Go types are refused as wrong types.
	Payload any
	// Author is the record's author, nil if unsigned. The caller has
	// checked the signature (verify.Record.CheckSig) before Apply.
	Author ed25519.PublicKey
}

// Right is the per-chain right an accepted event needs (§3.2 `grant`). The
// rules cannot see accounts: the caller checks that the submitting account
// holds it, and refuses (ERR perm) otherwise.
type Right uint8

const (
	// Write is the right to append to the chain.
	Write Right = iota + 1
	// Manage is the right to append authority events (§6.1).
	Manage
)

func (r Right) String() string {
	switch r {
	case Write:
		return "write"
	case Manage:
		return "manage"
	}
	return fmt.Sprintf("Right(%d)", uint8(r))
}

// Result is what Apply tells the caller about an accepted event.
type Result struct {
	Needs Right  // the right the submitting account must hold
	EID   string // the allocated electronic ID, for vote.register only (§6.2)
}

// ErrRefused is what every *RuleError matches with errors.Is.
var ErrRefused = errors.New("refused by the chain's rules")

// RuleError is an event the rules refuse (ERR invalid). Its text names the
// event type and says which rule failed, e.g. "vote.cast: voter
// mfrggzdfmztwq2lk already has an active cast on ballot b1".
type RuleError struct {
	Type string // the event type, as submitted
	Rule string // a short stable name of the rule, e.g. "one-active-cast"
	Text string // what is wrong, for people
}

func (e *RuleError) Error() string {
	if e.Type == "" {
		return "record type: " + e.Text
	}
	return e.Type + ": " + e.Text
}

// Is makes errors.Is(err, ErrRefused) true for every *RuleError.
func (e *RuleError) Is(target error) bool { return target == ErrRefused }

func refuse(typ, rule, format string, args ...any) *RuleError {
	return &RuleError{Type: typ, Rule: rule, Text: fmt.Sprintf(format, args...)}
}

// Errors of View, testable with errors.Is: the server answers ErrNoView and
// ErrViewArgs with ERR invalid, ErrNotFound with ERR notfound.
var (
	ErrNoView   = errors.New("no such view")
	ErrViewArgs = errors.New("bad view arguments")
	ErrNotFound = errors.New("not found")
)

// Schema is the rules and views of one application.
type Schema interface {
	// Name is the schema's name, as mkchain takes it.
	Name() string
	// Apply checks ev against every rule of the schema and the state in kv
	// and, if all hold, records its effect in kv. A refused event returns a
	// *RuleError and leaves kv untouched (its writes are buffered and
	// written only on success); a KV failure returns that error wrapped,
	// possibly after some writes, and the caller must roll back.
	Apply(kv KV, c Chain, ev Event) (Result, error)
	// View returns the named view (a value the canon encoder encodes to a
	// CBOR map) from the state in kv, in time proportional to its size.
	View(kv KV, c Chain, name string, args map[string]any) (any, error)
	// Queries lists every view the state holds (every item and every page
	// of every list), for comparing two states (Compare) or a state with
	// a server's answers.
	Queries(kv KV) ([]Query, error)
}

// Query names one view with its arguments.
type Query struct {
	Name string
	Args map[string]any
}

func (q Query) String() string {
	keys := make([]string, 0, len(q.Args))
	for k := range q.Args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := q.Name
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%v", k, q.Args[k])
	}
	return s
}

// Schemas are the names For knows, in the order of §6.
var Schemas = []string{"vote", "donation", "resource"}

// For returns the schema of that name, or an error wrapping ErrNoSchema.
func For(name string) (Schema, error) {
	switch name {
	case "vote":
		return voteSchema, nil
	case "donation":
		return donationSchema, nil
	case "resource":
		return resourceSchema, nil
	}
	return nil, fmt.Errorf("%w %q (want vote, donation or resource)", ErrNoSchema, name)
}

// ErrNoSchema means a schema name that is not one of §6's.
var ErrNoSchema = errors.New("apps: unknown schema")
