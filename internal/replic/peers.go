package replic

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Role is what a peer is to this server (docs/protocol.md §11).
type Role string

// The roles, seen from this server.
const (
	// RoleMirror: the peer (host:port) mirrors chains of ours; we push.
	RoleMirror Role = "mirror"
	// RoleHome: the peer (host:port) homes chains we mirror; we pull and
	// accept its pushes.
	RoleHome Role = "home"
	// RoleWitness: the peer (a tlog-witness URL prefix) cosigns our
	// checkpoints.
	RoleWitness Role = "witness"
	// RoleLog: the peer (a log origin) is witnessed by us.
	RoleLog Role = "log"
)

// ParseRole returns the role named s, or ERR invalid.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleMirror, RoleHome, RoleWitness, RoleLog:
		return r, nil
	}
	return "", wire.Errorf(wire.CodeInvalid, "unknown role %q: use mirror, home, witness or log", clip(s))
}

// dials reports whether the role's peer is a vserv server we log in to and
// that logs in here (account, user and pass).
func (r Role) dials() bool { return r == RoleMirror || r == RoleHome }

// Bounds of an ihost entry, checked before anything is stored.
const (
	MaxPeerLen  = 512  // the peer text: host:port, URL prefix or origin
	MaxNameLen  = 256  // a witness's cosignature key name
	MaxChains   = 100  // chains of one entry
	MaxPassLen  = 1024 // as account passwords (docs/protocol.md §7)
	MaxPeers    = 1000 // entries of one server
	maxQuoteLen = 64   // of client text quoted in an error
)

// Spec is an `ihost add`: the peer and the fields of its role.
type Spec struct {
	Peer    string
	Role    Role
	Key     string   // Ed25519 public key, padded base64 (docs/protocol.md §4)
	Name    string   // witness: its cosignature key name
	Chains  []string // mirror, home: required; witness: optional (none = every chain)
	Account string   // mirror, home: the local peer account it logs in here with
	User    string   // mirror, home: the account we log in there with
	Pass    string   // mirror, home: its password, sealed at rest
}

// Peer is one entry as callers see it: never the password.
type Peer struct {
	Peer    string
	Role    Role
	Key     ed25519.PublicKey
	Name    string
	Chains  []string
	Account string
	User    string
	Added   time.Time
}

// record is a peer as stored (store.PeerWriter), CBOR.
type record struct {
	Peer    string   `cbor:"peer"`
	Role    Role     `cbor:"role"`
	Key     []byte   `cbor:"key"`
	Name    string   `cbor:"name,omitempty"`
	Chains  []string `cbor:"chains,omitempty"`
	Account string   `cbor:"account,omitempty"`
	User    string   `cbor:"user,omitempty"`
	Pass    []byte   `cbor:"pass,omitempty"` // sealed (auth.Store.SealPeerSecret under the row's key)
	Added   int64    `cbor:"added"`          // Unix nanoseconds
}

func (r *record) peer() Peer {
	return Peer{
		Peer: r.Peer, Role: r.Role, Key: append(ed25519.PublicKey(nil), r.Key...), Name: r.Name,
		Chains: slices.Clone(r.Chains), Account: r.Account, User: r.User, Added: time.Unix(0, r.Added).UTC(),
	}
}

// rowKey is the peer table's key: role 0x00 peer. One server may be both
// our mirror and our home (each site homes its chain, everyone mirrors
// everyone), so the role is part of the key.
func rowKey(role Role, peer string) string { return string(role) + "\x00" + peer }

// Peers is the peer table. Its methods are safe for concurrent use; each
// is one store transaction.
type Peers struct {
	st       store.Store
	accounts *auth.Store
	now      func() time.Time
}

// New keeps the peers in st, whose accounts are accounts (the same store:
// a peer and its account change in one transaction).
func New(st store.Store, accounts *auth.Store) *Peers {
	return &Peers{st: st, accounts: accounts, now: time.Now}
}

// Add checks spec against its role (ERR invalid naming the field, ERR
// limit over a bound) and stores it, binding its peer account (mirror,
// home) in the same transaction. An entry of the same role and peer is
// ERR exists.
func (p *Peers) Add(ctx context.Context, spec Spec) (*Peer, error) {
	rec, err := check(spec)
	if err != nil {
		return nil, err
	}
	key := rowKey(rec.Role, rec.Peer)
	if rec.Role.dials() {
		if rec.Pass, err = p.accounts.SealPeerSecret(key, []byte(spec.Pass)); err != nil {
			return nil, fmt.Errorf("seal the password of peer %s: %w", rec.Peer, err)
		}
	}
	rec.Added = p.now().UnixNano()
	data, err := wire.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode peer %s: %w", rec.Peer, err)
	}
	err = p.st.Update(ctx, func(tx store.WriteTx) error {
		if old, err := tx.Peer(key); err != nil || old != nil {
			return orErr(err, wire.Errorf(wire.CodeExists, "peer %q is a %s already (ihost del it first)", clip(rec.Peer), rec.Role))
		}
		n := 0
		if err := tx.Peers(func(string, []byte) error { n++; return nil }); err != nil {
			return err
		}
		if n >= MaxPeers {
			return wire.Errorf(wire.CodeLimit, "at most %d peers", MaxPeers)
		}
		if rec.Role.dials() {
			if err := p.accounts.BindPeer(tx, rec.Account, rec.Key, rec.Chains); err != nil {
				return err
			}
		}
		return tx.PutPeer(key, data)
	})
	if err != nil {
		return nil, err
	}
	out := rec.peer()
	return &out, nil
}

// Delete removes the entries of peer: the one of role, or with role ""
// every role of it (ERR notfound when there is none). The peer account of
// a removed mirror or home loses the replicate right on the entry's chains
// that no remaining entry of that account still needs, and its sessions
// end (auth.Store.UnbindPeer). It returns the roles removed.
func (p *Peers) Delete(ctx context.Context, peer string, role Role) ([]Role, error) {
	var removed []Role
	err := p.st.Update(ctx, func(tx store.WriteTx) error {
		removed = nil
		all, err := load(tx)
		if err != nil {
			return err
		}
		var gone, kept []*record
		for _, r := range all {
			if r.Peer == peer && (role == "" || r.Role == role) {
				gone = append(gone, r)
			} else {
				kept = append(kept, r)
			}
		}
		if len(gone) == 0 {
			return wire.Errorf(wire.CodeNotFound, "no peer %q", clip(peer))
		}
		for _, r := range gone {
			if err := tx.DeletePeer(rowKey(r.Role, r.Peer)); err != nil {
				return err
			}
			removed = append(removed, r.Role)
			if !r.Role.dials() {
				continue
			}
			var revoke []string
			for _, c := range r.Chains {
				if !slices.ContainsFunc(kept, func(k *record) bool {
					return k.Role.dials() && auth.HomeName(k.Account) == auth.HomeName(r.Account) && slices.Contains(k.Chains, c)
				}) {
					revoke = append(revoke, c)
				}
			}
			if err := p.accounts.UnbindPeer(tx, r.Account, revoke); err != nil {
				return err
			}
		}
		return nil
	})
	return removed, err
}

// List returns every peer, by role then peer.
func (p *Peers) List(ctx context.Context) ([]Peer, error) {
	var out []Peer
	err := p.st.View(ctx, func(tx store.ReadTx) error {
		all, err := load(tx)
		out = make([]Peer, 0, len(all))
		for _, r := range all {
			out = append(out, r.peer())
		}
		return err
	})
	return out, err
}

// Credentials returns what we log in with at a mirror or home peer: the
// account name and its unsealed password (ERR notfound without such an
// entry).
func (p *Peers) Credentials(ctx context.Context, peer string, role Role) (user, pass string, err error) {
	key := rowKey(role, peer)
	var rec record
	err = p.st.View(ctx, func(tx store.ReadTx) error {
		data, err := tx.Peer(key)
		if err != nil {
			return err
		}
		if data == nil || !role.dials() {
			return wire.Errorf(wire.CodeNotFound, "no %s peer %q", role, clip(peer))
		}
		return decode(key, data, &rec)
	})
	if err != nil {
		return "", "", err
	}
	plain, err := p.accounts.OpenPeerSecret(key, rec.Pass)
	if err != nil {
		return "", "", fmt.Errorf("password of peer %s: %w", peer, err)
	}
	return rec.User, string(plain), nil
}

func load(tx store.ReadTx) ([]*record, error) {
	var all []*record
	err := tx.Peers(func(key string, v []byte) error {
		var r record
		if err := decode(key, v, &r); err != nil {
			return err
		}
		all = append(all, &r)
		return nil
	})
	return all, err
}

// decode copies v first: the store's bytes are valid only inside the
// transaction.
func decode(key string, v []byte, r *record) error {
	if err := wire.Unmarshal(append([]byte(nil), v...), r); err != nil {
		return fmt.Errorf("decode peer %q: %w", key, err)
	}
	return nil
}

// Check validates spec for its role as Add does, without storing it: for
// a caller with checks of its own to make after these (a mirror's chains
// must be here).
func (spec Spec) Check() error {
	_, err := check(spec)
	return err
}

// check validates spec for its role and returns the record to store
// (without the sealed password and the time).
func check(spec Spec) (*record, error) {
	if _, err := ParseRole(string(spec.Role)); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		what string
		v    string
		max  int
	}{{"peer", spec.Peer, MaxPeerLen}, {"name", spec.Name, MaxNameLen}, {"pass", spec.Pass, MaxPassLen}} {
		if len(f.v) > f.max {
			return nil, wire.Errorf(wire.CodeLimit, "%s is %d bytes, at most %d", f.what, len(f.v), f.max)
		}
	}
	if len(spec.Chains) > MaxChains {
		return nil, wire.Errorf(wire.CodeLimit, "at most %d chains per peer, got %d", MaxChains, len(spec.Chains))
	}
	key, err := secure.ParsePublicKey(spec.Key)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInvalid, "key: %v (the peer's Ed25519 public key, as `vcli id` prints it)", clipErr(err))
	}
	rec := &record{Peer: spec.Peer, Role: spec.Role, Key: key}
	switch spec.Role {
	case RoleMirror, RoleHome:
		err = checkHostPort(spec.Peer)
	case RoleWitness:
		err = checkWitnessURL(spec.Peer)
	case RoleLog:
		err = checkOrigin(spec.Peer)
	}
	if err != nil {
		return nil, err
	}
	chains, err := checkChains(spec.Chains)
	if err != nil {
		return nil, err
	}
	// Each role takes exactly its fields: one given to another role is a
	// mistake to say, not to ignore.
	given := map[string]bool{"name": spec.Name != "", "chains": len(chains) > 0, "account": spec.Account != "", "user": spec.User != "", "pass": spec.Pass != ""}
	var need, allow []string
	switch spec.Role {
	case RoleMirror, RoleHome:
		need = []string{"chains", "account", "user", "pass"}
	case RoleWitness:
		need, allow = []string{"name"}, []string{"chains"}
	}
	for _, f := range []string{"name", "chains", "account", "user", "pass"} {
		switch {
		case slices.Contains(need, f) && !given[f]:
			return nil, wire.Errorf(wire.CodeInvalid, "role %s needs %s", spec.Role, f)
		case given[f] && !slices.Contains(need, f) && !slices.Contains(allow, f):
			return nil, wire.Errorf(wire.CodeInvalid, "role %s takes no %s", spec.Role, f)
		}
	}
	if spec.Role.dials() {
		if err := auth.ValidName(spec.Account); err != nil {
			return nil, wire.Errorf(wire.CodeInvalid, "account: %v", clipErr(err))
		}
		if err := auth.ValidName(spec.User); err != nil {
			return nil, wire.Errorf(wire.CodeInvalid, "user: %v", clipErr(err))
		}
		rec.Account, rec.User = spec.Account, spec.User
	}
	if spec.Role == RoleWitness {
		if err := checkKeyName(spec.Name); err != nil {
			return nil, err
		}
		rec.Name = spec.Name
	}
	rec.Chains = chains
	return rec, nil
}

// checkChains returns the chain names sorted and without repeats, or ERR
// invalid for a name that is not one (DESIGN.md §4.1).
func checkChains(chains []string) ([]string, error) {
	for _, c := range chains {
		if !verify.ValidChainName(c) {
			return nil, wire.Errorf(wire.CodeInvalid, "invalid chain name %q", clip(c))
		}
	}
	out := slices.Clone(chains)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkHostPort accepts host:port with a DNS name or an IP address (IPv6
// in brackets) and a port 1-65535.
func checkHostPort(peer string) error {
	bad := func(why string) error {
		return wire.Errorf(wire.CodeInvalid, "peer %q: %s; a mirror or home is host:port", clip(peer), why)
	}
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		return bad("not host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return bad("the port must be 1 to 65535")
	}
	if strings.Contains(host, ":") { // an IPv6 address, which SplitHostPort took out of its brackets
		if net.ParseIP(host) == nil {
			return bad("not an IP address")
		}
		return nil
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if !validDNSName(host) {
		return bad("not a host name")
	}
	return nil
}

// validDNSName: labels of letters, digits and inner hyphens, 1-63 bytes
// each, at most 253 in all.
func validDNSName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkWitnessURL accepts the tlog-witness submission prefix: an absolute
// http or https URL with a host and without user, query or fragment (we
// post to <prefix>/add-checkpoint).
func checkWitnessURL(peer string) error {
	bad := func(why string) error {
		return wire.Errorf(wire.CodeInvalid, "peer %q: %s; a witness is an http:// or https:// URL prefix", clip(peer), why)
	}
	u, err := url.Parse(peer)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("not http or https")
	case u.Host == "" || u.Hostname() == "":
		return bad("no host")
	case u.User != nil:
		return bad("credentials in the URL")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(peer, "#?"):
		return bad("a query or fragment")
	case strings.ContainsFunc(peer, unicode.IsSpace):
		return bad("a space")
	}
	return nil
}

// checkOrigin accepts a log's checkpoint origin line (C2SP tlog-checkpoint:
// non-empty, no Unicode space or plus sign); one beginning with vserv/
// must be a vserv origin, vserv/<server-id>/<chain>.
func checkOrigin(peer string) error {
	bad := func(why string) error {
		return wire.Errorf(wire.CodeInvalid, "peer %q: %s; a log is its checkpoint origin line", clip(peer), why)
	}
	switch {
	case peer == "":
		return bad("empty")
	case !utf8.ValidString(peer):
		return bad("not UTF-8")
	case strings.ContainsFunc(peer, func(r rune) bool { return unicode.IsSpace(r) || r == '+' || unicode.IsControl(r) }):
		return bad("a space, plus sign or control character")
	}
	if rest, ok := strings.CutPrefix(peer, "vserv/"); ok {
		id, chain, _ := strings.Cut(rest, "/")
		if !verify.ValidServerID(id) || !verify.ValidChainName(chain) {
			return bad("not vserv/<server-id>/<chain>")
		}
	}
	return nil
}

// checkKeyName accepts a signed-note key name (golang.org/x/mod/sumdb/note:
// non-empty, no Unicode space or plus sign).
func checkKeyName(name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || r == '+' || unicode.IsControl(r) }) {
		return wire.Errorf(wire.CodeInvalid, "name %q: a cosignature key name has no space or plus sign", clip(name))
	}
	return nil
}

// clip shortens client text quoted in an error to maxQuoteLen bytes, at a
// rune boundary (error texts are valid UTF-8).
func clip(s string) string {
	if len(s) <= maxQuoteLen {
		return s
	}
	n := maxQuoteLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// clipErr is the text of err from a parser that quotes its input: at most
// a line's worth of it.
func clipErr(err error) string {
	var we *wire.Error
	if errors.As(err, &we) {
		return clip(we.Text)
	}
	return clip(err.Error())
}

func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}
