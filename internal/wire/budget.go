package wire

import "sync/atomic"

// Budget is an allowance of bytes shared by many connections: the server
// charges to it what partly received messages and replies being sent hold,
// so that thousands of connections cannot together exhaust memory however
// slowly each sends (docs/protocol.md, "Limits before login"). Take never
// waits: a spent budget is refused at once, and the caller answers ERR
// limit. A Budget is safe for concurrent use.
type Budget struct {
	free   atomic.Int64
	parent *Budget // a share also draws on its parent
}

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget {
	b := &Budget{}
	b.free.Store(n)
	return b
}

// Share returns a budget of at most n bytes that also draws on b: what a
// share takes is taken from b too, so a class of connections (those not
// logged in) can never spend more than its share of b.
func (b *Budget) Share(n int64) *Budget {
	s := NewBudget(n)
	s.parent = b
	return s
}

// Take takes n bytes from b (and its parents) and reports whether they were
// free; on false nothing is taken. A nil Budget always grants.
func (b *Budget) Take(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		f := b.free.Load()
		if f < n {
			return false
		}
		if b.free.CompareAndSwap(f, f-n) {
			break
		}
	}
	if !b.parent.Take(n) {
		b.free.Add(n)
		return false
	}
	return true
}

// Give returns n bytes that Take granted.
func (b *Budget) Give(n int64) {
	for ; b != nil && n > 0; b = b.parent {
		b.free.Add(n)
	}
}

// Free is the number of bytes b could grant now, ignoring its parents.
func (b *Budget) Free() int64 { return b.free.Load() }
