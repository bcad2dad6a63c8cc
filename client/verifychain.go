package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vserv/vserv/verify"
)

// ChainFault is one thing wrong in a downloaded chain. What starts with the
// check that found it (sum, link, pow, sig, tree), as in rcheck.
type ChainFault struct {
	Seq  uint64 `json:"seq"`
	What string `json:"what"`
}

// ChainReport is what VerifyChain found.
type ChainReport struct {
	Chain  string       `json:"chain"`
	Origin string       `json:"origin"`
	Size   uint64       `json:"size"` // of the signed checkpoint checked against
	Root   []byte       `json:"root"`
	Faults []ChainFault `json:"faults"`
	// Note is the checkpoint note rhead served, verbatim with its
	// cosignature lines, for a caller that checks witnesses.
	Note []byte `json:"-"`
}

// verifyPage is how many entries one rabs asks for; it halves on ERR limit
// (a page of large records can outgrow one reply).
const verifyPage = MaxGetBatch

// VerifyChain downloads a chain and checks it the way an outside auditor
// would, trusting nothing but the identity key this connection verified in
// its handshake: the newest signed checkpoint (rhead) must verify under that
// key, and every entry below its size is fetched (rabs) and checked — its
// encoding and record, seq, chain, origin, the prev link, non-decreasing
// time, the proof of work against the chain's pow_bits, the record signature
// when there is one — and the Merkle root recomputed from all leaf hashes
// must equal the checkpoint's root.
//
// Faults are reported, not returned as errors; the error is for failures to
// talk to the server at all (or an ERR reply). progress, if not nil, is
// called after each page with the entries checked and the total.
func (c *Client) VerifyChain(ctx context.Context, chain string, progress func(done, total uint64)) (*ChainReport, error) {
	return c.VerifyChainEach(ctx, chain, progress, nil)
}

// VerifyChainEach is VerifyChain that also hands every downloaded entry, in
// seq order, to each (when not nil): what a recount replays (§6.6).
func (c *Client) VerifyChainEach(ctx context.Context, chain string, progress func(done, total uint64), each func(seq uint64, entry []byte)) (*ChainReport, error) {
	if c.Identity() == nil {
		return nil, errors.New("verify chain: no verified server identity (the session is not established)")
	}
	name, origin := chainOrigin(c.ServerID(), chain)
	pub := c.CheckpointKey(chain)
	if pub == nil {
		return nil, fmt.Errorf("verify chain %s: it is mirrored from home %s, whose key is not known (connect to the home once, so that known_hosts records it)", origin, serverIDOf(origin))
	}
	bits, err := c.powBits(ctx, chain)
	if err != nil {
		return nil, err
	}
	note, err := c.Head(ctx, chain)
	if err != nil {
		return nil, err
	}
	rep := &ChainReport{Chain: name, Origin: origin, Faults: []ChainFault{}, Note: []byte(note)}
	cp, err := verify.OpenCheckpoint([]byte(note), origin, pub)
	if err != nil {
		rep.Faults = append(rep.Faults, ChainFault{What: "tree: the newest checkpoint does not verify under the key of the chain's home: " + err.Error()})
		return rep, nil
	}
	rep.Size, rep.Root = cp.Size, cp.Root[:]

	w := chainWalker{rep: rep, name: name, origin: origin, serverID: serverIDOf(origin), bits: bits,
		rng: (&compact.RangeFactory{Hash: verify.NodeHash}).NewEmptyRange(0)}
	page := verifyPage
	for next := uint64(0); next < cp.Size; {
		n := min(uint64(page), cp.Size-next)
		seqs := make([]int64, n)
		for i := range seqs {
			seqs[i] = int64(next) + int64(i)
		}
		es, err := c.AbsRecords(ctx, chain, seqs)
		if errors.Is(err, ErrLimit) && page > 1 {
			page /= 2
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rabs %s from %d: %w", chain, next, err)
		}
		for i, e := range es {
			w.entry(next+uint64(i), e)
			if each != nil {
				each(next+uint64(i), e)
			}
		}
		next += n
		if progress != nil {
			progress(next, cp.Size)
		}
	}
	w.finish(cp)
	return rep, nil
}

// chainWalker checks entries in seq order.
type chainWalker struct {
	rep                    *ChainReport
	name, origin, serverID string
	bits                   int
	prev                   [32]byte
	lastTime               uint64
	rng                    *compact.Range
	missing                bool // a leaf could not be added: no root to compare
}

func (w *chainWalker) fault(seq uint64, format string, args ...any) {
	w.rep.Faults = append(w.rep.Faults, ChainFault{Seq: seq, What: fmt.Sprintf(format, args...)})
}

func (w *chainWalker) entry(seq uint64, b []byte) {
	if b == nil {
		w.fault(seq, "link: entry %d is missing", seq)
		w.missing = true
		return
	}
	leaf := verify.LeafHash(b)
	defer func() {
		w.prev = leaf
		if err := w.rng.Append(bytes.Clone(leaf[:]), nil); err != nil {
			w.missing = true
		}
	}()
	e, rec, err := verify.ParseEntry(b)
	if err != nil {
		w.fault(seq, "sum: %v", err)
		return
	}
	if e.Seq != seq {
		w.fault(seq, "link: entry at %d says seq %d", seq, e.Seq)
	}
	if e.Chain != w.name {
		w.fault(seq, "sum: entry names chain %q", e.Chain)
	}
	if e.Origin != w.serverID {
		w.fault(seq, "sum: entry origin %s is not this server's %s", e.Origin, w.serverID)
	}
	if e.Prev != w.prev {
		w.fault(seq, "link: prev is not the leaf hash of the entry before")
	}
	if e.Time < w.lastTime {
		w.fault(seq, "link: time %d is before the previous entry's %d", e.Time, w.lastTime)
	}
	w.lastTime = max(w.lastTime, e.Time)
	if !verify.PoWValid(rec.Hash, rec.PoW, w.bits) {
		w.fault(seq, "pow: proof of work does not meet the chain's %d bits", w.bits)
	}
	if rec.Sig != nil {
		if err := rec.CheckSig(w.origin); err != nil {
			w.fault(seq, "sig: %v", err)
		}
	}
}

func (w *chainWalker) finish(cp *verify.Checkpoint) {
	if w.missing {
		w.fault(cp.Size, "tree: root not recomputed: entries are missing")
		return
	}
	root, err := w.rng.GetRootHash(nil)
	if err != nil {
		w.fault(cp.Size, "tree: %v", err)
		return
	}
	if root == nil {
		root = verify.EmptyRoot[:]
	}
	if !bytes.Equal(root, cp.Root[:]) {
		w.fault(cp.Size, "tree: root of the %d entries differs from the signed checkpoint", cp.Size)
	}
}

// powBits finds the chain's pow_bits in `chains`.
func (c *Client) powBits(ctx context.Context, chain string) (int, error) {
	all, err := c.Chains(ctx)
	if err != nil {
		return 0, err
	}
	if ci, ok := c.FindChain(all, chain); ok {
		return ci.PoWBits, nil
	}
	// The server's own words for a chain it does not have (or will not show).
	return 0, &Error{Code: ErrNotFound.Code, Text: fmt.Sprintf("no chain %q", chain)}
}

// chainOrigin splits a chain argument, a name or a full origin line
// vserv/<server-id>/<chain> (§3.4), into the name and the origin line.
func chainOrigin(serverID, chain string) (name, origin string) {
	if rest, ok := strings.CutPrefix(chain, "vserv/"); ok {
		if _, n, ok := strings.Cut(rest, "/"); ok {
			return n, chain
		}
	}
	return chain, verify.OriginLine(serverID, chain)
}

// ChainOrigin returns the origin line of a chain argument (a name or already
// an origin line) on the connected server: what record signatures and
// checkpoints bind.
func (c *Client) ChainOrigin(chain string) string {
	_, origin := chainOrigin(c.ServerID(), chain)
	return origin
}

func serverIDOf(origin string) string {
	rest := strings.TrimPrefix(origin, "vserv/")
	id, _, _ := strings.Cut(rest, "/")
	return id
}
