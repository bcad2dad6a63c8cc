package secure

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vserv/vserv/internal/datadir"
)

// poolDir is the pool's directory inside the data directory.
const poolDir = datadir.PoolDir

// Pool is the server's set of session keys (§2.3). akey hands out a random
// live key; sess looks one up by kid. Keys are retired a little before their
// stated expiry (see retireMargin), replaced by Refresh, and their private
// files erased. All methods are safe for concurrent use; the handshake path
// (Pick, Lookup, Accept) only takes a read lock, and file work happens
// outside any lock the handshake path needs.
type Pool struct {
	dir      string
	id       *Identity
	size     int
	lifetime time.Duration
	now      func() time.Time

	maint sync.Mutex // serialises Refresh, AddKeys and RotateAll

	mu   sync.RWMutex
	keys map[string]*PoolKey
}

// OpenPool opens <dataroot>/pool with keys signed by id: it loads the valid
// keys, erases expired ones (and leftovers of interrupted writes), and makes
// new keys until there are size live ones. lifetime is how long a new key
// lives (the server uses 24 h; at most MaxKeyInfoAhead); now is the clock.
func OpenPool(dataroot string, id *Identity, size int, lifetime time.Duration, now func() time.Time) (*Pool, error) {
	if size < 1 {
		return nil, fmt.Errorf("pool size %d: must be at least 1", size)
	}
	if lifetime < time.Minute || lifetime > MaxKeyInfoAhead {
		return nil, fmt.Errorf("pool key lifetime %s: must be between 1m and %s", lifetime, MaxKeyInfoAhead)
	}
	if now == nil {
		now = time.Now
	}
	p := &Pool{
		dir:      filepath.Join(dataroot, poolDir),
		id:       id,
		size:     size,
		lifetime: lifetime,
		now:      now,
		keys:     make(map[string]*PoolKey),
	}
	if err := datadir.MakePrivateDir(p.dir); err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	if err := p.Refresh(); err != nil {
		return nil, err
	}
	return p, nil
}

// retireMargin is how long before its stated expiry a key stops being
// handed out and is replaced: a client whose clock runs a little fast would
// otherwise refuse a keyinfo the server still considers valid.
func (p *Pool) retireMargin() time.Duration { return p.lifetime / 24 }

// stale reports whether k must no longer be handed out: past its retirement
// point, or with an expiry further ahead than clients accept (the clock went
// back, or the lifetime was shortened).
func (p *Pool) stale(k *PoolKey, now time.Time) bool {
	return !now.Before(k.Expires().Add(-p.retireMargin())) || k.Expires().After(now.Add(MaxKeyInfoAhead))
}

// load reads every pool file. Keys that fail to parse make OpenPool fail:
// a damaged or exposed key file needs the operator's eyes.
func (p *Pool) load() error {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(p.dir, name)
		if strings.HasPrefix(name, ".") && strings.Contains(name, ".key.tmp-") {
			// An interrupted datadir.WriteFile: never renamed, so never used.
			if err := eraseFile(path); err != nil {
				return fmt.Errorf("pool: %w", err)
			}
			continue
		}
		kid, ok := strings.CutSuffix(name, ".key")
		if !ok {
			continue
		}
		b, err := readPrivateFile(path, poolKeyFileSize)
		if err != nil {
			return fmt.Errorf("pool: %w", err)
		}
		k, err := parsePoolKeyFile(p.id, b)
		if err != nil {
			return fmt.Errorf("pool: %s: %w", path, err)
		}
		if k.kid != kid {
			return fmt.Errorf("pool: %s holds key %s: the file was renamed or damaged", path, k.kid)
		}
		p.keys[kid] = k
	}
	return nil
}

// Pick returns a random live key for an akey answer, or nil if the pool has
// no live key (Refresh has not run or keeps failing; the server answers
// ERR internal).
func (p *Pool) Pick() *PoolKey {
	now := p.now()
	var buf [16]*PoolKey // no allocation for pools of usual sizes
	live := buf[:0]
	p.mu.RLock()
	for _, k := range p.keys {
		if !p.stale(k, now) {
			live = append(live, k)
		}
	}
	p.mu.RUnlock()
	if len(live) == 0 {
		return nil
	}
	// A uniform index: the modulo bias of a 64-bit draw is below 2^-50 for
	// any pool that fits in memory. crypto/rand.Read does not fail.
	var r [8]byte
	rand.Read(r[:])
	return live[binary.BigEndian.Uint64(r[:])%uint64(len(live))]
}

// Lookup returns the key kid if the pool holds it and it has not expired.
// A retired key stays usable until its expiry or until Refresh erases it, so
// that a client that got it from akey just before retirement can still use
// it.
func (p *Pool) Lookup(kid string) (*PoolKey, bool) {
	now := p.now()
	p.mu.RLock()
	k, ok := p.keys[kid]
	p.mu.RUnlock()
	if !ok || !now.Before(k.Expires()) {
		return nil, false
	}
	return k, true
}

// Len returns how many keys the pool holds, live or not.
func (p *Pool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.keys)
}

// KIDs returns the kids of the keys the pool holds, in no particular order.
func (p *Pool) KIDs() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	kids := make([]string, 0, len(p.keys))
	for kid := range p.keys {
		kids = append(kids, kid)
	}
	return kids
}

// Refresh erases stale keys and makes new ones until the pool holds size
// live keys. The server calls it from a ticker (every few minutes is
// plenty: keys retire lifetime/24 before they expire).
func (p *Pool) Refresh() error {
	p.maint.Lock()
	defer p.maint.Unlock()
	now := p.now()
	var stale []*PoolKey
	live := 0
	p.mu.RLock()
	for _, k := range p.keys {
		if p.stale(k, now) {
			stale = append(stale, k)
		} else {
			live++
		}
	}
	p.mu.RUnlock()
	// New keys first, so that the pool is never empty in between.
	if err := p.add(max(p.size-live, 0)); err != nil {
		return err
	}
	return p.remove(stale)
}

// AddKeys makes n more keys, beyond the pool's target size (vserv keygen).
func (p *Pool) AddKeys(n int) error {
	if n < 1 {
		return fmt.Errorf("add pool keys: n = %d, want at least 1", n)
	}
	p.maint.Lock()
	defer p.maint.Unlock()
	return p.add(n)
}

// RotateAll replaces every key with a new one (at least size of them) and
// erases the old ones, e.g. after a suspected leak of the data directory.
func (p *Pool) RotateAll() error {
	p.maint.Lock()
	defer p.maint.Unlock()
	p.mu.RLock()
	old := make([]*PoolKey, 0, len(p.keys))
	for _, k := range p.keys {
		old = append(old, k)
	}
	p.mu.RUnlock()
	if err := p.add(max(len(old), p.size)); err != nil {
		return err
	}
	return p.remove(old)
}

// add makes, stores and publishes n new keys. Called with maint held.
func (p *Pool) add(n int) error {
	if n == 0 {
		return nil
	}
	exp := uint64(p.now().Add(p.lifetime).Unix())
	for range n {
		k, err := newPoolKey(p.id, exp)
		if err != nil {
			return err
		}
		if err := datadir.WriteFile(p.path(k.kid), k.fileBytes()); err != nil {
			return fmt.Errorf("pool: %w", err)
		}
		p.mu.Lock()
		p.keys[k.kid] = k
		p.mu.Unlock()
	}
	return nil
}

// remove unpublishes keys and erases their files. Called with maint held.
func (p *Pool) remove(keys []*PoolKey) error {
	if len(keys) == 0 {
		return nil
	}
	p.mu.Lock()
	for _, k := range keys {
		delete(p.keys, k.kid)
	}
	p.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if err := eraseFile(p.path(k.kid)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	return nil
}

func (p *Pool) path(kid string) string { return filepath.Join(p.dir, kid+".key") }
