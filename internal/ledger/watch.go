package ledger

import (
	"maps"
	"sync"

	"github.com/vserv/vserv/internal/store"
)

// Watcher is one consumer's view of chain changes (Ledger.Watch): it is
// signalled after every commit that extends a chain homed here, after a
// chain is created here (size 0) and after every batch Mirror stores that
// extends or creates a mirrored chain, and Take says which chains changed. Signals
// never block the writer and coalesce: many changes before a Take are one
// entry per chain and one signal. Any number of watchers may be open.
type Watcher struct {
	l       *Ledger
	mu      sync.Mutex
	changed map[store.ChainKey]uint64
	ch      chan struct{} // capacity 1: "changed is not empty"
}

// watchers is the ledger's set of open watchers.
type watchers struct {
	mu  sync.Mutex
	set map[*Watcher]struct{}
}

// Watch opens a Watcher; Close it when done.
func (l *Ledger) Watch() *Watcher {
	w := &Watcher{l: l, changed: map[store.ChainKey]uint64{}, ch: make(chan struct{}, 1)}
	l.watch.mu.Lock()
	if l.watch.set == nil {
		l.watch.set = map[*Watcher]struct{}{}
	}
	l.watch.set[w] = struct{}{}
	l.watch.mu.Unlock()
	return w
}

// C receives when chains changed since the last Take.
func (w *Watcher) C() <-chan struct{} { return w.ch }

// Take returns the chains changed since the last Take, each with its new
// size, and clears them; an empty map when none did.
func (w *Watcher) Take() map[store.ChainKey]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := maps.Clone(w.changed)
	clear(w.changed)
	return out
}

// Close stops the watcher's notes. C is not closed: a receiver selects on
// its own context too.
func (w *Watcher) Close() {
	w.l.watch.mu.Lock()
	delete(w.l.watch.set, w)
	w.l.watch.mu.Unlock()
}

func (w *Watcher) note(k store.ChainKey, size uint64) {
	w.mu.Lock()
	w.changed[k] = size
	w.mu.Unlock()
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// notifyWatchers tells every open watcher that chain k now has size
// entries. It never blocks on a consumer.
func (l *Ledger) notifyWatchers(k store.ChainKey, size uint64) {
	l.watch.mu.Lock()
	defer l.watch.mu.Unlock()
	for w := range l.watch.set {
		w.note(k, size)
	}
}
