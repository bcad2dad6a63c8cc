package client

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/vserv/vserv/internal/secure"
)

// HostSpec is an `ihost add`: a peer and the fields of its role
// (docs/protocol.md §11). Empty fields are left out of the request.
type HostSpec struct {
	Role    string   // mirror, home, witness or log
	Key     string   // the peer's Ed25519 public key, padded base64
	Name    string   // witness: its cosignature key name
	Chains  []string // mirror, home (required); witness (optional)
	Account string   // mirror, home: the local peer account it logs in here with
	User    string   // mirror, home: the account we log in there with
	Pass    string   // mirror, home: that account's password
}

func (h HostSpec) fields() map[string]any {
	m := map[string]any{"role": h.Role, "key": h.Key}
	for k, v := range map[string]string{"name": h.Name, "account": h.Account, "user": h.User, "pass": h.Pass} {
		if v != "" {
			m[k] = v
		}
	}
	if len(h.Chains) > 0 {
		m["chains"] = h.Chains
	}
	return m
}

// AddHost calls `ihost add peer {...}` (admin).
func (c *Client) AddHost(ctx context.Context, peer string, spec HostSpec) error {
	_, err := c.Call(ctx, "ihost", "add", peer, spec.fields())
	return err
}

// DeleteHost calls `ihost del peer [role]` (admin): role "" removes every
// role of the peer.
func (c *Client) DeleteHost(ctx context.Context, peer, role string) error {
	args := []any{"del", peer}
	if role != "" {
		args = append(args, role)
	}
	_, err := c.Call(ctx, "ihost", args...)
	return err
}

// HostInfo is one row of `ihost list`. Hops, Size, the lags, LastError and
// Forks are zero until replication runs.
type HostInfo struct {
	Peer       string   `cbor:"peer" json:"peer"`
	Role       string   `cbor:"role" json:"role"`
	Key        string   `cbor:"key" json:"key"`
	Name       string   `cbor:"name" json:"name"`
	Chains     []string `cbor:"chains" json:"chains"`
	Account    string   `cbor:"account" json:"account"`
	Hops       uint64   `cbor:"hops" json:"hops"`
	Size       uint64   `cbor:"size" json:"size"`
	LagEntries uint64   `cbor:"lag_entries" json:"lag_entries"`
	LagSeconds uint64   `cbor:"lag_seconds" json:"lag_seconds"`
	LastError  string   `cbor:"last_error" json:"last_error"`
	Forks      uint64   `cbor:"forks" json:"forks"`
}

// ListHosts calls `ihost list` (admin).
func (c *Client) ListHosts(ctx context.Context) ([]HostInfo, error) {
	vals, err := c.Call(ctx, "ihost", "list")
	if err != nil {
		return nil, err
	}
	var hosts []HostInfo
	return hosts, decode("ihost list", vals, &hosts)
}

// HandshakeHash is the handshake hash of the session in force (the channel
// binding pauth signs), nil before the encrypted session.
func (c *Client) HandshakeHash() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	return c.session.HandshakeHash()
}

// PeerAuth calls `pauth` after a peer account's Login: it signs this
// session's handshake hash with key, the identity key the account is
// pinned to.
func (c *Client) PeerAuth(ctx context.Context, key ed25519.PrivateKey) error {
	h := c.HandshakeHash()
	if h == nil {
		return errors.New("pauth: no encrypted session")
	}
	return c.PeerAuthSig(ctx, ed25519.Sign(key, secure.PeerAuthMessage(h)))
}

// PeerAuthSig calls `pauth` with a signature made elsewhere (a key held by
// another process, or a test's).
func (c *Client) PeerAuthSig(ctx context.Context, sig []byte) error {
	_, err := c.Call(ctx, "pauth", sig)
	return err
}

// HostFork is one row of `ihost forks`: evidence that a home (Kind
// "mirror": a chain mirrored here) or a log (Kind "witness": a log the
// witness endpoint cosigns) offered a history inconsistent with the one
// held. Held and Offered are the two checkpoint notes verbatim; Held is
// empty when the mirror held no checkpoint yet.
type HostFork struct {
	Kind    string `cbor:"kind" json:"kind"`
	Chain   string `cbor:"chain" json:"chain"` // the origin line
	Ms      uint64 `cbor:"ms" json:"ms"`
	Reason  string `cbor:"reason" json:"reason"`
	Held    string `cbor:"held" json:"held"`
	Offered string `cbor:"offered" json:"offered"`
}

// HostForks calls `ihost forks` (admin).
func (c *Client) HostForks(ctx context.Context) ([]HostFork, error) {
	vals, err := c.Call(ctx, "ihost", "forks")
	if err != nil {
		return nil, err
	}
	var forks []HostFork
	return forks, decode("ihost forks", vals, &forks)
}

// SyncStatus is one row of `ihost sync`: a peer and chain after the round.
type SyncStatus struct {
	Peer       string `cbor:"peer" json:"peer"`
	Role       string `cbor:"role" json:"role"`
	Chain      string `cbor:"chain" json:"chain"` // the origin line
	Hops       uint64 `cbor:"hops" json:"hops"`
	Size       uint64 `cbor:"size" json:"size"`
	Want       uint64 `cbor:"want" json:"want"`
	LagEntries uint64 `cbor:"lag_entries" json:"lag_entries"`
	LagSeconds uint64 `cbor:"lag_seconds" json:"lag_seconds"`
	LastError  string `cbor:"last_error" json:"last_error"`
	Refused    bool   `cbor:"refused" json:"refused"`
}

// SyncHosts calls `ihost sync [peer]` (admin): one replication round now
// with peer, or with every mirror and home when peer is "".
func (c *Client) SyncHosts(ctx context.Context, peer string) ([]SyncStatus, error) {
	args := []any{"sync"}
	if peer != "" {
		args = append(args, peer)
	}
	vals, err := c.Call(ctx, "ihost", args...)
	if err != nil {
		return nil, err
	}
	var rows []SyncStatus
	return rows, decode("ihost sync", vals, &rows)
}
