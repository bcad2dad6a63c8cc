package auth

import (
	"context"
	"errors"
	"slices"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
)

// Principal is who asks for a chain: an account, or nobody.
type Principal struct {
	// Account is the canonical name of the logged-in account, "" for an
	// anonymous connection.
	Account string
	// Verified is true once the login passed every factor (state verified,
	// DESIGN.md §2.5). An account that still owes one (state user) is
	// anonymous for the ledger.
	Verified bool
	// State names the connection's state in the ERR state text.
	State string
}

// ChainFacts is what the ledger knows about a chain that access depends on
// (the ledger's in-memory ledger.ChainInfo; no store read).
type ChainFacts struct {
	// Arg is the chain as the client named it (a name or a full origin): a
	// chain that does not exist for the principal is ERR notfound with
	// exactly this text (wire.NoChain).
	Arg           string
	Name          string
	Public        bool
	ServerWritten bool // audit, keys: only the server appends
	// Mirror is true for a chain homed on another server (replication,
	// DESIGN.md §5): readable here, written only at its home.
	Mirror bool
}

// Grant is what a principal may do on one chain, as Access found it.
type Grant struct {
	Admin  bool    // an enabled admin: every right
	Held   []Right // the rights granted on the chain (none for an admin's implied ones)
	public bool
}

// Has reports whether the grant includes r: admins hold every right, and
// everyone may read a public chain.
func (g Grant) Has(r Right) bool {
	return g.Admin || r == RightRead && g.public || slices.Contains(g.Held, r)
}

// visible reports whether the chain exists for the principal: a public
// chain for everyone, a private one for an account with some right on it.
func (g Grant) visible() bool { return g.public || g.Admin || len(g.Held) > 0 }

// Access is the one access policy of the ledger (docs/protocol.md §9,
// "Visibility" and "Access policy"): whether who may use chain with the
// right need. Every front end asks it — the TCP commands now, the HTTP
// routes and the replication workers later — and nothing else decides.
//
// The account record and the rights row on the chain are read in one
// store transaction, and only for a verified account and only when the
// answer depends on them (reading a public chain does not): admins hold
// every right, a disabled or deleted account none. The answers, in this order:
//
//   - a chain that does not exist for the principal (private, and the
//     principal is not a verified account with some right on it): ERR
//     notfound, the same bytes as for a chain that does not exist at all;
//   - need write: below state verified ERR state, on a server-written chain
//     or a mirror ERR perm (whatever is held), without the write right ERR
//     perm;
//   - any other need without that right: ERR perm.
//
// On success the Grant tells which other rights are held (e.g. manage, for
// the authority events of a schema chain), so the caller needs no second
// lookup.
func (s *Store) Access(ctx context.Context, who Principal, chain ChainFacts, need Right) (Grant, error) {
	if err := checkRight(need); err != nil {
		return Grant{}, err
	}
	g := Grant{public: chain.Public}
	if chain.Public && need == RightRead {
		// Everyone reads a public chain: no transaction on the hot path,
		// and a Grant that lists nothing beyond that.
		return g, nil
	}
	if who.Verified && who.Account != "" {
		err := s.st.View(ctx, func(tx store.ReadTx) error {
			var err error
			g.Admin, g.Held, err = loadGrant(tx, who.Account, chain.Name)
			return err
		})
		if err != nil {
			return Grant{}, err
		}
	}
	if !g.visible() {
		return Grant{}, wire.NoChain(chain.Arg)
	}
	if need == RightWrite {
		switch {
		case !who.Verified:
			return Grant{}, wire.Errorf(wire.CodeState, "writing to chain %s needs state verified (this connection is in state %s)", chain.Name, who.State)
		case chain.ServerWritten:
			return Grant{}, wire.Errorf(wire.CodePerm, "chain %s is written only by the server", chain.Name)
		case chain.Mirror:
			return Grant{}, wire.Errorf(wire.CodePerm, "chain %s is a mirror: it is written only at its home server", chain.Name)
		case !g.Has(RightWrite):
			return Grant{}, wire.Errorf(wire.CodePerm, "no write right on chain %s", chain.Name)
		}
		return g, nil
	}
	if !g.Has(need) {
		return Grant{}, wire.Errorf(wire.CodePerm, "no %s right on chain %s", need, chain.Name)
	}
	return g, nil
}

// loadGrant reads what an account holds on chain inside tx: admin (every
// right), or the rights granted. A disabled or missing account holds
// nothing, a peer account only read and replicate.
func loadGrant(tx store.ReadTx, name, chain string) (admin bool, held []Right, err error) {
	rec, err := loadAccount(tx, name)
	if errors.Is(err, wire.ErrNotFound) {
		return false, nil, nil
	}
	if err != nil || !rec.Enabled {
		return false, nil, err
	}
	if rec.Role == RoleAdmin {
		return true, nil, nil
	}
	held, err = loadRights(tx, HomeName(name), chain)
	if rec.Peer {
		// A peer account replicates: a write or manage grant to it (which
		// grant allows) gives it nothing (docs/protocol.md §11).
		held = slices.DeleteFunc(held, func(r Right) bool { return r != RightRead && r != RightReplicate })
	}
	return false, held, err
}
