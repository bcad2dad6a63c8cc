package ledger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// ChainInfo describes a chain for `chains`.
type ChainInfo struct {
	// Origin is the server-id of the chain's home; Mirror is true when that
	// is another server (the chain is mirrored here, reachable only by its
	// full origin vserv/<Origin>/<Name>).
	Origin        string
	Mirror        bool
	Name          string
	Size          uint64
	Public        bool
	PoWBits       int
	Schema        string
	Authority     []string // the authority keys' texts (§6.1)
	ServerWritten bool
	ReadOnly      string // why writes are refused; empty when they are not
}

// Chains lists every chain homed here, by name, then every chain mirrored
// here, by origin and name; private ones included (the server filters them
// per connection).
func (l *Ledger) Chains() []ChainInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]ChainInfo, 0, len(l.chains)+len(l.mirrors))
	for _, cs := range l.chains {
		out = append(out, cs.info())
	}
	for _, cs := range l.mirrors {
		out = append(out, cs.info())
	}
	slices.SortFunc(out, func(a, b ChainInfo) int {
		if a.Mirror != b.Mirror {
			if a.Mirror {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(a.Origin, b.Origin), strings.Compare(a.Name, b.Name))
	})
	return out
}

// Chain describes one chain, given by name or full origin; a missing one is
// ERR notfound. The server uses it to decide access before any other call.
func (l *Ledger) Chain(arg string) (ChainInfo, error) {
	cs, err := l.state(arg)
	if err != nil {
		return ChainInfo{}, err
	}
	return cs.info(), nil
}

// Ref is how every ledger call names the chain: its name for a chain homed
// here, its full origin vserv/<origin>/<name> for a mirrored one.
func (c ChainInfo) Ref() string {
	if c.Mirror {
		return verify.OriginLine(c.Origin, c.Name)
	}
	return c.Name
}

func (cs *chainState) info() ChainInfo {
	return ChainInfo{Origin: cs.meta.Origin, Mirror: cs.mirror, Name: cs.meta.Name, Size: cs.size, Public: cs.meta.Public,
		PoWBits: cs.meta.PoWBits, Schema: cs.meta.Schema, Authority: cs.meta.Authority, ServerWritten: cs.meta.ServerWritten,
		ReadOnly: cs.readOnly}
}

// DefaultChains are created at first start (§3.4).
var DefaultChains = []store.ChainMeta{
	{Name: "vote", Public: true, PoWBits: 16, Schema: "vote"},
	{Name: "donation", Public: true, PoWBits: 16, Schema: "donation"},
	{Name: "resource", Public: true, PoWBits: 16, Schema: "resource"},
	{Name: "keys", Public: true, ServerWritten: true},
	{Name: "audit", Public: false, ServerWritten: true},
}

// EnsureDefaultChains creates whichever default chain does not exist yet,
// and attaches its schema to a default chain made by a release before
// schemas while that chain is still empty.
func (l *Ledger) EnsureDefaultChains(ctx context.Context) error {
	for _, m := range DefaultChains {
		l.mu.RLock()
		old, ok := l.chains[m.Name]
		l.mu.RUnlock()
		if ok {
			if m.Schema == "" || old.meta.Schema != "" {
				continue
			}
			if old.size > 0 || old.meta.Public != m.Public || old.meta.PoWBits != m.PoWBits || old.meta.ServerWritten {
				l.log.Warn("default chain keeps no schema: it already holds records or was made otherwise",
					"chain", m.Name, "schema", m.Schema, "entries", old.size)
				continue
			}
			if err := l.createChain(ctx, m); err != nil {
				return err
			}
			l.log.Info("schema attached to a default chain", "chain", m.Name, "schema", m.Schema)
			continue
		}
		if h, lost := l.lost[m.Name]; lost {
			// Recreating it empty would sign a size-0 checkpoint over a
			// history this server already signed: leave it missing.
			l.log.Error("default chain not recreated", "chain", m.Name, "reason", lostChainText(m.Name, h))
			continue
		}
		if err := l.createChain(ctx, m); err != nil && wire.CodeOf(err) != wire.CodeExists {
			return err
		}
	}
	return nil
}

// CreateChain creates a chain and signs its size-0 checkpoint (`mkchain`).
// On an existing chain it only attaches a schema, and only while the chain is
// empty and has none; anything else is ERR exists.
//
// authority is the chain's authority keys as text (§6.1), only with a schema.
func (l *Ledger) CreateChain(ctx context.Context, name string, public bool, powBits int, schema string, authority ...string) error {
	if !verify.ValidChainName(name) {
		return wire.Errorf(wire.CodeInvalid, "bad chain name %q: want [a-z0-9][a-z0-9_-]{0,63}", name)
	}
	if powBits < 0 || powBits > verify.MaxPoWBits {
		return wire.Errorf(wire.CodeInvalid, "pow_bits %d not in [0, %d]", powBits, verify.MaxPoWBits)
	}
	if schema != "" {
		if _, err := apps.For(schema); err != nil {
			return wire.Errorf(wire.CodeInvalid, "schema %.64q is not one of vote, donation, resource", schema)
		}
	}
	if len(authority) > 0 && schema == "" {
		return wire.Errorf(wire.CodeInvalid, "authority keys need a schema")
	}
	if _, err := apps.ParseAuthority(authority); err != nil {
		return wire.Errorf(wire.CodeInvalid, "%v", err)
	}
	m := store.ChainMeta{Origin: l.cfg.ServerID, Name: name, Public: public, PoWBits: powBits, Schema: schema}
	if len(authority) > 0 {
		m.Authority = append([]string(nil), authority...)
	}
	return l.createChain(ctx, m)
}

func (l *Ledger) createChain(ctx context.Context, m store.ChainMeta) error {
	m.Origin = l.cfg.ServerID
	// Once the committer runs it, it runs to the end: the caller's ctx
	// ending must not roll back a chain half announced.
	txCtx := context.WithoutCancel(ctx)
	return l.runAdmin(ctx, func() error {
		if l.ring.fault != "" || l.retired.Load() {
			return wire.Errorf(wire.CodeConflict, "cannot sign a new chain's checkpoint: %s", l.writeRefusal())
		}
		l.mu.RLock()
		old := l.chains[m.Name]
		l.mu.RUnlock()
		if h, ok := l.lost[m.Name]; ok && old == nil {
			return wire.Errorf(wire.CodeConflict, "cannot create chain %q: %s; %s", m.Name, lostChainText(m.Name, h), rollbackAdvice)
		}
		if old != nil {
			attach := m.Schema != "" && old.meta.Schema == "" && old.size == 0 &&
				old.meta.Public == m.Public && old.meta.PoWBits == m.PoWBits && !old.meta.ServerWritten
			if !attach {
				return wire.Errorf(wire.CodeExists, "chain %q exists", m.Name)
			}
			cs := old.clone()
			cs.meta.Schema, cs.meta.Authority = m.Schema, m.Authority
			var err error
			if cs.app, cs.appChain, err = l.appChain(cs.meta); err != nil {
				return wire.Errorf(wire.CodeInvalid, "%v", err)
			}
			err = l.store.Update(txCtx, func(tx store.WriteTx) error {
				if err := tx.PutChain(cs.meta); err != nil {
					return err
				}
				return startAppState(tx, cs.meta)
			})
			if err != nil {
				return err
			}
			l.install(cs)
			return nil
		}
		cs := &chainState{meta: m, rng: rangeFactory.NewEmptyRange(0)}
		var err error
		if cs.app, cs.appChain, err = l.appChain(m); err != nil {
			return wire.Errorf(wire.CodeInvalid, "%v", err)
		}
		err = l.store.Update(txCtx, func(tx store.WriteTx) error {
			if err := tx.PutChain(m); err != nil {
				return err
			}
			if err := startAppState(tx, m); err != nil {
				return err
			}
			return l.storeCheckpoint(tx, cs)
		})
		if err != nil {
			return err
		}
		l.install(cs)
		l.notifyWatchers(cs.meta.Key(), 0)
		written := make(chan struct{})
		l.recordHeads(map[string]*chainState{m.Name: cs}, func() { close(written) })
		<-written
		l.log.Info("chain created", "chain", m.Name, "public", m.Public, "pow_bits", m.PoWBits, "schema", m.Schema)
		return nil
	})
}

func (l *Ledger) install(cs *chainState) {
	l.mu.Lock()
	l.chains[cs.meta.Name] = cs
	l.mu.Unlock()
}

// KeepCheckpoint marks the stored checkpoint of chain at size as kept (for
// instance once it is cosigned), optionally replacing its note with one that
// carries cosignature lines.
func (l *Ledger) KeepCheckpoint(ctx context.Context, chain string, size uint64, note []byte) error {
	return l.updateCheckpoint(ctx, chain, size, func(cs *chainState, cp *store.StoredCheckpoint) error {
		if note != nil {
			c, err := l.ring.open(note, l.origin(cs.meta.Name))
			if err != nil || c.Size != size {
				return wire.Errorf(wire.CodeInvalid, "note is not this chain's checkpoint of size %d", size)
			}
			cp.Note = note
		}
		return nil
	})
}

// updateCheckpoint changes the stored checkpoint of one of this server's
// chains at size through change and marks it kept, in one transaction run
// by the committer (so it never races a group commit). A missing
// checkpoint is ERR notfound.
func (l *Ledger) updateCheckpoint(ctx context.Context, chain string, size uint64, change func(*chainState, *store.StoredCheckpoint) error) error {
	cs, err := l.ownState(chain)
	if err != nil {
		return err
	}
	txCtx := context.WithoutCancel(ctx)
	return l.runAdmin(ctx, func() error {
		return l.store.Update(txCtx, func(tx store.WriteTx) error {
			cp, ok, err := tx.Checkpoint(cs.meta.Key(), size)
			if err != nil {
				return err
			}
			if !ok {
				return wire.Errorf(wire.CodeNotFound, "no checkpoint of size %d in chain %q", size, cs.meta.Name)
			}
			if err := change(cs, &cp); err != nil {
				return err
			}
			cp.Keep |= store.KeepExplicit
			if err := tx.PutCheckpoint(cs.meta.Key(), cp); err != nil {
				return fmt.Errorf("chain %q: keep checkpoint %d: %w", cs.meta.Name, size, err)
			}
			return nil
		})
	})
}

// writeRefusal says why this ledger's key may not sign anything new.
func (l *Ledger) writeRefusal() string {
	if l.ring.fault != "" {
		return l.ring.fault
	}
	return "the identity key was rotated; restart with the new key"
}

// startAppState records that an empty schema chain's (empty) rules' state is
// up to date, so that Open does not rebuild it.
func startAppState(tx store.WriteTx, m store.ChainMeta) error {
	if m.Schema == "" {
		return nil
	}
	if _, _, _, err := tx.AppState(m.Key()); err != nil {
		return err
	}
	return tx.PutAppStateSize(m.Key(), 0)
}
