package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Config configures a Ledger.
type Config struct {
	ServerID string             // the home's server-id (§2.4)
	Signer   ed25519.PrivateKey // the identity key that signs checkpoints
	Now      func() time.Time   // time.Now when nil
	Logger   *slog.Logger       // slog.Default() when nil
	// FullCheckOnOpen recomputes every chain's root from its entries at Open
	// instead of from the stored Merkle nodes and the last entry. It costs one
	// pass over the data (about a second per million entries).
	FullCheckOnOpen bool
	// HeadsFile is the path of the heads file (heads.go), normally
	// <dataroot>/heads. Empty: none is kept (tests, offline tools), and a
	// rolled-back database goes unnoticed.
	HeadsFile string
	// HomeKeys, when set, gives the pinned keys of another home (by
	// server-id), with which Open re-verifies the newest checkpoint of each
	// chain mirrored from it; without it (or for a home it does not know)
	// that checkpoint is only parsed: Mirror verified it before storing it.
	HomeKeys func(serverID string) []ed25519.PublicKey
	// WitnessQuorum, when above 0, makes Proof without a tree size use the
	// newest kept checkpoint that covers the entry and holds at least this
	// many stored cosignature lines (the newest checkpoint when none does).
	WitnessQuorum int
}

// Ledger is the set of chains this server homes: in the store, the chains
// of origin Config.ServerID.
type Ledger struct {
	store  store.Store
	cfg    Config
	pub    ed25519.PublicKey
	ring   *keyring // every key whose checkpoints are accepted (key rotations)
	log    *slog.Logger
	jobs   chan job
	done   chan struct{}
	closeM sync.RWMutex // held for reading while sending a job; Close takes it for writing
	closed bool
	// retired is set once a key.rotate record by the signer is committed:
	// from then on only the new key may sign checkpoints (§2.4).
	retired atomic.Bool

	mu     sync.RWMutex // guards chains and mirrors
	chains map[string]*chainState
	// mirrors are the chains of other homes held here (mirror.go), written
	// only by Mirror, one batch at a time (mirrorMu).
	mirrors  map[store.ChainKey]*chainState
	mirrorMu sync.Mutex

	// heads is the heads file's content; lost holds the chains it names that
	// the database does not have. Only Open and the committer touch them.
	heads  map[string]Head
	lost   map[string]Head
	headsQ chan headsWrite // to the heads writer, which the committer starts and stops

	signed *signedSet // chains with a new checkpoint, for the witness submitter
	watch  watchers   // open Watchers (watch.go): every chain change, own and mirrored
	holds  holdSet    // chains whose writes wait for their peers (hold.go)
}

// chainState is the committed state of a chain, as the committer will extend
// it. Only the committer replaces these values, after a durable commit.
type chainState struct {
	meta     store.ChainMeta
	size     uint64
	lastLeaf [32]byte
	lastTime uint64
	rng      *compact.Range
	head     []byte // newest signed checkpoint note
	headSize uint64 // its tree size; equal to size unless the chain is read-only
	headRoot [32]byte
	// readOnly, when not empty, says why writes are refused: the stored data
	// does not match the newest checkpoint, and signing a new one would sign
	// a history inconsistent with it.
	readOnly string
	// app and appChain are the chain's rules (§6), app nil without a schema.
	app      apps.Schema
	appChain apps.Chain
	// mirror: the chain is homed on another server (meta.Origin) and held
	// here verbatim; its checkpoints are the home's (mirror.go).
	mirror bool
}

func (c *chainState) clone() *chainState {
	d := *c
	d.rng = cloneRange(c.rng)
	return &d
}

func cloneRange(r *compact.Range) *compact.Range {
	hashes := make([][]byte, len(r.Hashes()))
	copy(hashes, r.Hashes())
	n, err := rangeFactory.NewRange(r.Begin(), r.End(), hashes)
	if err != nil {
		panic(fmt.Sprintf("ledger: clone compact range: %v", err)) // same shape as a valid range
	}
	return n
}

// Open opens the ledger on s and starts its committer. The caller keeps
// owning s: Close stops the ledger, not the store. ctx bounds the opening
// (reading every chain, the full check); the committer outlives it.
func Open(ctx context.Context, s store.Store, cfg Config) (*Ledger, error) {
	if !verify.ValidServerID(cfg.ServerID) {
		return nil, fmt.Errorf("open ledger: bad server-id %q", cfg.ServerID)
	}
	if len(cfg.Signer) != ed25519.PrivateKeySize {
		return nil, errors.New("open ledger: signer must be an ed25519 private key")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Ledger{
		store:   s,
		cfg:     cfg,
		pub:     cfg.Signer.Public().(ed25519.PublicKey),
		log:     cfg.Logger,
		jobs:    make(chan job, 1024),
		done:    make(chan struct{}),
		chains:  map[string]*chainState{},
		mirrors: map[store.ChainKey]*chainState{},
		signed:  newSignedSet(),
	}
	err := s.Update(ctx, func(tx store.WriteTx) error {
		id, err := tx.ServerID()
		if err != nil {
			return err
		}
		switch id {
		case "":
			return tx.SetServerID(cfg.ServerID)
		case cfg.ServerID:
			return nil
		}
		return fmt.Errorf("database belongs to server-id %s, not %s", id, cfg.ServerID)
	})
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	metas, mirrored, err := ownChains(ctx, s, cfg.ServerID)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if l.ring, err = loadKeyring(ctx, s, cfg.ServerID, l.pub, metas); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if l.ring.fault != "" {
		l.log.Error("every chain is read-only", "reason", l.ring.fault)
	}
	for _, m := range metas {
		var cs *chainState
		err := s.View(ctx, func(tx store.ReadTx) error {
			var err error
			cs, err = l.loadChain(tx, m)
			return err
		})
		if err == nil && cs.readOnly == "" && cfg.FullCheckOnOpen {
			c := newChecker(s, m, cfg.ServerID, l.ring, "tree")
			if _, err = c.run(ctx, nil); err == nil && len(c.faults) > 0 {
				cs.readOnly = c.faults[0].String()
			}
		}
		if err == nil && l.ring.fault != "" {
			// The key problem comes first: it explains the others.
			cs.readOnly = strings.TrimSuffix(l.ring.fault+"; "+cs.readOnly, "; ")
		}
		if err != nil {
			return nil, fmt.Errorf("open ledger: chain %q: %w", m.Name, err)
		}
		if cs.readOnly != "" {
			l.log.Error("chain is read-only", "chain", m.Name, "reason", cs.readOnly)
		}
		l.chains[m.Name] = cs
	}
	if err := l.loadMirrors(ctx, mirrored); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := l.loadHeads(ctx); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := l.rebuildAppStates(ctx); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := l.countersignHeads(ctx); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := l.backfillBatchPoints(ctx); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	go l.commitLoop()
	return l, nil
}

// ownChains lists the chains of the store whose origin is serverID: those
// this server homes; and apart, the others: chains of other homes mirrored
// here (mirror.go), which only Mirror extends.
func ownChains(ctx context.Context, s store.Store, serverID string) (own, mirrored []store.ChainMeta, err error) {
	err = s.View(ctx, func(tx store.ReadTx) error {
		all, err := tx.Chains()
		for _, m := range all {
			if m.Origin == serverID {
				own = append(own, m)
			} else {
				mirrored = append(mirrored, m)
			}
		}
		return err
	})
	return own, mirrored, err
}

// loadMirrors loads the mirrored chains with the checks of loadChain: a
// mirrored chain whose stored data does not match the home's newest
// checkpoint it holds takes no more batches (it still serves reads).
func (l *Ledger) loadMirrors(ctx context.Context, metas []store.ChainMeta) error {
	for _, m := range metas {
		var cs *chainState
		err := l.store.View(ctx, func(tx store.ReadTx) error {
			var err error
			cs, err = l.loadChain(tx, m)
			return err
		})
		if err != nil {
			return fmt.Errorf("mirrored chain %s: %w", m.Key(), err)
		}
		if cs.readOnly != "" {
			l.log.Error("mirrored chain takes no more batches", "origin", m.Origin, "chain", m.Name, "reason", cs.readOnly)
		}
		l.mirrors[m.Key()] = cs
	}
	return nil
}

// loadChain rebuilds a chain's state and compares it with the newest stored
// checkpoint.
func (l *Ledger) loadChain(tx store.ReadTx, m store.ChainMeta) (*chainState, error) {
	size, err := tx.Size(m.Key())
	if err != nil {
		return nil, err
	}
	return l.loadChainAt(tx, m, size)
}

// loadChainAt is loadChain for a chain whose stored size is known (read, or
// locked with LockHead, in the same transaction).
func (l *Ledger) loadChainAt(tx store.ReadTx, m store.ChainMeta, size uint64) (*chainState, error) {
	cs := &chainState{meta: m, rng: rangeFactory.NewEmptyRange(0), mirror: m.Origin != l.cfg.ServerID}
	var err error
	if !cs.mirror {
		// A mirror keeps no rules' state: views are the home's (so far).
		if cs.app, cs.appChain, err = l.appChain(m); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	k := m.Key()
	// A read-only chain still serves reads of what is stored.
	cs.size = size
	cp, ok, err := tx.LatestCheckpoint(k)
	if err != nil {
		return nil, err
	}
	if !ok {
		cs.readOnly = "no signed checkpoint is stored"
		return cs, nil
	}
	cs.head = append([]byte(nil), cp.Note...)
	signed, err := l.openHead(m, cp.Note)
	if err != nil {
		cs.readOnly = fmt.Sprintf("newest checkpoint does not verify: %v", err)
		return cs, nil
	}
	cs.headSize, cs.headRoot = signed.Size, signed.Root
	if signed.Size != size {
		cs.readOnly = fmt.Sprintf("newest checkpoint covers %d entries but %d are stored", signed.Size, size)
		return cs, nil
	}
	if size > 0 {
		entry, err := tx.Entry(k, size-1)
		if err != nil {
			return nil, err
		}
		e, _, perr := verify.ParseEntry(entry)
		if perr != nil {
			cs.readOnly = fmt.Sprintf("last entry %d is invalid: %v", size-1, perr)
			return cs, nil
		}
		cs.lastLeaf = verify.LeafHash(entry)
		cs.lastTime = e.Time
		stored, err := node(tx, k, compact.NewNodeID(0, size-1))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(stored, cs.lastLeaf[:]) || e.Seq != size-1 {
			cs.readOnly = fmt.Sprintf("last entry %d does not match its stored leaf hash", size-1)
			return cs, nil
		}
	}
	rng, err := loadRange(tx, k, size)
	if err != nil {
		cs.readOnly = err.Error()
		return cs, nil
	}
	root, err := rootOf(rng)
	if err != nil {
		return nil, err
	}
	if root != signed.Root {
		cs.readOnly = fmt.Sprintf("recomputed root at size %d differs from the newest checkpoint", size)
		return cs, nil
	}
	cs.rng = rng
	return cs, nil
}

// Close stops accepting writes, lets the committer finish every queued
// append and waits for it.
func (l *Ledger) Close() error {
	l.closeM.Lock()
	if !l.closed {
		l.closed = true
		close(l.jobs)
	}
	l.closeM.Unlock()
	<-l.done
	return nil
}

// origin is the checkpoint origin line of a chain homed here.
func (l *Ledger) origin(chain string) string { return verify.OriginLine(l.cfg.ServerID, chain) }

// key is the store's key of a chain homed here.
func (l *Ledger) key(chain string) store.ChainKey {
	return store.ChainKey{Origin: l.cfg.ServerID, Name: chain}
}

// PublicKey is the key checkpoints are signed with.
func (l *Ledger) PublicKey() ed25519.PublicKey { return l.pub }

// chainKey resolves a chain argument: a plain name is a chain homed here,
// and only that; a full origin vserv/<server-id>/<chain> names a chain of
// that home (this server's own, or one mirrored from another).
func (l *Ledger) chainKey(arg string) (store.ChainKey, error) {
	k := store.ChainKey{Origin: l.cfg.ServerID, Name: arg}
	if rest, ok := strings.CutPrefix(arg, "vserv/"); ok {
		id, n, ok := strings.Cut(rest, "/")
		if !ok || !verify.ValidServerID(id) {
			return store.ChainKey{}, wire.Errorf(wire.CodeInvalid, "bad origin %q", arg)
		}
		k = store.ChainKey{Origin: id, Name: n}
	}
	if !verify.ValidChainName(k.Name) {
		return store.ChainKey{}, wire.Errorf(wire.CodeInvalid, "bad chain name %q", arg)
	}
	return k, nil
}

// state returns the chain's committed state; the caller must not modify it.
func (l *Ledger) state(arg string) (*chainState, error) {
	k, err := l.chainKey(arg)
	if err != nil {
		return nil, err
	}
	l.mu.RLock()
	cs := l.chains[k.Name]
	if k.Origin != l.cfg.ServerID {
		cs = l.mirrors[k]
	}
	l.mu.RUnlock()
	if cs == nil {
		return nil, NoChain(arg)
	}
	return cs, nil
}

// ownState is state for the operations only a chain's home performs
// (appends, checks with its own key ring, views): a mirrored chain is
// refused with ERR perm.
func (l *Ledger) ownState(arg string) (*chainState, error) {
	cs, err := l.state(arg)
	if err == nil && cs.mirror {
		return nil, wire.Errorf(wire.CodePerm, "chain %s is a mirror: it is written only at its home %s", cs.meta.Name, cs.meta.Origin)
	}
	return cs, err
}

// NoChain is the answer for a chain that does not exist, and for one that
// must look as if it did not (a private chain, DESIGN §3.4): the text names
// the argument as given, so that both answers are the same bytes.
func NoChain(arg string) error {
	return wire.NoChain(arg)
}

// loadHeads compares every chain with the heads file, makes the chains that
// are behind it read-only, and records the chains it does not have yet.
func (l *Ledger) loadHeads(ctx context.Context) error {
	l.heads, l.lost = map[string]Head{}, map[string]Head{}
	if l.cfg.HeadsFile == "" {
		return nil
	}
	heads, _, err := ReadHeads(l.cfg.HeadsFile)
	if err != nil {
		return err
	}
	changed := false
	for name, h := range heads {
		cs := l.chains[name]
		if cs == nil {
			l.lost[name] = h
			l.log.Error("chain is missing from the database", "chain", name, "reason", lostChainText(name, h)+"; "+rollbackAdvice)
			continue
		}
		if cs.readOnly != "" {
			// Already refused; the heads file keeps its evidence, and says
			// so when the database is shorter than what was signed.
			if cs.size < h.Size {
				cs.readOnly += fmt.Sprintf("; the database holds %d entries, but this server already signed size %d; %s",
					cs.size, h.Size, rollbackAdvice)
			}
			continue
		}
		rootAt := func(size uint64) (root [32]byte, err error) {
			err = l.store.View(ctx, func(tx store.ReadTx) error {
				rng, err := loadRange(tx, l.key(name), size)
				if err != nil {
					return err
				}
				root, err = rootOf(rng)
				return err
			})
			return root, err
		}
		if why := compareHead(name, cs.headSize, cs.headRoot, h, rootAt); why != "" {
			cs.readOnly = why + "; " + rollbackAdvice
			l.log.Error("chain is read-only", "chain", name, "reason", why)
		}
	}
	l.heads = heads
	for name, cs := range l.chains {
		if _, ok := heads[name]; !ok && cs.readOnly == "" && cs.head != nil {
			l.heads[name] = Head{Size: cs.headSize, Root: cs.headRoot}
			changed = true
		}
	}
	if changed {
		return writeHeads(l.cfg.HeadsFile, l.heads)
	}
	return nil
}

// recordHeads updates the heads file after a durable commit that signed new
// checkpoints for these chains. It runs on the committer; the write itself
// runs on the heads writer, so the next group commit's fsync overlaps it.
// The commit's replies do not wait for it: the file may be behind the
// checkpoints shown by up to headsInterval and one write, so a crash in that window
// followed by a rollback of exactly those commits goes unnoticed by the file
// (clients' checkpoint caches and --expect still catch it). The commit
// stands even if the write fails: the file is then behind, which is logged.
//
// done, when not nil, is called once the file is written (mkchain waits for
// it: a new chain is rare, and known to the file before it is announced).
func (l *Ledger) recordHeads(chains map[string]*chainState, done func()) {
	if l.cfg.HeadsFile == "" || len(chains) == 0 {
		if done != nil {
			done()
		}
		return
	}
	for name, cs := range chains {
		l.heads[name] = Head{Size: cs.headSize, Root: cs.headRoot}
	}
	l.headsQ <- headsWrite{heads: maps.Clone(l.heads), done: done}
}

// headsInterval is the least time between two heads file writes.
const headsInterval = 100 * time.Millisecond

// headsWrite is one snapshot for the heads writer; done, when set, is
// called once it is written.
type headsWrite struct {
	heads map[string]Head
	done  func()
}

// headsWriter writes snapshots in order. Snapshots that queued up while it
// wrote are coalesced into the newest, which covers them all: one write and
// one fsync for all of them.
func (l *Ledger) headsWriter(done chan<- struct{}) {
	defer close(done)
	for w := range l.headsQ {
		thens := []func(){w.done}
	drain:
		for {
			select {
			case next, ok := <-l.headsQ:
				if !ok {
					break drain
				}
				w.heads = next.heads
				thens = append(thens, next.done)
			default:
				break drain
			}
		}
		if err := writeHeads(l.cfg.HeadsFile, w.heads); err != nil {
			l.log.Error("heads file not updated; a rollback of the newest commits would go unnoticed", "err", err)
		}
		for _, f := range thens {
			if f != nil {
				f()
			}
		}
		// Its fsync competes with the database's for the disk: one per
		// group commit halved the records/s of single-record writers. At
		// most one write per headsInterval, each covering every commit
		// since the last, costs nothing measurable.
		time.Sleep(headsInterval)
	}
}

// SyncHeads waits until the heads file holds every checkpoint signed so
// far (appends do not wait for it; see recordHeads).
func (l *Ledger) SyncHeads(ctx context.Context) error {
	return l.runAdmin(ctx, func() error {
		if l.cfg.HeadsFile == "" {
			return nil
		}
		written := make(chan struct{})
		l.headsQ <- headsWrite{heads: maps.Clone(l.heads), done: func() { close(written) }}
		<-written
		return nil
	})
}
