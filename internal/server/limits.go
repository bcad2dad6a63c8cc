package server

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/vserv/vserv/internal/wire"
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

// Limits on what a connection may make the server hold in memory
// (docs/protocol.md, "Limits before login"). The largest legitimate request
// before the session (`sess`, about 1.2 KB) and in a session without a login
// (`rget`/`rhave` of 1,000 ids, about 38 KiB) fit these with room to spare.
const (
	maxClearMsg  = 4 << 10  // a request before the encrypted session
	maxAnonMsg   = 64 << 10 // a request in a session without a login (state verified)
	maxAnonReply = 4 << 20  // the entries of one read's reply, without a login
	// anonShare is the part of each server-wide budget that connections
	// without a login may use together, so that they can never crowd
	// out the logged-in ones.
	anonShare = 4 // a quarter

	DefaultReadBudget  = 256 << 20 // bytes held in partly received requests, server-wide
	DefaultReplyBudget = 256 << 20 // bytes held in big replies being built or sent, server-wide
)

// budgets are the server-wide byte budgets and the shares of them that
// connections without a login draw on.
type budgets struct {
	read, anonRead   *wire.Budget
	reply, anonReply *wire.Budget
}

func newBudgets(read, reply int64) budgets {
	b := budgets{read: wire.NewBudget(read), reply: wire.NewBudget(reply)}
	b.anonRead = b.read.Share(read / anonShare)
	b.anonReply = b.reply.Share(reply / anonShare)
	return b
}

// readLimit is the size limit and the budget of this connection's next
// request: small until the session, larger but bounded until a login, the
// server's --max-msg after it.
func (c *conn) readLimit() (int, *wire.Budget) {
	switch {
	case c.session == nil:
		return maxClearMsg, c.srv.budgets.anonRead
	case c.state != stateVerified:
		return maxAnonMsg, c.srv.budgets.anonRead
	}
	return c.srv.cfg.MaxMsg, c.srv.budgets.read
}

// bigReply is the size from which a reply is charged to the reply budget
// while it is sent: smaller ones are too small to matter.
const bigReply = 64 << 10

// replyLimit is the largest reply this connection may receive, and the
// reply budget it draws on.
func (c *conn) replyLimit() (limit int, budget *wire.Budget, who string) {
	if c.state != stateVerified {
		return maxAnonReply, c.srv.budgets.anonReply, " without a login"
	}
	return wire.DefaultMaxMsg, c.srv.budgets.reply, ""
}

// holdReply refuses (ERR limit) an encoded reply of size bytes that is over
// this connection's reply limit, or that the reply budget cannot hold now;
// a big one is charged to the budget until release is called.
func (c *conn) holdReply(cmd string, size int) (release func(), err error) {
	limit, budget, who := c.replyLimit()
	if size > limit {
		return nil, wire.Errorf(wire.CodeLimit, "%s: the reply would be %d bytes, over the %d one reply may hold%s; ask for less", cmd, size, limit, who)
	}
	if size < bigReply {
		return nil, nil
	}
	if !budget.Take(int64(size)) {
		return nil, wire.Errorf(wire.CodeLimit, "%s: the server is busy sending other replies; try again shortly, or ask for less", cmd)
	}
	return func() { budget.Give(int64(size)) }, nil
}

// reserveReply returns the reserve function a batched read passes to the
// ledger: it refuses (ERR limit) entries that would take the reply over what
// this connection may receive in one reply, or that the server-wide reply
// budget cannot hold now; otherwise it takes them from the budget until
// the reply has been sent (*release is then set to give them back). n is
// the number of items of the reply.
func (c *conn) reserveReply(cmd string, n int, release *func()) func(total int) error {
	limit, budget, who := c.replyLimit()
	return func(total int) error {
		// Each item adds at most a 9-byte head, and ["OK", [...]] 16 bytes.
		size := total + 9*n + 16
		if size > limit {
			return wire.Errorf(wire.CodeLimit, "%s: the reply would hold %d bytes, over the %d one reply may hold%s; ask for fewer entries", cmd, size, limit, who)
		}
		// The entries and the encoded reply are both in memory until it is sent.
		held := int64(2 * size)
		if !budget.Take(held) {
			return wire.Errorf(wire.CodeLimit, "%s: the server is busy sending other replies; try again shortly, or ask for fewer entries", cmd)
		}
		*release = func() { budget.Give(held) }
		return nil
	}
}
