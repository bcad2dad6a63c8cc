package apps

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/vserv/vserv/canon"
)

// schema is a Schema built from a table of event handlers and views.
type schema struct {
	name    string
	types   map[string]eventType
	views   map[string]viewFunc
	queries func(st *state) ([]Query, error)
}

// eventType is one event type: its payload fields and its rule.
type eventType struct {
	fields []field
	apply  func(st *state, c Chain, ev Event, p payload) (Result, error)
}

type viewFunc func(st *state, args map[string]any) (any, error)

func (s *schema) Name() string { return s.name }

func (s *schema) Apply(kv KV, c Chain, ev Event) (Result, error) {
	t, ok := s.types[ev.Type]
	if !ok {
		return Result{}, refuse(ev.Type, "type", "not an event type of schema %s", s.name)
	}
	p, err := checkPayload(ev.Type, ev.Payload, t.fields)
	if err != nil {
		return Result{}, err
	}
	st := &state{kv: kv, pending: map[string][]byte{}}
	res, err := t.apply(st, c, ev, p)
	if err != nil {
		return Result{}, err
	}
	var m meta
	if _, err := st.get(keyMeta, &m); err != nil {
		return Result{}, err
	}
	m.Events++
	m.Time = max(m.Time, ev.Time)
	st.put(keyMeta, m)
	if err := st.flush(); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (s *schema) View(kv KV, c Chain, name string, args map[string]any) (any, error) {
	v, ok := s.views[name]
	if !ok {
		return nil, fmt.Errorf("%w %q in schema %s", ErrNoView, name, s.name)
	}
	return v(&state{kv: kv}, args)
}

func (s *schema) Queries(kv KV) ([]Query, error) { return s.queries(&state{kv: kv}) }

// meta is kept by every schema: how many events it accepted and the latest
// entry time, against which views tell whether a window is still open.
type meta struct {
	_      struct{} `cbor:",toarray"`
	Events uint64
	Time   uint64
}

var keyMeta = []byte("meta")

// state is the view of a KV during one Apply: reads see the event's own
// earlier writes, and writes are buffered until flush, so a refusal leaves
// the KV untouched.
type state struct {
	kv      KV
	pending map[string][]byte
	err     error // the first encoding failure of put
}

// get decodes the value at key into v; false if absent.
func (st *state) get(key []byte, v any) (bool, error) {
	b, ok := st.pending[string(key)]
	if !ok {
		var err error
		if b, err = st.kv.Get(key); err != nil {
			return false, fmt.Errorf("apps: read %q: %w", key, err)
		}
	}
	if b == nil {
		return false, nil
	}
	if err := canon.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("apps: stored state at %q is corrupt: %w", key, err)
	}
	return true, nil
}

func (st *state) put(key []byte, v any) {
	b, err := canon.Marshal(v)
	if err != nil && st.err == nil {
		st.err = fmt.Errorf("apps: encode state at %q: %w", key, err)
	}
	if st.pending == nil {
		st.err = fmt.Errorf("apps: write %q outside Apply", key)
		return
	}
	st.pending[string(key)] = b
}

// flush writes the buffered values in key order, so that every store sees
// the same sequence of writes.
func (st *state) flush() error {
	if st.err != nil {
		return st.err
	}
	keys := make([]string, 0, len(st.pending))
	for k := range st.pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := st.kv.Put([]byte(k), st.pending[k]); err != nil {
			return fmt.Errorf("apps: write %q: %w", k, err)
		}
	}
	return nil
}

// key joins a prefix and parts with 0x00, which no name, eid or voter_id
// contains (names are [a-z0-9_-], voter_ids have no control characters).
func key(prefix string, parts ...string) []byte {
	b := []byte(prefix)
	for _, p := range parts {
		b = append(b, 0)
		b = append(b, p...)
	}
	return b
}

// indexKey is the key of the i-th item of a list, in order.
func indexKey(prefix string, i uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(prefix), 0), i)
}

// list is a numbered list of names kept in the KV: count at prefix, the
// i-th name at indexKey(prefix, i).
type list struct{ prefix string }

func (l list) count(st *state) (uint64, error) {
	var n uint64
	_, err := st.get([]byte(l.prefix), &n)
	return n, err
}

func (l list) add(st *state, name string) error {
	n, err := l.count(st)
	if err != nil {
		return err
	}
	st.put(indexKey(l.prefix, n), name)
	st.put([]byte(l.prefix), n+1)
	return nil
}

// MaxPage is the largest `limit` of a list view, and its default.
const MaxPage = 1000

// page answers a list view {<plural>: [names], total, next}: args `from`
// (uint, default 0) and `limit` (1–MaxPage, default MaxPage).
func (l list) page(st *state, plural string, args map[string]any) (any, error) {
	from, limit, err := pageArgs(args)
	if err != nil {
		return nil, err
	}
	n, err := l.count(st)
	if err != nil {
		return nil, err
	}
	names := []string{}
	i := from
	for ; i < n && uint64(len(names)) < limit; i++ {
		var s string
		if _, err := st.get(indexKey(l.prefix, i), &s); err != nil {
			return nil, err
		}
		names = append(names, s)
	}
	var next any
	if i < n {
		next = i
	}
	return map[string]any{plural: names, "total": n, "next": next}, nil
}

// queries are the pages of the list plus one query per item.
func (l list) queries(st *state, listView, itemView, itemArg string) ([]Query, error) {
	n, err := l.count(st)
	if err != nil {
		return nil, err
	}
	var qs []Query
	for from := uint64(0); from == 0 || from < n; from += MaxPage {
		qs = append(qs, Query{Name: listView, Args: map[string]any{"from": from}})
	}
	for i := uint64(0); i < n; i++ {
		var s string
		if _, err := st.get(indexKey(l.prefix, i), &s); err != nil {
			return nil, err
		}
		qs = append(qs, Query{Name: itemView, Args: map[string]any{itemArg: s}})
	}
	return qs, nil
}

func pageArgs(args map[string]any) (from, limit uint64, err error) {
	limit = MaxPage
	for k, v := range args {
		u, ok := v.(uint64)
		switch {
		case k != "from" && k != "limit":
			return 0, 0, fmt.Errorf("%w: unknown argument %q (want from, limit)", ErrViewArgs, k)
		case !ok:
			return 0, 0, fmt.Errorf("%w: %s must be an unsigned integer", ErrViewArgs, k)
		case k == "from":
			from = u
		case u < 1 || u > MaxPage:
			return 0, 0, fmt.Errorf("%w: limit must be 1 to %d", ErrViewArgs, MaxPage)
		default:
			limit = u
		}
	}
	return from, limit, nil
}

// nameArg reads the one argument of an item view, a name.
func nameArg(args map[string]any, arg string) (string, error) {
	s, ok := args[arg].(string)
	if len(args) != 1 || !ok || !ValidName(s) {
		return "", fmt.Errorf("%w: want exactly {%s: name}", ErrViewArgs, arg)
	}
	return s, nil
}

// authority checks an authority event (§6.1): it needs `manage`, and on a
// chain with authority keys an author that is one of them.
func authority(c Chain, ev Event) (Result, error) {
	if len(c.Authority) == 0 {
		return Result{Needs: Manage}, nil
	}
	if ev.Author == nil {
		return Result{}, refuse(ev.Type, "authority", "this chain has authority keys: the record must be signed by one of them")
	}
	for _, k := range c.Authority {
		if bytes.Equal(k, ev.Author) {
			return Result{Needs: Manage}, nil
		}
	}
	return Result{}, refuse(ev.Type, "authority", "author %s is not one of the chain's authority keys", KeyText(ev.Author))
}

// actor checks an event acting for a voter or account (§6.1 actor keys):
// one registered with a key acts only through records that key signed.
func actor(ev Event, k []byte, who string) error {
	if k == nil || bytes.Equal(k, ev.Author) {
		return nil
	}
	if ev.Author == nil {
		return refuse(ev.Type, "actor-key", "%s acts only through records signed by its key %s", who, KeyText(k))
	}
	return refuse(ev.Type, "actor-key", "%s acts only through records signed by its key %s, not %s", who, KeyText(k), KeyText(ev.Author))
}

// KeyText is the text form of an Ed25519 public key (§2.4): padded
// standard base64.
func KeyText(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// optKeyText is KeyText, or nil for no key.
func optKeyText(k []byte) any {
	if k == nil {
		return nil
	}
	return KeyText(k)
}

// ParseKey reads an Ed25519 public key in its text form (§2.4) strictly.
func ParseKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize || KeyText(b) != s {
		return nil, fmt.Errorf("must be an Ed25519 public key as padded standard base64 (44 characters)")
	}
	return b, nil
}

// addU64 adds with the overflow check of §6.1.
func addU64(a, b uint64) (uint64, bool) {
	s := a + b
	return s, s >= a
}

// MaxAuthority is the most authority keys a chain may have (§6.1).
const MaxAuthority = 16

// ParseAuthority reads the `authority` of mkchain: 0–16 distinct Ed25519
// public keys in their text form (§2.4).
func ParseAuthority(keys []string) ([]ed25519.PublicKey, error) {
	if len(keys) > MaxAuthority {
		return nil, fmt.Errorf("%w: %d authority keys, at most %d", ErrAuthority, len(keys), MaxAuthority)
	}
	out := make([]ed25519.PublicKey, 0, len(keys))
	seen := map[string]bool{}
	for i, s := range keys {
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d %v", ErrAuthority, i, err)
		}
		if seen[s] {
			return nil, fmt.Errorf("%w: key %d repeats %s", ErrAuthority, i, s)
		}
		seen[s] = true
		out = append(out, k)
	}
	return out, nil
}

// ErrAuthority is a malformed list of authority keys.
var ErrAuthority = errors.New("apps: bad authority keys")
