package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// backoffRule is one exponential backoff: the first free failures cost
// nothing (typos), then each further failure doubles the wait from base, up
// to max. A key that has not failed for forget starts again from zero.
type backoffRule struct {
	free      int
	base, max time.Duration
	forget    time.Duration
}

// The two rules of DESIGN.md §3.2. The per-(account, address) rule slows a
// guesser of one account to one try per 5 s after a dozen tries. The
// per-address rule catches one address trying many accounts; its higher
// threshold leaves room for a shared NAT's honest typos, and its cap bounds
// how long it can keep a legitimate user behind the same address waiting.
var (
	pairRule = backoffRule{free: 3, base: 100 * time.Millisecond, max: 5 * time.Second, forget: 15 * time.Minute}
	addrRule = backoffRule{free: 20, base: 100 * time.Millisecond, max: 30 * time.Second, forget: time.Hour}
)

// delay is the wait after the n-th consecutive failure.
func (r backoffRule) delay(n int) time.Duration {
	if n <= r.free {
		return 0
	}
	shift := n - r.free - 1
	if shift >= 32 || r.base<<shift >= r.max {
		return r.max
	}
	return r.base << shift
}

// DefaultBackoffEntries bounds each of the Backoff's two tables.
const DefaultBackoffEntries = 1 << 16

// Backoff slows down password and code guessing, in memory (a restart
// forgets it; the second-factor lock in the database does not). Keys are
// (account, address) and address alone, where an IPv6 address counts as its
// /64, the block one subscriber usually holds. Failing for one account
// never delays another account from another address, and the per-address
// delay never exceeds 30 s. Each table keeps at most DefaultBackoffEntries
// keys, dropping the least recently failed. Safe for concurrent use.
type Backoff struct {
	mu    sync.Mutex
	now   func() time.Time
	pairs *backoffTable
	addrs *backoffTable
	// inflight holds the addresses with a login step in flight (Begin); it
	// is bounded by the number of connections.
	inflight map[string]bool
}

// NewBackoff returns an empty Backoff on the given clock (nil: time.Now).
func NewBackoff(now func() time.Time) *Backoff {
	if now == nil {
		now = time.Now
	}
	return &Backoff{
		now:      now,
		pairs:    newBackoffTable(pairRule, DefaultBackoffEntries),
		addrs:    newBackoffTable(addrRule, DefaultBackoffEntries),
		inflight: map[string]bool{},
	}
}

// Check returns the fixed ERR auth while a delay is in force for this
// account from this address or for the address; the server calls it before
// checking a password or code, so a guess made too early is refused unseen.
func (b *Backoff) Check(account, ip string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	addr := addressKey(ip)
	if b.pairs.blocked(pairKey(account, addr), now) || b.addrs.blocked(addr, now) {
		return authFailed()
	}
	return nil
}

// Fail records a failed login step (pass, twofa, pauth, enrollment code).
func (b *Backoff) Fail(account, ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	addr := addressKey(ip)
	b.pairs.fail(pairKey(account, addr), now)
	b.addrs.fail(addr, now)
}

// Succeed clears the (account, address) record. The address record is kept:
// otherwise a guesser could reset it by logging in to an account of their
// own between guesses; it fades after an hour without failures.
func (b *Backoff) Succeed(account, ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pairs.remove(pairKey(account, addressKey(ip)))
}

func pairKey(account, addr string) string { return HomeName(account) + "\x00" + addr }

// addressKey normalises an address: IPv4-mapped IPv6 as IPv4, IPv6 as its
// /64, zones dropped. "host:port" forms are accepted; anything unparsable is
// used as given.
func addressKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		ap, err := netip.ParseAddrPort(ip)
		if err != nil {
			return ip
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

// backoffTable is one rule's state: an LRU map from key to failures.
type backoffTable struct {
	rule  backoffRule
	limit int
	keys  map[string]*list.Element
	order *list.List // of *backoffEntry, most recently failed first
}

type backoffEntry struct {
	key      string
	failures int
	last     time.Time // time of the last failure
	until    time.Time // no attempt before this
}

func newBackoffTable(rule backoffRule, limit int) *backoffTable {
	return &backoffTable{rule: rule, limit: limit, keys: map[string]*list.Element{}, order: list.New()}
}

func (t *backoffTable) blocked(key string, now time.Time) bool {
	el, ok := t.keys[key]
	return ok && now.Before(el.Value.(*backoffEntry).until)
}

func (t *backoffTable) fail(key string, now time.Time) {
	el, ok := t.keys[key]
	if !ok {
		el = t.order.PushFront(&backoffEntry{key: key})
		t.keys[key] = el
		if t.order.Len() > t.limit {
			t.remove(t.order.Back().Value.(*backoffEntry).key)
		}
	}
	t.order.MoveToFront(el)
	e := el.Value.(*backoffEntry)
	if now.Sub(e.last) > t.rule.forget {
		e.failures = 0
	}
	e.failures++
	e.last = now
	e.until = now.Add(t.rule.delay(e.failures))
}

func (t *backoffTable) remove(key string) {
	if el, ok := t.keys[key]; ok {
		t.order.Remove(el)
		delete(t.keys, key)
	}
}

func (t *backoffTable) len() int { return t.order.Len() }
