// Package replcmd holds the replication commands of DESIGN.md §3.5
// (docs/protocol.md §11): `ihost`, the peer table, and the mirroring
// commands `ihave`, `rentries` and `rpush` (mirror.go). The
// peer table and its rules belong to internal/replic; pauth, a login step,
// is the core's (internal/server). Register adds them to a server.Table.
// The commands keep no per-connection state.
package replcmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// Register adds the replication commands to t.
func Register(t *server.Table) {
	specs := cmdspec.Replication()
	t.Handle("ihost", server.Command{Spec: specs["ihost"], Run: cmdIhost})
	t.Handle("ihave", server.Command{Spec: specs["ihave"], Run: cmdIhave})
	t.Handle("rentries", server.Command{Spec: specs["rentries"], Run: cmdRentries})
	t.Handle("rpush", server.Command{Spec: specs["rpush"], Run: cmdRpush})
}

func cmdIhost(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	op, err := req.Text(0, "add|del|list|forks|sync")
	if err != nil {
		return nil, err
	}
	want := map[string][2]int{"add": {3, 3}, "del": {2, 3}, "list": {1, 1}, "forks": {1, 1}, "sync": {1, 2}}[op]
	if want == [2]int{} {
		return nil, wire.Errorf(wire.CodeProto, "ihost takes add, del, list, forks or sync, not %q", server.Truncate(op, 32))
	}
	if err := req.Arity(want[0], want[1]); err != nil {
		return nil, err
	}
	var spec replic.Spec
	var delRole replic.Role
	switch op {
	case "add":
		if spec, err = addSpec(req); err != nil {
			return nil, err
		}
	case "del":
		if spec.Peer, err = req.Text(1, "peer"); err != nil {
			return nil, err
		}
		if req.NArgs() == 3 {
			role, err := req.Text(2, "role")
			if err != nil {
				return nil, err
			}
			if delRole, err = replic.ParseRole(role); err != nil {
				return nil, err
			}
		}
	case "sync":
		if req.NArgs() == 2 {
			if spec.Peer, err = req.Text(1, "peer"); err != nil {
				return nil, err
			}
			if spec.Peer == "" {
				return nil, wire.Errorf(wire.CodeInvalid, "ihost sync: the peer is empty (leave it out to sync every peer)")
			}
		}
	}
	if _, err := s.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	peers := s.Peers()
	if peers == nil {
		return nil, errors.New("ihost: this server was built without a peer table")
	}
	switch op {
	case "add":
		if err := spec.Check(); err != nil {
			return nil, err
		}
		if spec.Role == replic.RoleMirror {
			// A mirror mirrors chains held here: ours, or chains we
			// mirror ourselves with those names (a mirror of a mirror).
			for _, c := range spec.Chains {
				if err := heldHere(s.Ledger(), c); err != nil {
					return nil, err
				}
			}
		}
		p, err := peers.Add(ctx, spec)
		if err != nil {
			return nil, err
		}
		s.Audit(ctx, "ihost add "+string(p.Role), p.Peer, "ok")
		s.Log().Info("peer added", "peer", p.Peer, "role", p.Role, "account", p.Account, "key", secure.Fingerprint(p.Key))
		return server.OK()
	case "del":
		roles, err := peers.Delete(ctx, spec.Peer, delRole)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(roles))
		for i, r := range roles {
			names[i] = string(r)
		}
		s.Audit(ctx, "ihost del "+strings.Join(names, ","), spec.Peer, "ok")
		s.Log().Info("peer removed", "peer", spec.Peer, "roles", names)
		return server.OK()
	case "forks":
		return forks(ctx, s, peers)
	case "sync":
		return syncNow(ctx, s, peers, spec.Peer)
	}
	list, err := peers.List(ctx)
	if err != nil {
		return nil, err
	}
	var status []replic.ChainStatus
	if r := s.Replication(); r != nil {
		status = r.Status()
	}
	return server.OK(rows(list, status))
}

// heldHere is nil when a chain named name is homed or mirrored here, else
// the ERR notfound of the chain.
func heldHere(l *ledger.Ledger, name string) error {
	_, err := l.Chain(name)
	if err == nil || !errors.Is(err, wire.ErrNotFound) {
		return err
	}
	for _, c := range l.Chains() {
		if c.Mirror && c.Name == name {
			return nil
		}
	}
	return err
}

// addSpec decodes `ihost add peer {role, key, ...}`. Every key of the map
// is text; an unknown one is ERR invalid, a value of the wrong type ERR
// proto.
func addSpec(req *wire.Request) (replic.Spec, error) {
	var spec replic.Spec
	var err error
	if spec.Peer, err = req.Text(1, "peer"); err != nil {
		return spec, err
	}
	var keys map[string]wire.RawMessage
	if err := req.Decode(2, "peer fields {role, key, name, chains, account, user, pass}", &keys); err != nil {
		return spec, err
	}
	known := []string{"role", "key", "name", "chains", "account", "user", "pass"}
	for k := range keys {
		if !slices.Contains(known, k) {
			return spec, wire.Errorf(wire.CodeInvalid, "ihost add: unknown field %q (role, key, name, chains, account, user, pass)", server.Truncate(k, 32))
		}
	}
	var f struct {
		Role    *string  `cbor:"role"`
		Key     *string  `cbor:"key"`
		Name    string   `cbor:"name"`
		Chains  []string `cbor:"chains"`
		Account string   `cbor:"account"`
		User    string   `cbor:"user"`
		Pass    string   `cbor:"pass"`
	}
	for _, k := range known {
		v, found := keys[k]
		if !found {
			continue
		}
		var target any
		switch k {
		case "chains":
			target = &f.Chains
		default:
			target = map[string]any{"role": &f.Role, "key": &f.Key, "name": &f.Name, "account": &f.Account, "user": &f.User, "pass": &f.Pass}[k]
		}
		// The major type first: the decoder leaves a string untouched for
		// null, and a field must be given as what it is or left out.
		wantType := byte(3) // text
		if k == "chains" {
			wantType = 4 // array
		}
		if len(v) == 0 || v[0]>>5 != wantType || wire.Unmarshal(v, target) != nil {
			return spec, wire.Errorf(wire.CodeProto, "ihost add: %s has the wrong type", k)
		}
	}
	if f.Role == nil {
		return spec, wire.Errorf(wire.CodeInvalid, "ihost add: role is missing (mirror, home, witness or log)")
	}
	if f.Key == nil {
		return spec, wire.Errorf(wire.CodeInvalid, "ihost add: key is missing (the peer's Ed25519 public key)")
	}
	role, err := replic.ParseRole(*f.Role)
	if err != nil {
		return spec, err
	}
	spec.Role, spec.Key, spec.Name, spec.Chains = role, *f.Key, f.Name, f.Chains
	spec.Account, spec.User, spec.Pass = f.Account, f.User, f.Pass
	return spec, nil
}

// rows is the `ihost list` reply (docs/protocol.md §11). The replication
// workers' status of an entry's chains fills hops, size, lag, last error
// and forks (docs/operations.md "Peers"); they are zero without any.
func rows(list []replic.Peer, status []replic.ChainStatus) []map[string]any {
	out := make([]map[string]any, 0, len(list))
	for _, p := range list {
		chains := p.Chains
		if chains == nil {
			chains = []string{}
		}
		a := aggregate(p, status)
		out = append(out, map[string]any{
			"peer": p.Peer, "role": string(p.Role), "key": secure.PublicKeyText(p.Key), "name": p.Name,
			"chains": chains, "account": p.Account, "hops": a.Hops, "size": a.Size,
			"lag_entries": a.LagEntries, "lag_seconds": uint64(a.LagSeconds), "last_error": a.LastError, "forks": a.Forks,
		})
	}
	return out
}

// aggregate sums the status rows of entry p: size, lag entries and forks
// add up, hops and lag seconds are the largest, the last error the newest
// non-empty one.
func aggregate(p replic.Peer, status []replic.ChainStatus) replic.ChainStatus {
	var a replic.ChainStatus
	for _, s := range status {
		if s.Peer != p.Peer || s.Role != p.Role {
			continue
		}
		a.Size += s.Size
		a.LagEntries += s.LagEntries
		a.Forks += s.Forks
		a.Hops = max(a.Hops, s.Hops)
		a.LagSeconds = max(a.LagSeconds, s.LagSeconds)
		if s.LastError != "" && (a.LastError == "" || s.ErrorAt.After(a.ErrorAt)) {
			a.LastError, a.ErrorAt = s.LastError, s.ErrorAt
		}
	}
	return a
}

// forks is the `ihost forks` reply (docs/protocol.md §11): the fork
// evidence of every mirrored chain, then the witness endpoint's, each with
// both checkpoint notes verbatim so that anyone can check their signatures.
func forks(ctx context.Context, s *server.Session, peers *replic.Peers) (*server.Reply, error) {
	out := []map[string]any{}
	for _, ci := range s.Ledger().Chains() {
		if !ci.Mirror {
			continue
		}
		fs, err := s.Ledger().Forks(ctx, ci.Ref())
		if err != nil {
			return nil, fmt.Errorf("ihost forks: %s: %w", ci.Ref(), err)
		}
		for _, f := range fs {
			out = append(out, forkRow("mirror", ci.Ref(), f.Ms, f.Reason, f.Held, f.Offered))
		}
	}
	wfs, err := peers.WitnessForks(ctx)
	if err != nil {
		return nil, fmt.Errorf("ihost forks: witness: %w", err)
	}
	for _, f := range wfs {
		out = append(out, forkRow("witness", f.Origin, f.Ms, f.Reason, f.Held, f.Offered))
	}
	return server.OK(out)
}

// forkRow is one row of `ihost forks`. The notes are text: a signed note
// is UTF-8 (one that is not could not have been verified, so it would not
// be kept); should stored bytes be malformed anyway, they are sent with
// U+FFFD in place of the bad bytes rather than failing the whole list.
func forkRow(kind, chain string, ms uint64, reason string, held, offered []byte) map[string]any {
	return map[string]any{"kind": kind, "chain": strings.ToValidUTF8(chain, "\uFFFD"), "ms": ms,
		"reason": strings.ToValidUTF8(reason, "\uFFFD"),
		"held":   strings.ToValidUTF8(string(held), "\uFFFD"), "offered": strings.ToValidUTF8(string(offered), "\uFFFD")}
}

// syncNow is `ihost sync [peer]`: one anti-entropy round now, with peer (a
// mirror or home entry; ERR notfound for any other) or with every mirror
// and home, answered with the status when it ended.
func syncNow(ctx context.Context, s *server.Session, peers *replic.Peers, peer string) (*server.Reply, error) {
	if peer != "" {
		list, err := peers.List(ctx)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(list, func(p replic.Peer) bool {
			return p.Peer == peer && (p.Role == replic.RoleMirror || p.Role == replic.RoleHome)
		}) {
			return nil, wire.Errorf(wire.CodeNotFound, "ihost sync: %q is not a mirror or home peer of this server", server.Truncate(peer, 64))
		}
	}
	repl := s.Replication()
	if repl == nil {
		return nil, wire.Errorf(wire.CodeInternal, "ihost sync: no replication workers")
	}
	st, err := repl.Sync(ctx, peer)
	if err != nil {
		return nil, err
	}
	s.Audit(ctx, "ihost sync", peer, "ok")
	return server.OK(syncRows(st))
}

// syncRows is the `ihost sync` reply: one row per peer and chain. Lag
// seconds are whole seconds, as in `ihost list`.
func syncRows(st []replic.ChainStatus) []map[string]any {
	out := make([]map[string]any, 0, len(st))
	for _, c := range st {
		out = append(out, map[string]any{
			"peer": c.Peer, "role": string(c.Role), "chain": c.Chain, "hops": c.Hops, "size": c.Size, "want": c.Want,
			"lag_entries": c.LagEntries, "lag_seconds": uint64(max(c.LagSeconds, 0)), "last_error": c.LastError, "refused": c.Refused,
		})
	}
	return out
}
