package ledger

import (
	"maps"
	"sync"
)

// holdSet is the chains whose writes are held, with why (docs/operations.md
// "Restores and rollbacks"): a chain that must first be shown consistent
// with what its witnesses and mirrors hold. Reads are served; the committer
// refuses appends before it signs anything.
type holdSet struct {
	mu sync.Mutex
	m  map[string]string
}

// Hold refuses writes to chain (a chain homed here, by name) with ERR
// conflict saying reason, until Release. Holding a held chain replaces the
// reason.
func (l *Ledger) Hold(chain, reason string) {
	h := &l.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]string{}
	}
	h.m[chain] = reason
}

// Release lets chain take writes again; a chain not held is left alone.
func (l *Ledger) Release(chain string) {
	h := &l.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, chain)
}

// Holds returns the held chains and why each is held.
func (l *Ledger) Holds() map[string]string {
	h := &l.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	out := maps.Clone(h.m)
	if out == nil {
		out = map[string]string{}
	}
	return out
}

// held says why chain is held, or "" when it is not.
func (l *Ledger) held(chain string) string {
	h := &l.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[chain]
}
