// Package ledgercmd holds the ledger commands of DESIGN.md §3.4
// (docs/protocol.md §9): appends, reads, proofs, chains, rights and views.
// Register adds them to a server.Table. Record rules, the committer and
// proofs belong to internal/ledger; who may use a chain to the access
// policy, auth.Store.Access, which every command asks once (chainFor). The
// commands keep no per-connection state.
package ledgercmd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Limits of DESIGN.md §2.1 on batched ledger commands.
const (
	maxBatchRecords = 1000 // rput
	maxBatchKeys    = 1000 // rget, rabs, rhave
	maxListLimit    = 100000
)

// Register adds the ledger commands to t.
func Register(t *server.Table) {
	s, v := cmdspec.Session, cmdspec.Verified
	t.Handle("rput", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 3, Usage: "rput chain record|[records] [{receipt: bool}] — append records (write right)"}, Run: cmdRput})
	t.Handle("rget", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 2, Usage: "rget chain id|[ids] — entries by record id"}, Run: cmdRget})
	t.Handle("rabs", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 2, Usage: "rabs chain seq|[seqs] — entries by position (negative: from the end)"}, Run: cmdRabs})
	t.Handle("rhave", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 2, Usage: "rhave chain id|[ids] — whether records exist"}, Run: cmdRhave})
	t.Handle("rsize", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 1, MaxArgs: 1, Usage: "rsize chain — number of entries"}, Run: cmdRsize})
	t.Handle("rlist", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 3, MaxArgs: 5, Usage: "rlist chain from to [limit [cursor]] — record ids accepted in [from, to) server ms"}, Run: cmdRlist})
	t.Handle("rcount", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 3, MaxArgs: 3, Usage: "rcount chain from to — how many records were accepted in [from, to)"}, Run: cmdRcount})
	t.Handle("rproof", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 3, Usage: "rproof chain id|seq [tree size] — a receipt (C2SP tlog-proof)"}, Run: cmdRproof})
	t.Handle("rcons", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 3, Usage: "rcons chain old-size [new-size] — consistency proof and checkpoint"}, Run: cmdRcons})
	t.Handle("rhead", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 1, MaxArgs: 1, Usage: "rhead chain — the newest signed checkpoint"}, Run: cmdRhead})
	t.Handle("rcheck", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 2, Usage: "rcheck chain [sum|link|pow|sig|tree|all] — check a chain (admin)"}, Run: cmdRcheck})
	t.Handle("chains", server.Command{Spec: cmdspec.Spec{Min: s, Usage: "chains — the chains this connection may read"}, Run: cmdChains})
	t.Handle("mkchain", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 2, MaxArgs: 2, Usage: "mkchain name {public, pow_bits, schema, authority} — create a chain (admin)"}, Run: cmdMkchain})
	t.Handle("grant", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 3, MaxArgs: 3, Usage: "grant name chain read|write|manage|replicate — give a per-chain right (admin)"}, Run: cmdGrant})
	t.Handle("revoke", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 3, MaxArgs: 3, Usage: "revoke name chain read|write|manage|replicate — take a per-chain right away (admin)"}, Run: cmdRevoke})
	t.Handle("view", server.Command{Spec: cmdspec.Spec{Min: s, MinArgs: 2, MaxArgs: 3, Usage: "view chain name [{args}] — a view of a chain with a schema (§6)"}, Run: cmdView})
}

// chainFor resolves the chain argument from the ledger's memory and asks
// the access policy (auth.Store.Access) once whether this connection may use
// it with the right need: a chain that does not exist for it is ERR
// notfound, a visible one without the right ERR perm (docs/protocol.md §9).
func chainFor(ctx context.Context, s *server.Session, arg string, need auth.Right) (ledger.ChainInfo, auth.Grant, error) {
	info, err := s.Ledger().Chain(arg)
	if err != nil {
		return ledger.ChainInfo{}, auth.Grant{}, err
	}
	g, err := s.Accounts().Access(ctx, s.Principal(), chainFacts(arg, info), need)
	if err != nil {
		return ledger.ChainInfo{}, auth.Grant{}, err
	}
	return info, g, nil
}

// chainFacts is what the access policy needs of a chain. A mirrored chain
// (homed on another server) is named by its full origin, so that a right
// granted on a plain name, which is a chain homed here, never reaches
// another home's chain of that name.
func chainFacts(arg string, info ledger.ChainInfo) auth.ChainFacts {
	return auth.ChainFacts{Arg: arg, Name: info.Ref(), Public: info.Public, ServerWritten: info.ServerWritten, Mirror: info.Mirror}
}

// readableChain resolves the chain argument and checks read access.
func readableChain(ctx context.Context, s *server.Session, req *wire.Request) (ledger.ChainInfo, error) {
	arg, err := req.Text(0, "chain")
	if err != nil {
		return ledger.ChainInfo{}, err
	}
	info, _, err := chainFor(ctx, s, arg, auth.RightRead)
	return info, err
}

// oneOrMany decodes argument i as either one T or an array of them (at most
// max). single tells which it was.
func oneOrMany[T any](req *wire.Request, i int, what string, max int) (vals []T, single bool, err error) {
	raw := req.Args[i]
	if len(raw) > 0 && raw[0]>>5 == 4 { // CBOR major type 4: array
		var items []wire.RawMessage
		if err := wire.Unmarshal(raw, &items); err != nil {
			return nil, false, wire.Errorf(wire.CodeProto, "%s: %s must be one value or an array", req.Cmd, what)
		}
		if len(items) > max {
			return nil, false, wire.Errorf(wire.CodeLimit, "%s: at most %d %s in one request, got %d", req.Cmd, max, what, len(items))
		}
		vals = make([]T, len(items))
		for k, it := range items {
			if err := wire.Unmarshal(it, &vals[k]); err != nil {
				return nil, false, wire.Errorf(wire.CodeProto, "%s: %s %d has the wrong type", req.Cmd, what, k)
			}
		}
		return vals, false, nil
	}
	var v T
	if err := req.Decode(i, what, &v); err != nil {
		return nil, false, err
	}
	return []T{v}, true, nil
}

func cmdRput(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	arg, err := req.Text(0, "chain")
	if err != nil {
		return nil, err
	}
	raw := req.Args[1]
	var records [][]byte
	switch {
	case len(raw) > 0 && raw[0]>>5 == 5: // one record: a map
		records = [][]byte{raw}
	case len(raw) > 0 && raw[0]>>5 == 4:
		var items []wire.RawMessage
		if err := wire.Unmarshal(raw, &items); err != nil {
			return nil, wire.Errorf(wire.CodeProto, "rput: malformed batch")
		}
		if len(items) == 0 {
			return nil, wire.Errorf(wire.CodeInvalid, "rput: empty batch")
		}
		if len(items) > maxBatchRecords {
			return nil, wire.Errorf(wire.CodeLimit, "rput: at most %d records in one request, got %d", maxBatchRecords, len(items))
		}
		records = make([][]byte, len(items))
		for i, it := range items {
			records[i] = it
		}
	default:
		return nil, wire.Errorf(wire.CodeProto, "rput: the record must be a map, or an array of maps")
	}
	var opts ledger.AppendOptions
	if req.NArgs() == 3 {
		var o struct {
			Receipt *bool `cbor:"receipt"`
		}
		if err := req.Decode(2, "options", &o); err != nil {
			return nil, err
		}
		opts.Receipt = o.Receipt != nil && *o.Receipt
	}
	// One ledger lookup and one access decision, which puts visibility
	// before the state (a private chain stays invisible to a connection
	// below verified) and tells whether manage is held.
	info, g, err := chainFor(ctx, s, arg, auth.RightWrite)
	if err != nil {
		return nil, err
	}
	if opts.Receipt {
		if err := rputFits(ctx, s, info, records); err != nil {
			return nil, err
		}
	}
	// The committer's rules ask for it per record (authority events).
	opts.Manage = g.Has(auth.RightManage)
	results, err := s.Ledger().Append(ctx, info.Ref(), records, opts)
	if err != nil {
		return nil, err
	}
	return server.OK(rputReply(results, opts.Receipt))
}

// rputFits refuses, before anything is committed, a batch whose reply with
// receipts could exceed the largest message (DESIGN.md §2.1): ERR limit
// naming the first record that does not fit. Each receipt is bounded from
// above: the entry as base64 (its fields at their largest), an inclusion
// proof of log2 of the new size hashes, and the checkpoint (the current one
// plus room for a longer size line).
func rputFits(ctx context.Context, s *server.Session, info ledger.ChainInfo, records [][]byte) error {
	head, err := s.Ledger().Head(ctx, info.Ref())
	if err != nil {
		return err
	}
	hashes := bits.Len64(info.Size + uint64(len(records)))
	const (
		receiptText = 64           // the header line and the "extra " and "index " labels
		indexLine   = 20 + 1       // the seq and its newline
		hashLine    = 44 + 1       // a base64 hash and its newline
		resultMap   = 64 + 72 + 24 // {id, eid, seq, leaf, receipt} without the receipt text: an id of at most 64 bytes
		replyHead   = 16           // ["OK", [...]]
	)
	size := replyHead
	for i, rec := range records {
		entry := verify.EntrySize(verify.Entry{V: verify.EntryVersion, Seq: math.MaxUint64, Time: math.MaxUint64,
			Chain: info.Name, Origin: s.ServerID(), Record: rec})
		receipt := receiptText + base64.StdEncoding.EncodedLen(entry) + indexLine + hashes*hashLine + 1 + len(head) + 32
		size += resultMap + 9 + receipt
		if size > wire.DefaultMaxMsg {
			return &wire.Error{Code: wire.CodeLimit, Extra: []any{i},
				Text: fmt.Sprintf("record %d: the reply with receipts would exceed %d bytes; send fewer records, or ask for no receipts and fetch them with rproof", i, wire.DefaultMaxMsg)}
		}
	}
	return nil
}

// rputReply encodes rput's answer, an array of {id, seq, leaf[, receipt]
// [, eid]} maps, directly: the same bytes wire.Marshal makes of those maps
// (keys in deterministic order: id, eid, seq, leaf, receipt), without
// building them.
func rputReply(results []ledger.Result, receipt bool) wire.RawMessage {
	size := 9
	for _, r := range results {
		size += 1 + 3 + 2 + len(r.ID) + 4 + 9 + 5 + 2 + 32
		if receipt {
			size += 8 + 9 + len(r.Receipt)
		}
		if r.EID != "" {
			size += 4 + 2 + len(r.EID)
		}
	}
	b := canon.AppendHead(make([]byte, 0, size), 4, uint64(len(results)))
	for _, r := range results {
		n := uint64(3)
		if receipt {
			n++
		}
		if r.EID != "" {
			n++
		}
		b = canon.AppendHead(b, 5, n)
		b = append(b, 0x62, 'i', 'd')
		b = canon.AppendHead(b, 3, uint64(len(r.ID)))
		b = append(b, r.ID...)
		if r.EID != "" {
			b = append(b, 0x63, 'e', 'i', 'd')
			b = canon.AppendHead(b, 3, uint64(len(r.EID)))
			b = append(b, r.EID...)
		}
		b = append(b, 0x63, 's', 'e', 'q')
		b = canon.AppendHead(b, 0, r.Seq)
		b = append(b, 0x64, 'l', 'e', 'a', 'f', 0x58, 32)
		b = append(b, r.Leaf[:]...)
		if receipt {
			b = append(b, 0x67, 'r', 'e', 'c', 'e', 'i', 'p', 't')
			b = canon.AppendHead(b, 3, uint64(len(r.Receipt)))
			b = append(b, r.Receipt...)
		}
	}
	return b
}

// entryList turns entries into reply values: byte strings, null when missing.
func entryList(entries [][]byte) []any {
	out := make([]any, len(entries))
	for i, e := range entries {
		if e != nil {
			out[i] = e
		}
	}
	return out
}

func cmdRget(ctx context.Context, s *server.Session, req *wire.Request) (r *server.Reply, err error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	ids, single, err := oneOrMany[string](req, 1, "ids", maxBatchKeys)
	if err != nil {
		return nil, err
	}
	var release func()
	defer releaseOnError(&release, &err)
	entries, err := s.Ledger().GetMany(ctx, info.Ref(), ids, s.ReserveReply(req.Cmd, len(ids), &release))
	if err != nil {
		return nil, err
	}
	if single && entries[0] == nil {
		return nil, wire.Errorf(wire.CodeNotFound, "no record %q in chain %s", server.Truncate(ids[0], 64), info.Name)
	}
	return server.HeldReply(release, entryList(entries)), nil
}

func cmdRabs(ctx context.Context, s *server.Session, req *wire.Request) (r *server.Reply, err error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	seqs, single, err := oneOrMany[int64](req, 1, "seqs", maxBatchKeys)
	if err != nil {
		return nil, err
	}
	if single {
		// One entry is at most a record (64 KiB) and a few fields.
		e, _, err := s.Ledger().Abs(ctx, info.Ref(), seqs[0])
		if err != nil {
			return nil, err
		}
		return server.OK(entryList([][]byte{e}))
	}
	var release func()
	defer releaseOnError(&release, &err)
	entries, err := s.Ledger().AbsMany(ctx, info.Ref(), seqs, s.ReserveReply(req.Cmd, len(seqs), &release))
	if err != nil {
		return nil, err
	}
	return server.HeldReply(release, entryList(entries)), nil
}

// releaseOnError gives back a reply budget taken by a handler that then
// failed: only a reply that is sent releases it later.
func releaseOnError(release *func(), err *error) {
	if *err != nil && *release != nil {
		(*release)()
	}
}

func cmdRhave(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	ids, _, err := oneOrMany[string](req, 1, "ids", maxBatchKeys)
	if err != nil {
		return nil, err
	}
	have, err := s.Ledger().Have(ctx, info.Ref(), ids)
	if err != nil {
		return nil, err
	}
	return server.OK(have)
}

func cmdRsize(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	return server.OK(info.Size)
}

func cmdRlist(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	from, err := req.Uint(1, "from")
	if err != nil {
		return nil, err
	}
	to, err := req.Uint(2, "to")
	if err != nil {
		return nil, err
	}
	limit := uint64(ledger.DefaultListLimit)
	if req.NArgs() >= 4 && !req.IsNull(3) {
		if limit, err = req.Uint(3, "limit"); err != nil {
			return nil, err
		}
		if limit == 0 || limit > maxListLimit {
			return nil, wire.Errorf(wire.CodeLimit, "rlist: limit must be 1 to %d", maxListLimit)
		}
	}
	var cursor []byte
	if req.NArgs() == 5 && !req.IsNull(4) {
		if cursor, err = req.Bytes(4, "cursor"); err != nil {
			return nil, err
		}
	}
	ids, next, err := s.Ledger().List(ctx, info.Ref(), from, to, int(limit), cursor)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	if next == nil {
		return server.OK(ids, nil)
	}
	return server.OK(ids, next)
}

func cmdRcount(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	from, err := req.Uint(1, "from")
	if err != nil {
		return nil, err
	}
	to, err := req.Uint(2, "to")
	if err != nil {
		return nil, err
	}
	n, err := s.Ledger().Count(ctx, info.Ref(), from, to)
	if err != nil {
		return nil, err
	}
	return server.OK(n)
}

func cmdRproof(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	var seq uint64
	raw := req.Args[1]
	switch {
	case len(raw) > 0 && raw[0]>>5 == 3: // text: a record id
		id, _ := req.Text(1, "id")
		if _, seq, err = s.Ledger().Get(ctx, info.Ref(), id); err != nil {
			return nil, err
		}
	case len(raw) > 0 && raw[0]>>5 == 0:
		seq, _ = req.Uint(1, "seq")
	default:
		return nil, wire.Errorf(wire.CodeProto, "rproof: give a record id (text) or a seq (unsigned integer)")
	}
	var size uint64
	if req.NArgs() == 3 {
		if size, err = req.Uint(2, "tree size"); err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, wire.Errorf(wire.CodeInvalid, "rproof: tree size must be at least 1")
		}
	}
	receipt, err := s.Ledger().Proof(ctx, info.Ref(), seq, size)
	if err != nil {
		return nil, err
	}
	return server.OK(string(receipt))
}

func cmdRcons(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	oldSize, err := req.Uint(1, "old size")
	if err != nil {
		return nil, err
	}
	var newSize uint64
	if req.NArgs() == 3 {
		if newSize, err = req.Uint(2, "new size"); err != nil {
			return nil, err
		}
	}
	hashes, cp, err := s.Ledger().Consistency(ctx, info.Ref(), oldSize, newSize)
	if err != nil {
		return nil, err
	}
	if hashes == nil {
		hashes = [][]byte{}
	}
	return server.OK(hashes, string(cp))
}

func cmdRhead(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	cp, err := s.Ledger().Head(ctx, info.Ref())
	if err != nil {
		return nil, err
	}
	return server.OK(string(cp))
}

func cmdRcheck(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	arg, err := req.Text(0, "chain")
	if err != nil {
		return nil, err
	}
	what := "all"
	if req.NArgs() == 2 {
		if what, err = req.Text(1, "check"); err != nil {
			return nil, err
		}
		switch what {
		case "sum", "link", "pow", "sig", "tree", "all":
		default:
			return nil, wire.Errorf(wire.CodeInvalid, "rcheck: want sum, link, pow, sig, tree or all, not %q", server.Truncate(what, 32))
		}
	}
	if _, err := s.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	checked, faults, err := s.Ledger().Check(ctx, arg, what)
	if err != nil {
		return nil, err
	}
	errs := make([]map[string]any, len(faults))
	for i, f := range faults {
		errs[i] = map[string]any{"seq": f.Seq, "what": f.What}
	}
	return server.OK(map[string]any{"checked": checked, "errors": errs})
}

func cmdChains(ctx context.Context, s *server.Session, _ *wire.Request) (*server.Reply, error) {
	var out []map[string]any
	for _, info := range s.Ledger().Chains() {
		// Listed when visible: readable, or visible without read (perm).
		_, err := s.Accounts().Access(ctx, s.Principal(), chainFacts(info.Ref(), info), auth.RightRead)
		switch {
		case errors.Is(err, wire.ErrNotFound):
			continue
		case err != nil && !errors.Is(err, wire.ErrPerm):
			return nil, err
		}
		var schema any
		if info.Schema != "" {
			schema = info.Schema
		}
		authority := info.Authority
		if authority == nil {
			authority = []string{}
		}
		out = append(out, map[string]any{"name": info.Name, "origin": info.Origin, "size": info.Size, "public": info.Public,
			"pow_bits": uint64(info.PoWBits), "schema": schema, "authority": authority})
	}
	if out == nil {
		out = []map[string]any{}
	}
	return server.OK(out)
}

func cmdMkchain(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	var o struct {
		Public    *bool     `cbor:"public"`
		PoWBits   *uint64   `cbor:"pow_bits"`
		Schema    *string   `cbor:"schema"`
		Authority *[]string `cbor:"authority"`
	}
	if err := req.Decode(1, "options {public, pow_bits, schema, authority}", &o); err != nil {
		return nil, err
	}
	var authority []string
	if o.Authority != nil {
		authority = *o.Authority
		if len(authority) > apps.MaxAuthority {
			return nil, wire.Errorf(wire.CodeInvalid, "mkchain: at most %d authority keys, got %d", apps.MaxAuthority, len(authority))
		}
	}
	if _, err := s.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	public := o.Public != nil && *o.Public
	bits := uint64(0)
	if o.PoWBits != nil {
		bits = *o.PoWBits
	}
	if bits > 32 {
		return nil, wire.Errorf(wire.CodeInvalid, "mkchain: pow_bits must be 0 to 32")
	}
	schema := ""
	if o.Schema != nil {
		schema = *o.Schema
	}
	if err := s.Ledger().CreateChain(ctx, name, public, int(bits), schema, authority...); err != nil {
		return nil, err
	}
	s.Audit(ctx, "mkchain", name, "ok")
	return server.OK()
}

func cmdGrant(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return changeRight(ctx, s, req, true)
}

func cmdRevoke(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return changeRight(ctx, s, req, false)
}

func changeRight(ctx context.Context, s *server.Session, req *wire.Request, grant bool) (*server.Reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	chainArg, err := req.Text(1, "chain")
	if err != nil {
		return nil, err
	}
	right, err := req.Text(2, "right")
	if err != nil {
		return nil, err
	}
	if _, err := s.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	info, err := s.Ledger().Chain(chainArg)
	if err != nil {
		return nil, err
	}
	if info.Mirror {
		return nil, wire.Errorf(wire.CodeInvalid, "chain %s is mirrored from another home: rights on mirrored chains cannot be granted yet (public ones need none to read; admins read private ones)", info.Ref())
	}
	if grant && info.ServerWritten && auth.Right(right) == auth.RightWrite {
		return nil, wire.Errorf(wire.CodeInvalid, "chain %s is written only by the server; write cannot be granted", info.Name)
	}
	if _, err := s.Accounts().Get(ctx, name); err != nil {
		return nil, err
	}
	if grant {
		err = s.Accounts().Grant(ctx, name, info.Name, auth.Right(right))
	} else {
		err = s.Accounts().Revoke(ctx, name, info.Name, auth.Right(right))
	}
	if err != nil {
		return nil, err
	}
	s.Audit(ctx, req.Cmd+" "+right+" "+info.Name, name, "ok")
	return server.OK()
}

// maxViewArgs bounds the `view` arguments map: every view takes at most a
// few small arguments (a name, an id, from, limit).
const maxViewArgs = 1024

func cmdView(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	info, err := readableChain(ctx, s, req)
	if err != nil {
		return nil, err
	}
	name, err := req.Text(1, "view name")
	if err != nil {
		return nil, err
	}
	if len(name) > 64 {
		return nil, wire.Errorf(wire.CodeInvalid, "view: no view %.64q...", name)
	}
	args := map[string]any{}
	if req.NArgs() == 3 && !req.IsNull(2) {
		raw := req.Args[2]
		if len(raw) > maxViewArgs {
			return nil, wire.Errorf(wire.CodeLimit, "view: the arguments take at most %d bytes", maxViewArgs)
		}
		if len(raw) == 0 || raw[0]>>5 != 5 {
			return nil, wire.Errorf(wire.CodeProto, "view: the arguments must be a map")
		}
		var v any
		if err := canon.Unmarshal(raw, &v); err != nil {
			return nil, wire.Errorf(wire.CodeProto, "view: bad arguments: %v", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, wire.Errorf(wire.CodeProto, "view: the arguments must be a map with text keys")
		}
		args = m
	}
	b, size, err := s.Ledger().View(ctx, info.Ref(), name, args)
	if err != nil {
		return nil, err
	}
	return server.OK(wire.RawMessage(b), size)
}
