package auth

import (
	"errors"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// Attempt is one login step in flight (pass, twofa, the old password of
// chpass) from Backoff.Begin to exactly one of Fail, Passed, Succeed or
// Cancel. While it is in flight its address may begin no other step, and it
// already counts as a failure (DESIGN.md §3.2; docs/protocol.md, "Login
// concurrency and account changes").
type Attempt struct {
	b          *Backoff
	pair, addr string
	// Failure counts before Begin counted this attempt, to undo it exactly
	// when nothing else failed in between.
	pairPrev, addrPrev backoffSnapshot
	done               bool
}

type backoffSnapshot struct {
	failures int
	until    time.Time
}

// Begin starts a login step for account from ip. It refuses with the fixed
// ERR auth while a delay is in force for the (account, address) or the
// address, and while another step of the same address is in flight: without
// that, many guesses sent at once would all pass the check before the first
// of them failed. Otherwise it marks the address busy and counts the step as
// a failure before anything is checked, so that a guess costs its delay
// even while its hash is still being computed. A refusal counts nothing:
// nothing was checked.
func (b *Backoff) Begin(account, ip string) (*Attempt, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	addr := addressKey(ip)
	pair := pairKey(account, addr)
	if b.inflight[addr] || b.pairs.blocked(pair, now) || b.addrs.blocked(addr, now) {
		return nil, authFailed()
	}
	b.inflight[addr] = true
	a := &Attempt{b: b, pair: pair, addr: addr, pairPrev: b.pairs.snapshot(pair), addrPrev: b.addrs.snapshot(addr)}
	b.pairs.fail(pair, now)
	b.addrs.fail(addr, now)
	return a, nil
}

// InFlight reports how many addresses have a login step in flight.
func (b *Backoff) InFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inflight)
}

// Fail ends a step that failed: its failure stays counted.
func (a *Attempt) Fail() { a.end(false, false) }

// Passed ends a step that passed but did not complete the login (a password
// right while a second factor is owed): the failure Begin counted is taken
// back, and the (account, address) record is kept so that failed codes keep
// adding to it.
func (a *Attempt) Passed() { a.end(true, false) }

// Succeed ends the step that completed a login: the failure is taken back
// and the (account, address) record cleared (the address record stays, as
// with Backoff.Succeed).
func (a *Attempt) Succeed() { a.end(true, true) }

// Cancel ends a step that checked nothing (a full hashing queue, an internal
// error): the failure is taken back.
func (a *Attempt) Cancel() { a.end(true, false) }

// End ends the step according to err, the result of checking it: nil is
// Succeed, ERR auth is Fail, anything else is Cancel.
func (a *Attempt) End(err error) {
	switch {
	case err == nil:
		a.Succeed()
	case errors.Is(err, wire.ErrAuth):
		a.Fail()
	default:
		a.Cancel()
	}
}

func (a *Attempt) end(undo, clearPair bool) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.done {
		return
	}
	a.done = true
	delete(b.inflight, a.addr)
	if undo {
		b.pairs.undo(a.pair, a.pairPrev)
		b.addrs.undo(a.addr, a.addrPrev)
	}
	if clearPair {
		b.pairs.remove(a.pair)
	}
}

func (t *backoffTable) snapshot(key string) backoffSnapshot {
	if el, ok := t.keys[key]; ok {
		e := el.Value.(*backoffEntry)
		return backoffSnapshot{failures: e.failures, until: e.until}
	}
	return backoffSnapshot{}
}

// undo takes back one failure counted after prev was taken. When no other
// failure came in between, the entry returns to prev exactly.
func (t *backoffTable) undo(key string, prev backoffSnapshot) {
	el, ok := t.keys[key]
	if !ok {
		return // evicted meanwhile: nothing left to take back
	}
	e := el.Value.(*backoffEntry)
	if e.failures > 0 {
		e.failures--
	}
	switch {
	case e.failures == 0:
		t.remove(key)
	case e.failures == prev.failures:
		e.until = prev.until
	}
}
