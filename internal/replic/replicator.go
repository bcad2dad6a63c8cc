package replic

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Replication timing (docs/protocol.md §11 "Replication workers").
const (
	peersEvery     = time.Second      // the peer table is re-read this often
	pullEvery      = time.Minute      // a home is asked again this often while we lag
	keepAlive      = 30 * time.Second // a round at least this often (or half the peer's idle timeout)
	connectTimeout = 10 * time.Second // dialling and the sign-on
	callTimeout    = 30 * time.Second // one call of a session
)

// Replicator runs the replication workers of docs/protocol.md §11: one
// persistent session per mirror and home entry of the peer table, pushing
// our chains to mirrors after every commit and pulling the chains of homes.
// It satisfies server.Replication.
type Replicator struct {
	l      *ledger.Ledger
	peers  *Peers
	id     *secure.Identity
	log    *slog.Logger
	now    func() time.Time
	onFork func(chain, peer, reason string)
	dial   func(ctx context.Context, addr string, opts client.Options) (*client.Client, error)

	mu      sync.Mutex
	workers map[string]*worker // by rowKey
	status  map[statusKey]*ChainStatus
	hops    map[store.ChainKey]uint64 // of chains mirrored here
	running bool                      // Run is in its loop and answers reread
	// reread asks Run to read the peer table now (Sync after an ihost add).
	reread chan chan struct{}
}

type statusKey struct{ row, chain string }

// ReplicatorConfig is what a Replicator needs.
type ReplicatorConfig struct {
	Ledger   *ledger.Ledger
	Peers    *Peers
	Identity *secure.Identity // our identity: pauth signs with its key
	Logger   *slog.Logger
	Now      func() time.Time // time.Now when nil
	// OnFork, when set, is called when a mirror answers ERR conflict to a
	// push (it holds another history of the chain): chain is the full
	// origin, peer the entry's peer, reason the mirror's text.
	OnFork func(chain, peer, reason string)
}

// NewReplicator returns the replicator of cfg; Run runs it.
func NewReplicator(cfg ReplicatorConfig) (*Replicator, error) {
	if cfg.Ledger == nil || cfg.Peers == nil || cfg.Identity == nil {
		return nil, errors.New("new replicator: ledger, peers and identity are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Replicator{
		l: cfg.Ledger, peers: cfg.Peers, id: cfg.Identity, log: cfg.Logger, now: cfg.Now, onFork: cfg.OnFork,
		dial:    client.Dial,
		workers: map[string]*worker{}, status: map[statusKey]*ChainStatus{}, hops: map[store.ChainKey]uint64{},
		reread: make(chan chan struct{}),
	}, nil
}

// Run runs a worker per mirror and home entry until ctx ends, then stops
// them all and returns nil.
func (r *Replicator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		r.mu.Lock()
		r.running = false
		for k, w := range r.workers {
			w.cancel()
			delete(r.workers, k)
		}
		r.mu.Unlock()
		wg.Wait()
	}()
	watch := r.l.Watch()
	defer watch.Close()
	tick := time.NewTicker(peersEvery)
	defer tick.Stop()
	r.syncWorkers(ctx, &wg)
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return nil
		case done := <-r.reread:
			r.syncWorkers(ctx, &wg)
			close(done)
		case <-tick.C:
			r.syncWorkers(ctx, &wg)
			r.refreshLag(ctx)
		case <-watch.C():
			// After a commit or a mirrored batch, the mirrors of those
			// chains push again.
			changed := watch.Take()
			r.mu.Lock()
			for _, w := range r.workers {
				if w.p.Role == RoleMirror && slices.ContainsFunc(w.p.Chains, func(c string) bool {
					for k := range changed {
						if k.Name == c {
							return true
						}
					}
					return false
				}) {
					w.kick()
				}
			}
			r.mu.Unlock()
		}
	}
}

// syncWorkers starts a worker for each new (or changed) mirror or home
// entry and stops those of entries removed or changed.
func (r *Replicator) syncWorkers(ctx context.Context, wg *sync.WaitGroup) {
	list, err := r.peers.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("replicate: read the peer table", "err", err)
		}
		return
	}
	live := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range list {
		if !p.Role.dials() {
			continue
		}
		k := rowKey(p.Role, p.Peer)
		live[k] = true
		if w := r.workers[k]; w != nil {
			if w.p.Added.Equal(p.Added) && bytes.Equal(w.p.Key, p.Key) && slices.Equal(w.p.Chains, p.Chains) && w.p.User == p.User {
				continue
			}
			w.cancel()
			for sk := range r.status {
				if sk.row == k {
					delete(r.status, sk) // the new entry starts afresh
				}
			}
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{r: r, p: p, row: k, cancel: cancel, kickC: make(chan struct{}, 1), syncC: make(chan chan struct{}), pullC: make(chan struct{}, 1), done: make(chan struct{}), chainWait: map[string]chainBackoff{}, keepAlive: keepAlive}
		r.workers[k] = w
		wg.Go(func() { w.run(wctx) })
	}
	for k, w := range r.workers {
		if !live[k] {
			w.cancel()
			delete(r.workers, k)
		}
	}
	for k := range r.status {
		if !live[k.row] {
			delete(r.status, k)
		}
	}
}

// refreshLag brings the lag of every status row up to date between
// exchanges: a mirror that is down lags more with each commit here, and the
// entries a mirror end lacks grow older.
func (r *Replicator) refreshLag(ctx context.Context) {
	type row struct {
		k          statusKey
		size, want uint64
	}
	var mirrors []row
	now := r.now()
	r.mu.Lock()
	for k, st := range r.status {
		switch {
		case st.Role == RoleMirror:
			mirrors = append(mirrors, row{k, st.Size, st.Want})
		case st.LagEntries > 0 && !st.behindSince.IsZero():
			st.LagSeconds = now.Sub(st.behindSince).Seconds()
		}
	}
	r.mu.Unlock()
	for _, m := range mirrors {
		c, err := r.l.Chain(m.k.chain)
		if err != nil {
			continue
		}
		want, age := max(c.Size, m.want), 0.0
		if m.size < want {
			age = r.entryAge(ctx, m.k.chain, m.size)
		}
		r.mu.Lock()
		if st := r.status[m.k]; st != nil {
			st.Want, st.LagEntries, st.LagSeconds = want, want-min(st.Size, want), age
		}
		r.mu.Unlock()
	}
}

// Status is what the workers know of every peer and chain, by peer, role
// and chain.
func (r *Replicator) Status() []ChainStatus {
	r.mu.Lock()
	out := make([]ChainStatus, 0, len(r.status))
	for _, s := range r.status {
		out = append(out, *s)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b ChainStatus) int {
		return strings.Compare(string(a.Role)+"\x00"+a.Peer+"\x00"+a.Chain, string(b.Role)+"\x00"+b.Peer+"\x00"+b.Chain)
	})
	return out
}

// Sync runs one round now with peer (every mirror and home entry when peer
// is "") and returns the status when it ended. A peer without a mirror or
// home entry is ERR notfound.
func (r *Replicator) Sync(ctx context.Context, peer string) ([]ChainStatus, error) {
	// An entry added within the last second gets its worker first.
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if running {
		done := make(chan struct{})
		select {
		case r.reread <- done:
			select {
			case <-done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(peersEvery):
			// Run is stopping: answer with what is known.
		}
	}
	r.mu.Lock()
	var ws []*worker
	for _, w := range r.workers {
		if peer == "" || w.p.Peer == peer {
			ws = append(ws, w)
		}
	}
	r.mu.Unlock()
	if peer != "" && len(ws) == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "no mirror or home peer %q", clip(peer))
	}
	for _, w := range ws {
		done := make(chan struct{})
		select {
		case w.syncC <- done:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.stopped():
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st := r.Status()
	if peer != "" {
		st = slices.DeleteFunc(st, func(s ChainStatus) bool { return s.Peer != peer })
	}
	return st, nil
}

// Pushed records what an rpush from the peer account did here: the status
// of the home entry of that account, and the hop count of the chain. An
// error other than a fork (ERR notfound: the chain is not mirrored here
// yet; a batch we could not take) makes the entry's worker pull now.
func (r *Replicator) Pushed(account, origin, chain string, hops, size uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	full := verify.OriginLine(origin, chain)
	for _, w := range r.workers {
		if w.p.Role != RoleHome || w.p.Account != account {
			continue
		}
		st := r.statusLocked(w, full)
		if err != nil {
			st.setError("rpush: "+errText(err), r.now())
			if !errors.Is(err, wire.ErrConflict) {
				// Not held yet (ERR notfound), or a batch we could not
				// take: pull what we lack. A fork is not pulled over.
				w.pull()
			}
			continue
		}
		r.hops[store.ChainKey{Origin: origin, Name: chain}] = hops + 1
		st.Size, st.Hops, st.LastError, st.LastOK = size, hops+1, "", r.now()
		if st.Want < size {
			st.Want = size
		}
		st.LagEntries, st.LagSeconds = st.Want-size, 0
	}
}

// Hops is how far this server is from the home of a chain it holds: 0 for
// its own chains, what the last batch taught for a mirrored one (1 until
// one has).
func (r *Replicator) Hops(origin, chain string) uint64 {
	if origin == r.id.ServerID {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.hops[store.ChainKey{Origin: origin, Name: chain}]; ok {
		return h
	}
	return 1
}

// statusLocked returns the status row of w and chain, made on first use.
func (r *Replicator) statusLocked(w *worker, chain string) *ChainStatus {
	k := statusKey{w.row, chain}
	st := r.status[k]
	if st == nil {
		st = &ChainStatus{Peer: w.p.Peer, Role: w.p.Role, Chain: chain}
		r.status[k] = st
	}
	return st
}

// update changes the status row of w and chain under the lock.
func (r *Replicator) update(w *worker, chain string, f func(*ChainStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.workers[w.row] != w {
		return // the entry was removed or replaced
	}
	f(r.statusLocked(w, chain))
}

// forks counts the fork evidence kept for chain (a ledger reference).
func (r *Replicator) forks(ctx context.Context, ref string) uint64 {
	f, err := r.l.Forks(ctx, ref)
	if err != nil {
		return 0
	}
	return uint64(len(f))
}

// entryAge is how long ago the entry at seq of chain was committed (0 when
// it cannot be read).
func (r *Replicator) entryAge(ctx context.Context, ref string, seq uint64) float64 {
	at, err := r.l.EntryTime(ctx, ref, seq)
	if err != nil {
		return 0
	}
	return max(0, r.now().Sub(at).Seconds())
}

// worker is the session with one mirror or home entry.
type worker struct {
	r      *Replicator
	p      Peer
	row    string
	cancel context.CancelFunc
	kickC  chan struct{}      // something changed here: push
	pullC  chan struct{}      // pull now
	syncC  chan chan struct{} // one round now, close when done
	done   chan struct{}      // closed when run returns

	c        *client.Client
	backoff  time.Duration
	next     time.Time // no dial before
	refused  string    // the last refusal logged, to warn once per change
	lastPull time.Time
	behind   bool // the last pull ended behind (or failed)
	// keepAlive is how often a round runs at least: keepAlive, or half
	// the peer's idle timeout when that is shorter.
	keepAlive time.Duration
	// chainWait is the backoff of each chain (full origin) whose last
	// push the mirror refused (an ERR answer): it is pushed again after
	// it, not at every commit.
	chainWait map[string]chainBackoff
}

type chainBackoff struct {
	backoff time.Duration
	next    time.Time
}

func (w *worker) kick() {
	select {
	case w.kickC <- struct{}{}:
	default:
	}
}

func (w *worker) pull() {
	select {
	case w.pullC <- struct{}{}:
	default:
	}
}

func (w *worker) stopped() <-chan struct{} { return w.done }

func (w *worker) run(ctx context.Context) {
	defer func() {
		if w.c != nil {
			w.c.Close()
		}
		close(w.done)
	}()
	log := w.r.log.With("peer", w.p.Peer, "role", w.p.Role)
	timer := time.NewTimer(0)
	defer timer.Stop()
	pullNow := true
	for {
		var done chan struct{}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.kickC:
		case <-w.pullC:
			pullNow = true
		case done = <-w.syncC:
			pullNow = true
		}
		w.round(ctx, log, done != nil, pullNow)
		pullNow = false
		if done != nil {
			close(done)
		}
		// At least every keepAlive a round: it keeps the session open
		// (the peer ends idle ones) and asks a mirror its sizes again.
		wait := w.keepAlive
		switch {
		case w.c == nil:
			wait = max(time.Until(w.next), 10*time.Millisecond)
			pullNow = true // a new session pulls first
		case w.p.Role == RoleHome && w.behind:
			wait = min(wait, max(time.Until(w.lastPull.Add(pullEvery)), 10*time.Millisecond))
		}
		if at := w.wakeAt(); w.c != nil && !at.IsZero() {
			wait = min(wait, max(time.Until(at), 10*time.Millisecond))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// round connects when needed (now when forced, else as the backoff
// allows) and pushes or pulls.
func (w *worker) round(ctx context.Context, log *slog.Logger, forced, pull bool) {
	if w.c == nil {
		if !forced && time.Now().Before(w.next) {
			return
		}
		if err := w.connect(ctx, log); err != nil {
			return
		}
		pull = true
	}
	var err error
	exchanged := false
	switch w.p.Role {
	case RoleMirror:
		exchanged, err = w.pushAll(ctx, log, forced)
	case RoleHome:
		if pull || (w.behind && time.Since(w.lastPull) >= pullEvery) {
			exchanged, err = true, w.pullAll(ctx, log)
		}
	}
	if !exchanged && err == nil {
		// Nothing to say: a `tout` read keeps the session open.
		_, err = w.c.Timeout(ctx, 0)
	}
	if err != nil && ctx.Err() == nil {
		// The session broke: dial again with backoff.
		log.Warn("replicate: session lost", "err", err)
		w.c.Close()
		w.c = nil
		w.fail(err, false)
	}
}

// connect dials, logs in and signs the session with pauth.
func (w *worker) connect(ctx context.Context, log *slog.Logger) error {
	user, pass, err := w.r.peers.Credentials(ctx, w.p.Peer, w.p.Role)
	if err != nil {
		w.fail(err, false)
		return err
	}
	c, err := w.r.dial(ctx, w.p.Peer, client.Options{
		ServerKey: secure.PublicKeyText(w.p.Key), ConnectTimeout: connectTimeout, Timeout: callTimeout,
	})
	if err != nil {
		if errors.Is(err, client.ErrHostKeyChanged) {
			err = fmt.Errorf("refused: the peer presented another key than the pinned one: %w", err)
			w.warnRefused(log, err.Error())
			w.fail(err, true)
			return err
		}
		if ctx.Err() == nil {
			log.Debug("replicate: connect", "err", err)
		}
		w.fail(fmt.Errorf("connect: %w", err), false)
		return err
	}
	err = func() error {
		l, err := c.Login(ctx, user, pass)
		if err != nil {
			return fmt.Errorf("login as %s: %w", user, err)
		}
		if !l.Needs2FA {
			return nil // not a peer account there (an older server): nothing to sign
		}
		if err := c.PeerAuth(ctx, w.r.id.Key); err != nil {
			return fmt.Errorf("pauth as %s: %w", user, err)
		}
		return nil
	}()
	if err != nil {
		c.Close()
		refused := errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrPerm)
		if refused {
			err = fmt.Errorf("refused: the peer refused our sign-in: %w", err)
			w.warnRefused(log, err.Error())
		}
		w.fail(err, refused)
		return err
	}
	// The peer ends sessions idle longer than its timeout (`tout`).
	w.keepAlive = keepAlive
	if secs, err := c.Timeout(ctx, 0); err == nil && secs > 0 {
		w.keepAlive = min(keepAlive, max(time.Duration(secs)*time.Second/2, time.Second))
	}
	w.c, w.backoff, w.refused = c, 0, ""
	w.r.mu.Lock()
	for k, st := range w.r.status {
		if k.row == w.row {
			st.Refused = false
		}
	}
	w.r.mu.Unlock()
	log.Debug("replicate: session up", "server_id", c.ServerID())
	return nil
}

func (w *worker) warnRefused(log *slog.Logger, why string) {
	if w.refused != why {
		w.refused = why
		log.Warn("replicate: refused", "why", why)
	}
}

// fail sets the backoff after a failed dial or a lost session (the maximum
// when the peer refused us) and writes the error into every status row of
// the entry (one row per chain of the entry when there is none yet).
func (w *worker) fail(err error, refused bool) {
	w.backoff = min(max(2*w.backoff, backoffFirst), backoffMax)
	if refused {
		w.backoff = backoffMax
	}
	w.next = time.Now().Add(w.backoff)
	w.behind = true
	text := errText(err)
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if w.r.workers[w.row] != w {
		return
	}
	seen := false
	for k, st := range w.r.status {
		if k.row == w.row {
			st.Refused, seen = refused, true
			st.setError(text, w.r.now())
		}
	}
	if !seen {
		for _, c := range w.p.Chains {
			st := w.r.statusLocked(w, w.placeholder(c))
			st.Refused = refused
			st.setError(text, w.r.now())
		}
	}
}

// maxStatusError bounds ChainStatus.LastError.
const maxStatusError = 300

// errText is err's text for the status, at most maxStatusError bytes.
func errText(err error) string {
	s := err.Error()
	if len(s) <= maxStatusError {
		return s
	}
	n := maxStatusError
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// placeholder is the full origin a chain of the entry has before the
// session says more: ours for a mirror, the pinned key's server-id for a
// home.
func (w *worker) placeholder(chain string) string {
	if w.p.Role == RoleHome {
		return verify.OriginLine(verify.ServerIDFromKey(w.p.Key), chain)
	}
	return verify.OriginLine(w.r.id.ServerID, chain)
}

// transport reports whether err broke the session (anything but an ERR
// answer).
func transport(err error) bool {
	var e *wire.Error
	return err != nil && !errors.As(err, &e)
}

// pushTarget is one chain held here that a mirror entry covers.
type pushTarget struct {
	info   ledger.ChainInfo
	origin string // the home's server-id
	ref    string // how the ledger names it
}

func (w *worker) targets() []pushTarget {
	var out []pushTarget
	for _, c := range w.r.l.Chains() {
		if !slices.Contains(w.p.Chains, c.Name) || c.Origin == w.c.ServerID() {
			continue // not named, or the mirror's own chain
		}
		out = append(out, pushTarget{info: c, origin: c.Origin, ref: c.Ref()})
	}
	return out
}

// pushAll pushes every chain of the entry the mirror lacks (those in
// backoff only when forced). It reports whether it asked the mirror
// anything, and returns an error only when the session broke.
func (w *worker) pushAll(ctx context.Context, log *slog.Logger, forced bool) (bool, error) {
	now := time.Now()
	exchanged := false
	for _, t := range w.targets() {
		full := verify.OriginLine(t.origin, t.info.Name)
		b := w.chainWait[full]
		if !forced && now.Before(b.next) {
			continue // refused lately: wait (the timer comes back)
		}
		exchanged = true
		err := w.push(ctx, log, t)
		if err == nil {
			delete(w.chainWait, full)
			continue
		}
		w.r.update(w, full, func(st *ChainStatus) { st.setError(errText(err), w.r.now()) })
		if transport(err) {
			return true, err
		}
		b.backoff = min(max(2*b.backoff, backoffFirst), backoffMax)
		b.next = now.Add(b.backoff)
		w.chainWait[full] = b
		if errors.Is(err, wire.ErrConflict) {
			log.Error("replicate: fork: the mirror holds another history of the chain", "chain", full, "retry_in", b.backoff, "err", err)
			if w.r.onFork != nil {
				w.r.onFork(full, w.p.Peer, err.Error())
			}
		} else {
			log.Warn("replicate: push", "chain", full, "retry_in", b.backoff, "err", err)
		}
	}
	return exchanged, nil
}

// wakeAt is when the first chain in backoff may be pushed again (zero
// when none waits).
func (w *worker) wakeAt() time.Time {
	var at time.Time
	for _, b := range w.chainWait {
		if at.IsZero() || b.next.Before(at) {
			at = b.next
		}
	}
	return at
}

// push brings the mirror's copy of one chain up to our size.
func (w *worker) push(ctx context.Context, log *slog.Logger, t pushTarget) error {
	full := verify.OriginLine(t.origin, t.info.Name)
	head := t.info.Size
	hops := w.r.Hops(t.origin, t.info.Name)
	size, _, _, err := w.c.IHave(ctx, t.origin, t.info.Name, head)
	switch {
	case errors.Is(err, wire.ErrNotFound):
		size = 0
	case err != nil:
		return fmt.Errorf("ihave: %w", err)
	}
	w.pushStatus(ctx, t, full, size, head, hops+1, false)
	desc := &client.ChainDesc{Hops: hops, Public: t.info.Public, PoWBits: uint64(max(t.info.PoWBits, 0)), Schema: t.info.Schema, Authority: t.info.Authority}
	for size < head {
		proof, note, end, err := consistency(size, batchEnd(size, head), head, func(newSize uint64) ([][]byte, []byte, error) {
			return w.r.l.Consistency(ctx, t.ref, size, newSize)
		})
		if err != nil {
			return fmt.Errorf("consistency proof from %d here: %w", size, err)
		}
		entries, err := w.entries(ctx, t.ref, size, end)
		if err != nil {
			return err
		}
		newSize, line, err := w.c.Push(ctx, client.PushBatch{
			Origin: t.origin, Chain: t.info.Name, From: size, Entries: entries,
			Checkpoint: string(note), Proof: proof, Hops: hops, Desc: desc,
		})
		if err != nil {
			return fmt.Errorf("rpush [%d, %d): %w", size, end, err)
		}
		if t.origin == w.r.id.ServerID && newSize == end {
			w.keepCosignature(ctx, log, t, note, end, line)
		}
		if newSize <= size {
			return fmt.Errorf("rpush [%d, %d): the mirror holds %d afterwards", size, end, newSize)
		}
		size = newSize
		w.pushStatus(ctx, t, full, size, head, hops+1, true)
	}
	w.pushStatus(ctx, t, full, size, head, hops+1, true)
	return nil
}

func (w *worker) pushStatus(ctx context.Context, t pushTarget, full string, size, head, hops uint64, ok bool) {
	var age float64
	if size < head {
		age = w.r.entryAge(ctx, t.ref, size)
	}
	forks := uint64(0)
	if t.origin != w.r.id.ServerID {
		forks = w.r.forks(ctx, t.ref)
	}
	w.r.update(w, full, func(st *ChainStatus) {
		st.Size, st.Want, st.Hops, st.LagEntries, st.LagSeconds, st.Forks = size, head, hops, head-min(size, head), age, forks
		if ok {
			st.LastError, st.LastOK, st.Refused = "", w.r.now(), false
		}
	})
}

// keepCosignature stores the mirror's cosignature line of our checkpoint
// when it verifies with the pinned key under the mirror's witness name.
func (w *worker) keepCosignature(ctx context.Context, log *slog.Logger, t pushTarget, note []byte, size uint64, line string) {
	text, _, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok || line == "" {
		return
	}
	name := verify.WitnessName(w.c.ServerID())
	if _, err := verify.VerifyCosignatureLine(string(text)+"\n", line, name, ed25519.PublicKey(w.p.Key)); err != nil {
		log.Warn("replicate: the mirror's cosignature does not verify with the pinned key; not kept", "chain", t.info.Name, "size", size, "err", err)
		return
	}
	if err := w.r.l.AddCosignature(ctx, t.info.Name, size, line); err != nil {
		log.Warn("replicate: keep the mirror's cosignature", "chain", t.info.Name, "size", size, "err", err)
	}
}

// entries reads [from, to) of a chain held here.
func (w *worker) entries(ctx context.Context, ref string, from, to uint64) ([][]byte, error) {
	var out [][]byte
	for next := from; next < to; {
		got, err := w.r.l.Entries(ctx, ref, next, to, ledger.MaxMirrorEntries, ledger.MaxMirrorBytes)
		if err != nil {
			return nil, fmt.Errorf("read entries [%d, %d): %w", next, to, err)
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("read entries [%d, %d): none", next, to)
		}
		out = append(out, got...)
		next += uint64(len(got))
	}
	return out, nil
}

// pullAll pulls every chain of the entry the home (or the mirror we pull
// from) holds more of. It returns an error only when the session broke.
func (w *worker) pullAll(ctx context.Context, log *slog.Logger) error {
	w.lastPull = time.Now()
	w.behind = false
	list, err := w.c.Chains(ctx)
	if err != nil {
		w.behind = true
		if transport(err) {
			return err
		}
		log.Warn("replicate: list the peer's chains", "err", err)
		w.failChains(err)
		return nil
	}
	for _, ci := range list {
		origin := ci.Origin
		if origin == "" {
			origin = w.c.ServerID()
		}
		if !slices.Contains(w.p.Chains, ci.Name) || origin == w.r.id.ServerID {
			continue
		}
		if err := w.pullChain(ctx, log, origin, ci); err != nil {
			w.behind = true
			full := verify.OriginLine(origin, ci.Name)
			w.r.update(w, full, func(st *ChainStatus) { st.setError(errText(err), w.r.now()) })
			if transport(err) {
				return err
			}
			log.Warn("replicate: pull", "chain", full, "err", err)
		}
	}
	return nil
}

func (w *worker) failChains(err error) {
	for _, c := range w.p.Chains {
		w.r.update(w, verify.OriginLine(w.c.ServerID(), c), func(st *ChainStatus) { st.setError(errText(err), w.r.now()) })
	}
}

// pullChain brings our copy of one chain up to the peer's size.
func (w *worker) pullChain(ctx context.Context, log *slog.Logger, origin string, ci client.ChainInfo) error {
	full := verify.OriginLine(origin, ci.Name)
	held := uint64(0)
	if c, err := w.r.l.Chain(full); err == nil {
		held = c.Size
	}
	theirs, theirNote, desc, err := w.c.IHave(ctx, origin, ci.Name, held)
	if err != nil {
		return fmt.Errorf("ihave: %w", err)
	}
	keys, err := w.homeKeys(ctx, origin)
	if err != nil {
		return err
	}
	hops := desc.Hops + 1
	w.r.mu.Lock()
	w.r.hops[store.ChainKey{Origin: origin, Name: ci.Name}] = hops
	w.r.mu.Unlock()
	meta := store.ChainMeta{Origin: origin, Name: ci.Name, Public: desc.Public, PoWBits: int(min(desc.PoWBits, 64)), Schema: desc.Schema, Authority: desc.Authority}
	w.pullStatus(ctx, full, held, theirs, hops, false)
	if theirs <= held && held > 0 && theirs > 0 {
		// The peer holds no more than we do: its checkpoint must still be
		// one of the history we hold. A home that went back to an older
		// copy and wrote again shows here as a fork (Mirror keeps both).
		if _, err := w.r.l.Mirror(ctx, ledger.MirrorBatch{Meta: meta, From: theirs, Checkpoint: []byte(theirNote), HomeKeys: keys}); err != nil {
			if errors.Is(err, wire.ErrConflict) {
				log.Error("replicate: fork: the peer's checkpoint is inconsistent with what we hold", "chain", full, "held", held, "theirs", theirs, "err", err)
				if w.r.onFork != nil {
					w.r.onFork(full, w.p.Peer, err.Error())
				}
			}
			w.pullStatus(ctx, full, held, theirs, hops, false)
			return fmt.Errorf("check the peer's checkpoint of size %d: %w", theirs, err)
		}
	}
	for held < theirs {
		proof, note, end, err := consistency(held, batchEnd(held, theirs), theirs, func(newSize uint64) ([][]byte, []byte, error) {
			p, n, err := w.c.Consistency(ctx, full, held, newSize)
			return p, []byte(n), err
		})
		if err != nil {
			return fmt.Errorf("rcons from %d: %w", held, err)
		}
		var entries [][]byte
		for from := held; from < end; {
			got, err := w.c.Entries(ctx, full, from, end)
			if err != nil {
				return fmt.Errorf("rentries [%d, %d): %w", from, end, err)
			}
			if len(got) == 0 {
				return fmt.Errorf("rentries [%d, %d): no entry in the answer", from, end)
			}
			entries = append(entries, got...)
			from += uint64(len(got))
		}
		if uint64(len(entries)) > end-held {
			entries = entries[:end-held]
		}
		size, err := w.r.l.Mirror(ctx, ledger.MirrorBatch{
			Meta: meta, From: held, Entries: entries, Checkpoint: note, Proof: proof, HomeKeys: keys,
		})
		if err != nil {
			if errors.Is(err, wire.ErrConflict) {
				log.Error("replicate: fork: the peer's batch is inconsistent with what we hold", "chain", full, "err", err)
				if w.r.onFork != nil {
					w.r.onFork(full, w.p.Peer, err.Error())
				}
				w.pullStatus(ctx, full, held, theirs, hops, false)
			}
			return fmt.Errorf("mirror [%d, %d): %w", held, end, err)
		}
		if size <= held {
			return fmt.Errorf("mirror [%d, %d): still at %d", held, end, size)
		}
		held = size
		w.pullStatus(ctx, full, held, theirs, hops, true)
	}
	w.pullStatus(ctx, full, held, theirs, hops, true)
	return nil
}

// homeKeys are the keys the checkpoints of origin may be signed with: the
// keys pinned for that home in the peer table and those its verified
// rotations lead to (docs/protocol.md §11 "Mirroring").
func (w *worker) homeKeys(ctx context.Context, origin string) ([]ed25519.PublicKey, error) {
	pinned, err := w.r.peers.HomeKeys(ctx, origin)
	if err != nil {
		return nil, err
	}
	if len(pinned) == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "no pinned key for home %s: add it as a home peer (or a log)", origin)
	}
	keys, err := FollowRotations(ctx, w.r.l, origin, pinned)
	if err != nil {
		return nil, fmt.Errorf("home keys of %s: %w", origin, err)
	}
	return keys, nil
}

func (w *worker) pullStatus(ctx context.Context, full string, held, theirs, hops uint64, ok bool) {
	forks := w.r.forks(ctx, full)
	now := w.r.now()
	w.r.update(w, full, func(st *ChainStatus) {
		lag := theirs - min(held, theirs)
		// We lack the entries, so their age is how long we have known
		// that we lack them.
		switch {
		case lag == 0:
			st.LagSeconds = 0
			st.behindSince = time.Time{}
		case st.behindSince.IsZero():
			st.behindSince = now
		default:
			st.LagSeconds = now.Sub(st.behindSince).Seconds()
		}
		st.Size, st.Want, st.Hops, st.LagEntries, st.Forks = held, theirs, hops, lag, forks
		if ok {
			st.LastError, st.LastOK, st.Refused = "", now, false
		}
	})
}

// consistency gets the proof from old to the checkpoint of end, asking for
// the newest checkpoint when end is newest (a newer one may have been
// signed since: the batch then ends at its size). It returns the proof,
// the checkpoint note and the size it is of.
func consistency(old, end, newest uint64, get func(newSize uint64) ([][]byte, []byte, error)) ([][]byte, []byte, uint64, error) {
	ask := end
	if end == newest {
		ask = 0
	}
	proof, note, err := get(ask)
	if err != nil {
		return nil, nil, 0, err
	}
	size, err := noteSize(note)
	if err != nil {
		return nil, nil, 0, err
	}
	if size <= old || (ask != 0 && size != end) {
		return nil, nil, 0, fmt.Errorf("a checkpoint of size %d, not of %d", size, end)
	}
	return proof, note, size, nil
}

// noteSize is the tree size of a signed checkpoint note.
func noteSize(note []byte) (uint64, error) {
	text, _, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok {
		return 0, errors.New("checkpoint note without signatures")
	}
	c, err := verify.ParseLogCheckpoint(string(text) + "\n")
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	return c.Size, nil
}

// batchEnd is where a batch from held ends when the other end holds
// newest: the next batch point or newest (docs/protocol.md §11 "Batch
// points").
func batchEnd(held, newest uint64) uint64 { return ledger.BatchEnd(held, newest) }
