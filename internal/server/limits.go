package server

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter enforces the connection caps and the per-IP rate of new connections
// and handshakes. The per-IP parts can be switched off (`throt off`); the
// global cap cannot.
type limiter struct {
	maxTotal, maxIP int
	perSecond       float64
	now             func() time.Time

	mu     sync.Mutex
	total  int
	perIP  map[netip.Prefix]*ipState
	lastGC time.Time
}

type ipState struct {
	conns   int
	limiter *rate.Limiter
	seen    time.Time
}

func newLimiter(maxTotal, maxIP int, perSecond float64, now func() time.Time) *limiter {
	return &limiter{maxTotal: maxTotal, maxIP: maxIP, perSecond: perSecond, now: now, perIP: map[netip.Prefix]*ipState{}}
}

// ipKey maps an address to the unit limits count in: the address itself for
// IPv4, its /64 for IPv6 (one host usually owns a whole /64).
func ipKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

func (l *limiter) state(k netip.Prefix, now time.Time) *ipState {
	st := l.perIP[k]
	if st == nil {
		burst := int(l.perSecond)
		if burst < 1 {
			burst = 1
		}
		st = &ipState{limiter: rate.NewLimiter(rate.Limit(l.perSecond), burst)}
		l.perIP[k] = st
	}
	st.seen = now
	return st
}

// admit reserves a connection slot for addr. throttle selects whether the
// per-IP cap and rate apply. It returns a release func, or a reason to refuse.
func (l *limiter) admit(addr netip.Addr, throttle bool) (release func(), reason string) {
	now := l.now()
	k := ipKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gc(now)
	if l.total >= l.maxTotal {
		return nil, "server connection limit reached"
	}
	st := l.state(k, now)
	if throttle {
		if st.conns >= l.maxIP {
			return nil, "too many connections from your address"
		}
		if !st.limiter.AllowN(now, 1) {
			return nil, "too many new connections from your address; slow down"
		}
	}
	l.total++
	st.conns++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			st.conns--
			l.mu.Unlock()
		})
	}, ""
}

// allowHandshake spends one token of addr's rate for a handshake.
func (l *limiter) allowHandshake(addr netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(ipKey(addr), now).limiter.AllowN(now, 1)
}

// gc forgets addresses with no connection that have been quiet for a minute,
// so the table stays bounded under a scan from many addresses.
func (l *limiter) gc(now time.Time) {
	if now.Sub(l.lastGC) < time.Minute {
		return
	}
	l.lastGC = now
	for k, st := range l.perIP {
		if st.conns == 0 && now.Sub(st.seen) > time.Minute {
			delete(l.perIP, k)
		}
	}
}
