package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Typed calls for the ledger commands of DESIGN.md §3.4. Entries come back as
// the exact bytes the server hashed (CBOR byte strings on the wire), so a
// caller can hand them to package verify unchanged.

// Limits the server applies to one request (DESIGN.md §3.4); callers with
// more split their work into several calls.
const (
	MaxPutBatch = 1000   // records in one rput
	MaxGetBatch = 1000   // ids or seqs in one rget, rabs or rhave
	MaxListPage = 100000 // ids in one rlist page
)

// PutResult is what rput answers for each record, in order.
type PutResult struct {
	ID      string `cbor:"id" json:"id"`
	Seq     uint64 `cbor:"seq" json:"seq"`
	Leaf    []byte `cbor:"leaf" json:"leaf"`
	Receipt string `cbor:"receipt,omitempty" json:"receipt,omitempty"`
	EID     string `cbor:"eid,omitempty" json:"eid,omitempty"` // vote.register only (§6.2)
}

// PutRecords appends records (each a canonical CBOR record map, see NewRecord) to
// chain, all or nothing, and returns after they are durable. With receipt set
// every result carries its receipt (§4.5), whose checkpoint is checked
// against the checkpoint cache as Head's is. A bad record in a batch fails the
// whole call with an *Error; BatchIndex tells which record it was.
func (c *Client) PutRecords(ctx context.Context, chain string, records [][]byte, receipt bool) ([]PutResult, error) {
	if len(records) == 0 {
		return nil, errors.New("rput: no records")
	}
	// Records travel as CBOR maps embedded in the request, not as byte
	// strings: RawMessage puts their bytes in place unchanged, which is what
	// the server hashes.
	var arg any
	if len(records) == 1 {
		arg = wire.RawMessage(records[0])
	} else {
		batch := make([]wire.RawMessage, len(records))
		for i, r := range records {
			batch[i] = r
		}
		arg = batch
	}
	args := []any{chain, arg}
	if receipt {
		args = append(args, map[string]any{"receipt": true})
	}
	vals, err := c.Call(ctx, "rput", args...)
	if err != nil {
		return nil, err
	}
	var res []PutResult
	if err := decode("rput", vals, &res); err != nil {
		return nil, err
	}
	if len(res) != len(records) {
		return nil, fmt.Errorf("rput: %d results for %d records", len(res), len(records))
	}
	if receipt {
		// All receipts of one rput share the checkpoint of its commit.
		if err := c.track(ctx, chain, string(verify.CheckpointNote([]byte(res[len(res)-1].Receipt)))); err != nil {
			return res, err
		}
	}
	return res, nil
}

// BatchIndex returns the index of the record an rput batch failed on, when
// the server named one.
func BatchIndex(err error) (int, bool) {
	var we *Error
	if !errors.As(err, &we) || len(we.Extra) == 0 {
		return 0, false
	}
	switch v := we.Extra[0].(type) {
	case uint64:
		return int(v), true
	case int64:
		return int(v), v >= 0
	case int:
		return v, v >= 0
	}
	return 0, false
}

// entries decodes an `OK [entry or null...]` reply.
func entries(cmd string, vals []wire.RawMessage, want int) ([][]byte, error) {
	var out [][]byte
	if err := decode(cmd, vals, &out); err != nil {
		return nil, err
	}
	if len(out) != want {
		return nil, fmt.Errorf("%s: %d entries for %d keys", cmd, len(out), want)
	}
	return out, nil
}

// GetRecord returns the entry holding record id; a missing id is ERR notfound.
func (c *Client) GetRecord(ctx context.Context, chain, id string) ([]byte, error) {
	vals, err := c.Call(ctx, "rget", chain, id)
	if err != nil {
		return nil, err
	}
	es, err := entries("rget", vals, 1)
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// GetRecords returns the entries of ids (at most MaxGetBatch), nil where a
// record is missing.
func (c *Client) GetRecords(ctx context.Context, chain string, ids []string) ([][]byte, error) {
	vals, err := c.Call(ctx, "rget", chain, ids)
	if err != nil {
		return nil, err
	}
	return entries("rget", vals, len(ids))
}

// AbsRecord returns the entry at seq; a negative seq counts from the end (-1 is
// the last entry). A missing seq is ERR notfound.
func (c *Client) AbsRecord(ctx context.Context, chain string, seq int64) ([]byte, error) {
	vals, err := c.Call(ctx, "rabs", chain, seq)
	if err != nil {
		return nil, err
	}
	es, err := entries("rabs", vals, 1)
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// AbsRecords returns the entries at seqs (at most MaxGetBatch), nil where there
// is none.
func (c *Client) AbsRecords(ctx context.Context, chain string, seqs []int64) ([][]byte, error) {
	vals, err := c.Call(ctx, "rabs", chain, seqs)
	if err != nil {
		return nil, err
	}
	return entries("rabs", vals, len(seqs))
}

// HaveRecords reports which of ids (at most MaxGetBatch) are in the chain.
func (c *Client) HaveRecords(ctx context.Context, chain string, ids []string) ([]bool, error) {
	vals, err := c.Call(ctx, "rhave", chain, ids)
	if err != nil {
		return nil, err
	}
	var have []bool
	if err := decode("rhave", vals, &have); err != nil {
		return nil, err
	}
	if len(have) != len(ids) {
		return nil, fmt.Errorf("rhave: %d answers for %d ids", len(have), len(ids))
	}
	return have, nil
}

// ChainSize returns the number of entries in the chain.
func (c *Client) ChainSize(ctx context.Context, chain string) (uint64, error) {
	vals, err := c.Call(ctx, "rsize", chain)
	if err != nil {
		return 0, err
	}
	var n uint64
	return n, decode("rsize", vals, &n)
}

// ListRecords returns one page of the ids of records accepted in [fromMs, toMs)
// server time, in seq order: at most limit (0 = the server's default, 1,000)
// ids, and the cursor of the next page, nil after the last one.
func (c *Client) ListRecords(ctx context.Context, chain string, fromMs, toMs uint64, limit int, cursor []byte) ([]string, []byte, error) {
	if limit < 0 || limit > MaxListPage {
		return nil, nil, fmt.Errorf("rlist: limit %d out of range 0..%d", limit, MaxListPage)
	}
	args := []any{chain, fromMs, toMs}
	switch {
	case cursor != nil:
		var l any // null keeps the default
		if limit > 0 {
			l = uint64(limit)
		}
		args = append(args, l, cursor)
	case limit > 0:
		args = append(args, uint64(limit))
	}
	vals, err := c.Call(ctx, "rlist", args...)
	if err != nil {
		return nil, nil, err
	}
	var ids []string
	var next []byte
	if err := decode("rlist", vals, &ids, &next); err != nil {
		return nil, nil, err
	}
	return ids, next, nil
}

// CountRecords returns how many records were accepted in [fromMs, toMs).
func (c *Client) CountRecords(ctx context.Context, chain string, fromMs, toMs uint64) (uint64, error) {
	vals, err := c.Call(ctx, "rcount", chain, fromMs, toMs)
	if err != nil {
		return 0, err
	}
	var n uint64
	return n, decode("rcount", vals, &n)
}

// Ref names a record for Proof: by its id or by its seq.
type Ref struct {
	id    string
	seq   uint64
	bySeq bool
}

// ByID refers to the record with this id.
func ByID(id string) Ref { return Ref{id: id} }

// BySeq refers to the entry at this seq.
func BySeq(seq uint64) Ref { return Ref{seq: seq, bySeq: true} }

func (r Ref) arg() any {
	if r.bySeq {
		return r.seq
	}
	return r.id
}

// Proof returns the receipt (§4.5, a C2SP tlog-proof) of a record, against
// the kept checkpoint of treeSize, or when treeSize is 0 the one the server
// chooses (the newest that meets its witness quorum, else the newest).
func (c *Client) Proof(ctx context.Context, chain string, ref Ref, treeSize uint64) (string, error) {
	args := []any{chain, ref.arg()}
	if treeSize > 0 {
		args = append(args, treeSize)
	}
	vals, err := c.Call(ctx, "rproof", args...)
	if err != nil {
		return "", err
	}
	var receipt string
	if err := decode("rproof", vals, &receipt); err != nil {
		return "", err
	}
	if err := c.track(ctx, chain, string(verify.CheckpointNote([]byte(receipt)))); err != nil {
		return "", err
	}
	return receipt, nil
}

// Consistency returns the consistency proof from oldSize to the kept
// checkpoint of newSize (the newest when newSize is 0), and that signed
// checkpoint. The checkpoint is checked against the cache like Head's.
func (c *Client) Consistency(ctx context.Context, chain string, oldSize, newSize uint64) ([][]byte, string, error) {
	hashes, cp, err := c.consistency(ctx, chain, oldSize, newSize)
	if err != nil {
		return nil, "", err
	}
	if err := c.track(ctx, chain, cp); err != nil {
		return nil, "", err
	}
	return hashes, cp, nil
}

func (c *Client) consistency(ctx context.Context, chain string, oldSize, newSize uint64) ([][]byte, string, error) {
	args := []any{chain, oldSize}
	if newSize > 0 {
		args = append(args, newSize)
	}
	vals, err := c.Call(ctx, "rcons", args...)
	if err != nil {
		return nil, "", err
	}
	var hashes [][]byte
	var cp string
	if err := decode("rcons", vals, &hashes, &cp); err != nil {
		return nil, "", err
	}
	return hashes, cp, nil
}

// Head returns the chain's newest signed checkpoint note. Unless the client
// keeps no known_hosts, a checkpoint that verifies under CheckpointKey
// must be consistent with the newest one this client verified before
// (checkpoints.go); a rollback is a *RollbackError.
func (c *Client) Head(ctx context.Context, chain string) (string, error) {
	vals, err := c.Call(ctx, "rhead", chain)
	if err != nil {
		return "", err
	}
	var cp string
	if err := decode("rhead", vals, &cp); err != nil {
		return "", err
	}
	if err := c.track(ctx, chain, cp); err != nil {
		return "", err
	}
	return cp, nil
}

// CheckFault is one fault rcheck found.
type CheckFault struct {
	Seq  uint64 `cbor:"seq" json:"seq"`
	What string `cbor:"what" json:"what"`
}

// CheckResult is the reply to rcheck.
type CheckResult struct {
	Checked uint64       `cbor:"checked" json:"checked"`
	Errors  []CheckFault `cbor:"errors" json:"errors"`
}

// CheckChain runs rcheck (admin): what is sum, link, pow, sig, tree or all
// ("" = all).
func (c *Client) CheckChain(ctx context.Context, chain, what string) (*CheckResult, error) {
	args := []any{chain}
	if what != "" {
		args = append(args, what)
	}
	vals, err := c.Call(ctx, "rcheck", args...)
	if err != nil {
		return nil, err
	}
	r := &CheckResult{}
	if err := decode("rcheck", vals, r); err != nil {
		return nil, err
	}
	if r.Errors == nil {
		r.Errors = []CheckFault{}
	}
	return r, nil
}

// ChainInfo is one row of `chains`. Schema is empty when the chain has none.
type ChainInfo struct {
	Name string `cbor:"name" json:"name"`
	// Origin is the server-id of the chain's home: the connected server's
	// own, or another home's for a chain mirrored there (empty from servers
	// that do not send it: their own). See Ref.
	Origin  string `cbor:"origin" json:"origin,omitempty"`
	Size    uint64 `cbor:"size" json:"size"`
	Public  bool   `cbor:"public" json:"public"`
	PoWBits int    `cbor:"pow_bits" json:"pow_bits"`
	Schema  string `cbor:"schema" json:"schema,omitempty"`
}

// Ref is how to name the chain on the server whose server-id is serverID:
// its name when that server homes it, its full origin
// vserv/<origin>/<name> when it is mirrored there (a plain name never
// reaches a mirrored chain).
func (ci ChainInfo) Ref(serverID string) string {
	if ci.Origin == "" || ci.Origin == serverID {
		return ci.Name
	}
	return verify.OriginLine(ci.Origin, ci.Name)
}

// FindChain finds the chain argument chain (a name, or a full origin) among
// all, a `chains` answer of this connection's server.
func (c *Client) FindChain(all []ChainInfo, chain string) (ChainInfo, bool) {
	ref := chain
	if rest, ok := strings.CutPrefix(chain, verify.OriginLine(c.ServerID(), "")); ok {
		ref = rest // the server's own chain, by full origin
	}
	for _, ci := range all {
		if ci.Ref(c.ServerID()) == ref {
			return ci, true
		}
	}
	return ChainInfo{}, false
}

// Chains lists the chains this connection may read.
func (c *Client) Chains(ctx context.Context) ([]ChainInfo, error) {
	out, _, err := c.chains(ctx)
	return out, err
}

// ChainAuthorities are the authority keys (§6.1, text form) of every chain
// this connection may read, by ChainInfo.Ref (the chain name for a chain the
// server homes); a chain without any maps to an empty list. (They are not
// in ChainInfo, which stays comparable.)
func (c *Client) ChainAuthorities(ctx context.Context) (map[string][]string, error) {
	_, auth, err := c.chains(ctx)
	return auth, err
}

func (c *Client) chains(ctx context.Context) ([]ChainInfo, map[string][]string, error) {
	vals, err := c.Call(ctx, "chains")
	if err != nil {
		return nil, nil, err
	}
	var raw []struct {
		Name      string   `cbor:"name"`
		Origin    string   `cbor:"origin"`
		Size      uint64   `cbor:"size"`
		Public    bool     `cbor:"public"`
		PoWBits   int      `cbor:"pow_bits"`
		Schema    *string  `cbor:"schema"` // null when there is none
		Authority []string `cbor:"authority"`
	}
	if err := decode("chains", vals, &raw); err != nil {
		return nil, nil, err
	}
	out := make([]ChainInfo, len(raw))
	auth := make(map[string][]string, len(raw))
	for i, r := range raw {
		out[i] = ChainInfo{Name: r.Name, Origin: r.Origin, Size: r.Size, Public: r.Public, PoWBits: r.PoWBits}
		if r.Schema != nil {
			out[i].Schema = *r.Schema
		}
		auth[out[i].Ref(c.ServerID())] = append([]string{}, r.Authority...)
	}
	return out, auth, nil
}

// ChainOptions are the settings of a new chain.
type ChainOptions struct {
	Public  bool
	PoWBits int    // 0..32, fixed for the chain's life
	Schema  string // "" for a free-form chain
	// Authority are 0–16 Ed25519 public keys in their text form (§6.1),
	// only with a schema; authority events must then be signed by one.
	Authority []string
}

// MakeChain calls mkchain (admin): creates a chain and its size-0 checkpoint.
// On an existing empty chain without a schema it only attaches Schema.
func (c *Client) MakeChain(ctx context.Context, name string, o ChainOptions) error {
	if o.PoWBits < 0 {
		return fmt.Errorf("mkchain: pow_bits %d is negative", o.PoWBits)
	}
	m := map[string]any{"public": o.Public, "pow_bits": uint64(o.PoWBits)}
	if o.Schema != "" {
		m["schema"] = o.Schema
	}
	if len(o.Authority) > 0 {
		m["authority"] = o.Authority
	}
	_, err := c.Call(ctx, "mkchain", name, m)
	return err
}

// Grant gives account name a right (read, write or replicate) on chain (admin).
func (c *Client) Grant(ctx context.Context, name, chain, right string) error {
	_, err := c.Call(ctx, "grant", name, chain, right)
	return err
}

// Revoke takes a right away (admin).
func (c *Client) Revoke(ctx context.Context, name, chain, right string) error {
	_, err := c.Call(ctx, "revoke", name, chain, right)
	return err
}
