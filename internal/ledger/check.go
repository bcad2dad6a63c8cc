package ledger

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Fault is one thing wrong in a chain. What starts with the check that found
// it (sum, link, pow, sig, tree) and a colon.
type Fault struct {
	Chain string
	Seq   uint64 // the entry, or for a checkpoint fault the checkpoint's size
	What  string
}

func (f Fault) String() string { return fmt.Sprintf("%s seq %d: %s", f.Chain, f.Seq, f.What) }

// Checks `rcheck` knows.
var checkNames = []string{"sum", "link", "pow", "sig", "tree"}

// checkChunk is how many entries one read transaction covers: a long bbolt
// read transaction would stop the committer from growing the file.
const checkChunk = 20000

// checker walks a chain in order and recomputes everything that can be
// recomputed: entry validity and leaf hashes (sum), the hash chain and seq
// numbering (link), proofs of work (pow), record signatures (sig), and the
// Merkle tree against stored nodes and every stored checkpoint (tree).
type checker struct {
	store    store.Store
	meta     store.ChainMeta
	serverID string
	origin   string
	ring     *keyring
	what     map[string]bool
	faults   []Fault

	next     uint64 // key expected next
	prev     [32]byte
	lastTime uint64
	rng      *compact.Range
	cps      []store.StoredCheckpoint
	cpAt     int
}

func newChecker(s store.Store, meta store.ChainMeta, serverID string, ring *keyring, what ...string) *checker {
	c := &checker{store: s, meta: meta, serverID: serverID, origin: verify.OriginLine(serverID, meta.Name),
		ring: ring, what: map[string]bool{}, rng: rangeFactory.NewEmptyRange(0)}
	for _, w := range what {
		c.what[w] = true
	}
	return c
}

func (c *checker) fault(seq uint64, format string, args ...any) {
	c.faults = append(c.faults, Fault{Chain: c.meta.Name, Seq: seq, What: fmt.Sprintf(format, args...)})
}

// run checks the whole chain; progress, if not nil, is called after each
// chunk with the entries done and the chain's size.
func (c *checker) run(ctx context.Context, progress func(done, total uint64)) (uint64, error) {
	var total uint64
	err := c.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		if total, err = tx.Size(c.meta.Key()); err != nil {
			return err
		}
		return tx.Checkpoints(c.meta.Key(), func(cp store.StoredCheckpoint) error {
			cp.Note = append([]byte(nil), cp.Note...)
			c.cps = append(c.cps, cp)
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	c.checkpointsAt(0)
	var checked uint64
	for {
		if err := ctx.Err(); err != nil {
			return checked, err
		}
		n := 0
		err := c.store.View(ctx, func(tx store.ReadTx) error {
			return tx.Entries(c.meta.Key(), c.next, func(key uint64, b []byte) (bool, error) {
				if n == checkChunk {
					return false, nil
				}
				n++
				return true, c.entry(tx, key, b)
			})
		})
		if err != nil {
			return checked, err
		}
		checked += uint64(n)
		if progress != nil {
			progress(checked, total)
		}
		if n < checkChunk {
			break
		}
	}
	if c.what["tree"] {
		for _, cp := range c.cps[c.cpAt:] {
			c.fault(cp.Size, "tree: checkpoint of size %d but only %d entries", cp.Size, c.rng.End())
		}
		if len(c.cps) == 0 {
			c.fault(0, "tree: no checkpoint is stored")
		} else if newest := c.cps[len(c.cps)-1].Size; newest < c.rng.End() {
			c.fault(newest, "tree: %d entries but the newest checkpoint covers %d", c.rng.End(), newest)
		}
	}
	return checked, nil
}

func (c *checker) entry(tx store.ReadTx, key uint64, b []byte) error {
	if key != c.next && c.what["link"] {
		c.fault(c.next, "link: entry %d is missing", c.next)
	}
	c.next = key + 1
	leaf := verify.LeafHash(b)
	defer func() { c.prev = leaf }()
	e, rec, err := verify.ParseEntry(b)
	if err != nil {
		if c.what["sum"] {
			c.fault(key, "sum: entry is invalid: %v", err)
		}
		return c.tree(tx, key, leaf)
	}
	if c.what["sum"] {
		stored, err := node(tx, c.meta.Key(), compact.NewNodeID(0, key))
		if err != nil {
			return err
		}
		if !bytes.Equal(stored, leaf[:]) {
			c.fault(key, "sum: leaf hash differs from the stored leaf")
		}
		if e.Chain != c.meta.Name || e.Origin != c.serverID {
			c.fault(key, "sum: entry names chain %q of server %s", e.Chain, e.Origin)
		}
		ref, ok, err := tx.LookupID(c.meta.Key(), uuidBytes(rec.ID))
		if err != nil {
			return err
		}
		if !ok || ref.Seq != key || ref.Hash != rec.Hash {
			c.fault(key, "sum: id index does not point at this record")
		}
	}
	if c.what["link"] {
		if e.Seq != key {
			c.fault(key, "link: entry stored at %d says seq %d", key, e.Seq)
		}
		if e.Prev != c.prev {
			c.fault(key, "link: prev is not the leaf hash of the entry before")
		}
		if e.Time < c.lastTime {
			c.fault(key, "link: time %d is before the previous entry's %d", e.Time, c.lastTime)
		}
	}
	c.lastTime = max(c.lastTime, e.Time)
	if c.what["pow"] && !verify.PoWValid(rec.Hash, rec.PoW, c.meta.PoWBits) {
		c.fault(key, "pow: does not meet the chain's %d bits", c.meta.PoWBits)
	}
	if c.what["sig"] && rec.Sig != nil {
		if err := rec.CheckSig(c.origin); err != nil {
			c.fault(key, "sig: %v", err)
		}
	}
	return c.tree(tx, key, leaf)
}

func (c *checker) tree(tx store.ReadTx, key uint64, leaf [32]byte) error {
	var nodeErr error
	var visit compact.VisitFn
	if c.what["tree"] {
		visit = func(id compact.NodeID, h []byte) {
			if id.Level == 0 || nodeErr != nil {
				return // leaves are the sum check's
			}
			stored, err := node(tx, c.meta.Key(), id)
			if err != nil {
				nodeErr = err
				return
			}
			if !bytes.Equal(stored, h) {
				c.fault(key, "tree: stored merkle node %d/%d differs from the recomputed one", id.Level, id.Index)
			}
		}
	}
	if err := c.rng.Append(leaf[:], visit); err != nil {
		return err
	}
	if nodeErr != nil {
		return nodeErr
	}
	c.checkpointsAt(c.rng.End())
	return nil
}

// checkpointsAt verifies the stored checkpoints of the tree size just
// reached.
func (c *checker) checkpointsAt(size uint64) {
	for c.cpAt < len(c.cps) && c.cps[c.cpAt].Size <= size {
		cp := c.cps[c.cpAt]
		c.cpAt++
		if !c.what["tree"] || cp.Size != size {
			continue
		}
		signed, err := c.ring.open(cp.Note, c.origin)
		if err != nil {
			c.fault(cp.Size, "tree: checkpoint of size %d does not verify: %v", cp.Size, err)
			continue
		}
		if signed.Size != cp.Size {
			c.fault(cp.Size, "tree: checkpoint stored as size %d says size %d", cp.Size, signed.Size)
			continue
		}
		root, err := rootOf(c.rng)
		if err != nil || root != signed.Root {
			c.fault(cp.Size, "tree: root at size %d differs from the signed checkpoint", cp.Size)
		}
	}
}

// Check runs `rcheck` on a chain: what is sum, link, pow, sig, tree or all
// (also ""). It returns how many entries were checked and every fault found.
func (l *Ledger) Check(ctx context.Context, chain, what string) (uint64, []Fault, error) {
	cs, err := l.state(chain)
	if err != nil {
		return 0, nil, err
	}
	if cs.mirror {
		return 0, nil, wire.Errorf(wire.CodeInvalid, "rcheck of a mirrored chain is not supported yet: every batch was checked against the home's checkpoint when it was stored")
	}
	checks := checkNames
	if what != "" && what != "all" {
		if !strings.Contains(" "+strings.Join(checkNames, " ")+" ", " "+what+" ") {
			return 0, nil, wire.Errorf(wire.CodeInvalid, "unknown check %q: want sum, link, pow, sig, tree or all", what)
		}
		checks = []string{what}
	}
	c := newChecker(l.store, cs.meta, l.cfg.ServerID, l.ring, checks...)
	if what == "" || what == "all" || what == "sig" {
		c.faults = l.ring.faults(cs.meta.Name)
	}
	n, err := c.run(ctx, nil)
	return n, c.faults, err
}
