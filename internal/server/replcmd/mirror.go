package replcmd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// The mirroring commands (docs/protocol.md §11, "Mirroring (decision)"):
// rentries reads entries as stored, ihave tells how much of a chain this
// server holds, rpush stores a batch of a home's chain through
// ledger.Ledger.Mirror and cosigns its checkpoint.

// Bounds of the mirroring commands, checked before anything is allocated.
const (
	maxBatchEntries   = ledger.MaxMirrorEntries // entries of one rpush or rentries answer
	maxBatchBytes     = ledger.MaxMirrorBytes   // bytes of entries of one rpush or rentries answer
	maxProofHashes    = 128                     // hashes of an rpush consistency proof
	maxCheckpointText = 64 << 10                // bytes of an rpush checkpoint note
	// anonEntryBytes is where rentries cuts an answer to a connection
	// that is not logged in: below the 4 MiB such a reply may hold, with
	// room for the heads of 1,000 byte strings.
	anonEntryBytes = 4<<20 - 16<<10
	// maxEntrySize bounds one stored entry: a record of at most
	// verify.MaxRecordSize bytes in a C2SP tlog-tiles entry.
	maxEntrySize = 65535
)

func cmdRentries(ctx context.Context, s *server.Session, req *wire.Request) (r *server.Reply, err error) {
	arg, err := req.Text(0, "chain")
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
	info, err := s.Ledger().Chain(arg)
	if err != nil {
		return nil, err
	}
	if err := mayReadEntries(ctx, s, arg, info); err != nil {
		return nil, err
	}
	switch {
	case from > to:
		return nil, wire.Errorf(wire.CodeInvalid, "rentries: from %d is after to %d", from, to)
	case from > info.Size:
		return nil, wire.Errorf(wire.CodeNotFound, "rentries: chain %s holds %d entries, none from %d", arg, info.Size, from)
	}
	to = min(to, info.Size, from+maxBatchEntries)
	if from == to {
		return server.OK([][]byte{})
	}
	capBytes := maxBatchBytes
	if s.State() != cmdspec.Verified {
		capBytes = anonEntryBytes
	}
	var release func()
	defer releaseOnError(&release, &err)
	entries, err := readEntries(ctx, s, req.Cmd, info.Ref(), from, to, capBytes, &release)
	if err != nil {
		return nil, err
	}
	return server.HeldReply(release, entries), nil
}

// mayReadEntries is rentries' access check: the read right (everyone on a
// public chain), or replicate on the chain's name, which is what a peer
// account holds (docs/protocol.md §11). Without either, the answer of the
// read check stands (ERR notfound for a chain the connection cannot see).
func mayReadEntries(ctx context.Context, s *server.Session, arg string, info ledger.ChainInfo) error {
	facts := auth.ChainFacts{Arg: arg, Name: info.Ref(), Public: info.Public, ServerWritten: info.ServerWritten, Mirror: info.Mirror}
	_, readErr := s.Accounts().Access(ctx, s.Principal(), facts, auth.RightRead)
	if readErr == nil {
		return nil
	}
	var we *wire.Error
	if !errors.As(readErr, &we) || (we.Code != wire.CodePerm && we.Code != wire.CodeNotFound) {
		return readErr
	}
	if err := requireReplicate(ctx, s, arg, info.Name); err != nil {
		return readErr
	}
	return nil
}

// readEntries reads entries [from, to) of chain, at most capBytes of them
// in all (at least one), taking the reply budget chunk by chunk; *release
// gives it all back. Every entry is at most maxEntrySize bytes, so a chunk
// of k entries is read only when k of the largest still fit.
//
// It reads through AbsMany, not Ledger.Entries, because AbsMany takes the
// reply budget before it copies anything: many anonymous rentries at once
// must not hold more than the budget allows. Chunks of a later snapshot
// are consistent with the first: entries never change once stored.
func readEntries(ctx context.Context, s *server.Session, cmd, chain string, from, to uint64, capBytes int, release *func()) ([][]byte, error) {
	out := make([][]byte, 0, to-from)
	var releases []func()
	*release = func() {
		for _, r := range releases {
			r()
		}
	}
	total := 0
	for seq := from; seq < to; {
		k := uint64(max((capBytes-total)/maxEntrySize, 1))
		k = min(k, to-seq, 100)
		seqs := make([]int64, k)
		for i := range seqs {
			seqs[i] = int64(seq) + int64(i)
		}
		var rel func()
		got, err := s.Ledger().AbsMany(ctx, chain, seqs, s.ReserveReply(cmd, len(seqs), &rel))
		if rel != nil {
			releases = append(releases, rel)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range got {
			if e == nil {
				return out, nil // the chain is shorter in this snapshot
			}
			if len(out) > 0 && total+len(e) > capBytes {
				return out, nil
			}
			out = append(out, e)
			total += len(e)
		}
		seq += k
	}
	return out, nil
}

// releaseOnError gives back a reply budget taken by a handler that then
// failed: only a reply that is sent releases it later.
func releaseOnError(release *func(), err *error) {
	if *err != nil && *release != nil {
		(*release)()
	}
}

// requireReplicate checks that the connection holds replicate on the chain
// name (a plain name: the right `ihost add` grants a peer account on the
// chains of its entry, docs/protocol.md §11), or is an admin. It answers
// ERR perm otherwise, whether or not such a chain is held here.
func requireReplicate(ctx context.Context, s *server.Session, arg, name string) error {
	facts := auth.ChainFacts{Arg: arg, Name: name}
	g, err := s.Accounts().Access(ctx, s.Principal(), facts, auth.RightReplicate)
	if err == nil && g.Has(auth.RightReplicate) {
		return nil
	}
	var we *wire.Error
	if err != nil && !errors.As(err, &we) {
		return err
	}
	return wire.Errorf(wire.CodePerm, "%s: no replicate right on chain %s", s.Account(), name)
}

// originAndChain decodes and checks the origin (a server-id) and chain (a
// name) arguments of ihave and rpush.
func originAndChain(req *wire.Request) (origin, chain string, err error) {
	if origin, err = req.Text(0, "origin"); err != nil {
		return "", "", err
	}
	if chain, err = req.Text(1, "chain"); err != nil {
		return "", "", err
	}
	if !verify.ValidServerID(origin) {
		return "", "", wire.Errorf(wire.CodeInvalid, "%s: origin %q is not a server-id (32 lowercase hex digits)", req.Cmd, server.Truncate(origin, 64))
	}
	if !verify.ValidChainName(chain) {
		return "", "", wire.Errorf(wire.CodeInvalid, "%s: bad chain name %q", req.Cmd, server.Truncate(chain, 64))
	}
	return origin, chain, nil
}

// chainRef is how the ledger names chain of home origin.
func chainRef(s *server.Session, origin, chain string) string {
	if origin == s.ServerID() {
		return chain
	}
	return verify.OriginLine(origin, chain)
}

func cmdIhave(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	origin, chain, err := originAndChain(req)
	if err != nil {
		return nil, err
	}
	theirs, err := req.Uint(2, "size")
	if err != nil {
		return nil, err
	}
	ref := chainRef(s, origin, chain)
	if err := requireReplicate(ctx, s, ref, chain); err != nil {
		return nil, err
	}
	info, err := s.Ledger().Chain(ref)
	if err != nil {
		return nil, err
	}
	head, err := s.Ledger().Head(ctx, ref)
	if err != nil {
		return nil, err
	}
	text, _, ok := strings.Cut(string(head), "\n\n")
	if !ok {
		return nil, fmt.Errorf("ihave: the head of %s is not a signed note", ref)
	}
	cp, err := verify.ParseCheckpoint(text + "\n")
	if err != nil {
		return nil, fmt.Errorf("ihave: the head of %s: %w", ref, err)
	}
	hops := uint64(0)
	if origin != s.ServerID() {
		// A mirror is at least one hop from the home; 1 is also the answer
		// without replication workers.
		hops = 1
		if repl := s.Replication(); repl != nil {
			hops = max(repl.Hops(origin, chain), 1)
		}
	}
	authority := info.Authority
	if authority == nil {
		authority = []string{}
	}
	desc := map[string]any{"hops": hops, "public": info.Public, "pow_bits": uint64(info.PoWBits), "schema": info.Schema, "authority": authority}
	s.Log().Debug("ihave", "origin", origin, "chain", chain, "theirs", theirs, "mine", cp.Size)
	return server.OK(cp.Size, string(head), desc)
}

func cmdRpush(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	origin, chain, err := originAndChain(req)
	if err != nil {
		return nil, err
	}
	b, hops, desc, err := decodePush(req)
	if err != nil {
		return nil, err
	}
	if origin == s.ServerID() {
		return nil, wire.Errorf(wire.CodeInvalid, "rpush: chain %s is homed here; a server does not mirror its own chains", chain)
	}
	acct, err := s.Accounts().Get(ctx, s.Account())
	if err != nil && !errors.Is(err, wire.ErrNotFound) {
		return nil, err
	}
	if err != nil || !acct.Peer || s.State() != cmdspec.Verified {
		return nil, wire.Errorf(wire.CodePerm, "rpush is for peer accounts signed in with pauth")
	}
	// From here on every outcome of a peer's push is reported to the
	// replication workers (a chain not held: so that they pull it).
	size, err := mirrorPush(ctx, s, origin, chain, b, desc)
	if repl := s.Replication(); repl != nil {
		repl.Pushed(s.Account(), origin, chain, hops, size, err)
	}
	if err != nil {
		return nil, err
	}
	ref := verify.OriginLine(origin, chain)
	text, _, _ := strings.Cut(string(b.Checkpoint), "\n\n")
	line, err := verify.CosignLine(text+"\n", verify.CosignatureSigner(s.ServerID(), s.Identity().Key, nil))
	if err != nil {
		return nil, fmt.Errorf("rpush: cosign the checkpoint of %s: %w", ref, err)
	}
	s.Log().Info("mirror batch stored", "origin", origin, "chain", chain, "from", b.From, "entries", len(b.Entries), "size", size, "hops", hops)
	return server.OK(size, line)
}

// mirrorPush checks the peer's right and the home's keys and stores the
// batch b of chain (origin, chain) with Ledger.Mirror, creating the chain
// from desc when it is not held. It returns the size held afterwards.
func mirrorPush(ctx context.Context, s *server.Session, origin, chain string, b ledger.MirrorBatch, desc *store.ChainMeta) (uint64, error) {
	ref := verify.OriginLine(origin, chain)
	if err := requireReplicate(ctx, s, ref, chain); err != nil {
		return 0, err
	}
	peers := s.Peers()
	if peers == nil {
		return 0, errors.New("rpush: this server was built without a peer table")
	}
	keys, err := peers.HomeKeys(ctx, origin)
	if err != nil {
		return 0, err
	}
	if keys, err = replic.FollowRotations(ctx, s.Ledger(), origin, keys); err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, wire.Errorf(wire.CodePerm, "rpush: no pinned key for home %s", origin)
	}
	info, err := s.Ledger().Chain(ref)
	switch {
	case err == nil:
		b.Meta = store.ChainMeta{Origin: info.Origin, Name: info.Name, Public: info.Public, PoWBits: info.PoWBits,
			Schema: info.Schema, Authority: info.Authority, ServerWritten: info.ServerWritten}
	case desc != nil:
		desc.Origin, desc.Name = origin, chain
		b.Meta = *desc
	default:
		return 0, err
	}
	b.HomeKeys = keys
	return s.Ledger().Mirror(ctx, b)
}

// decodePush decodes rpush's arguments after origin and chain: from,
// [entries], checkpoint, [proof], [hops], [desc], bounding every one from
// its CBOR head before it is copied.
func decodePush(req *wire.Request) (b ledger.MirrorBatch, hops uint64, desc *store.ChainMeta, err error) {
	if b.From, err = req.Uint(2, "from"); err != nil {
		return b, 0, nil, err
	}
	if b.Entries, err = byteStrings(req, 3, "entries", maxBatchEntries, maxBatchBytes, 0); err != nil {
		return b, 0, nil, err
	}
	raw := req.Args[4]
	n, _, ok := cborHead(raw, 3)
	if !ok {
		return b, 0, nil, wire.Errorf(wire.CodeProto, "rpush: checkpoint must be a text string")
	}
	if n > maxCheckpointText {
		return b, 0, nil, wire.Errorf(wire.CodeLimit, "rpush: a checkpoint of %d bytes; the limit is %d", n, maxCheckpointText)
	}
	cp, err := req.Text(4, "checkpoint")
	if err != nil {
		return b, 0, nil, err
	}
	b.Checkpoint = []byte(cp)
	if b.Proof, err = byteStrings(req, 5, "proof", maxProofHashes, maxProofHashes*32, 32); err != nil {
		return b, 0, nil, err
	}
	if req.NArgs() > 6 {
		if hops, err = req.Uint(6, "hops"); err != nil {
			return b, 0, nil, err
		}
	}
	if req.NArgs() > 7 {
		if desc, err = decodeDesc(req, 7); err != nil {
			return b, 0, nil, err
		}
	}
	return b, hops, desc, nil
}

// byteStrings decodes argument i as an array of byte strings, refusing
// with ERR limit more than maxN items or maxBytes bytes in all, before
// copying any; size, when not 0, is the length each must have (ERR
// invalid otherwise).
func byteStrings(req *wire.Request, i int, what string, maxN, maxBytes, size int) ([][]byte, error) {
	raw := req.Args[i]
	n, rest, ok := cborHead(raw, 4)
	if !ok {
		return nil, wire.Errorf(wire.CodeProto, "%s: %s must be an array of byte strings", req.Cmd, what)
	}
	if n > uint64(maxN) {
		return nil, wire.Errorf(wire.CodeLimit, "%s: at most %d %s in one request, got %d", req.Cmd, maxN, what, n)
	}
	total := uint64(0)
	for k := range n {
		l, after, ok := cborHead(rest, 2)
		if !ok || l > uint64(len(after)) {
			return nil, wire.Errorf(wire.CodeProto, "%s: %s %d must be a byte string", req.Cmd, what, k)
		}
		if size != 0 && l != uint64(size) {
			return nil, wire.Errorf(wire.CodeInvalid, "%s: %s %d has %d bytes, want %d", req.Cmd, what, k, l, size)
		}
		if total += l; total > uint64(maxBytes) {
			return nil, wire.Errorf(wire.CodeLimit, "%s: over %d bytes of %s in one request", req.Cmd, maxBytes, what)
		}
		rest = after[l:]
	}
	if len(rest) != 0 {
		return nil, wire.Errorf(wire.CodeProto, "%s: %s has trailing bytes", req.Cmd, what)
	}
	out := make([][]byte, 0, n)
	if err := req.Decode(i, what, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// cborHead reads the head of a CBOR item of major type major with a
// definite length: its argument and what follows the head.
func cborHead(b []byte, major byte) (n uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return 0, nil, false
	}
	info := b[0] & 0x1f
	switch {
	case info < 24:
		return uint64(info), b[1:], true
	case info <= 27:
		w := 1 << (info - 24)
		if len(b) < 1+w {
			return 0, nil, false
		}
		for _, c := range b[1 : 1+w] {
			n = n<<8 | uint64(c)
		}
		return n, b[1+w:], true
	}
	return 0, nil, false
}

// decodeDesc decodes rpush's chain description {public, pow_bits, schema,
// authority}: every key optional, none other allowed (ERR invalid), each of
// its type (ERR proto), pow_bits at most verify.MaxPoWBits, schema known
// or empty, authority keys only with a schema and valid (ERR invalid).
func decodeDesc(req *wire.Request, i int) (*store.ChainMeta, error) {
	if _, _, ok := cborHead(req.Args[i], 5); !ok {
		return nil, wire.Errorf(wire.CodeProto, "rpush: desc must be a map {public, pow_bits, schema, authority}")
	}
	var keys map[string]wire.RawMessage
	if err := req.Decode(i, "desc {public, pow_bits, schema, authority}", &keys); err != nil {
		return nil, err
	}
	types := map[string]byte{"public": 7, "pow_bits": 0, "schema": 3, "authority": 4}
	var f struct {
		Public    bool     `cbor:"public"`
		PoWBits   uint64   `cbor:"pow_bits"`
		Schema    string   `cbor:"schema"`
		Authority []string `cbor:"authority"`
	}
	for k, v := range keys {
		want, known := types[k]
		if !known {
			return nil, wire.Errorf(wire.CodeInvalid, "rpush: desc: unknown field %q (public, pow_bits, schema, authority)", server.Truncate(k, 32))
		}
		if len(v) == 0 || v[0]>>5 != want {
			return nil, wire.Errorf(wire.CodeProto, "rpush: desc: %s has the wrong type", k)
		}
		if k == "authority" {
			if n, _, ok := cborHead(v, 4); !ok || n > apps.MaxAuthority {
				return nil, wire.Errorf(wire.CodeInvalid, "rpush: desc: at most %d authority keys", apps.MaxAuthority)
			}
		}
		target := map[string]any{"public": &f.Public, "pow_bits": &f.PoWBits, "schema": &f.Schema, "authority": &f.Authority}[k]
		if err := wire.Unmarshal(v, target); err != nil {
			return nil, wire.Errorf(wire.CodeProto, "rpush: desc: %s has the wrong type", k)
		}
	}
	switch {
	case f.PoWBits > verify.MaxPoWBits:
		return nil, wire.Errorf(wire.CodeInvalid, "rpush: desc: pow_bits %d not in [0, %d]", f.PoWBits, verify.MaxPoWBits)
	case len(f.Authority) > 0 && f.Schema == "":
		return nil, wire.Errorf(wire.CodeInvalid, "rpush: desc: authority keys need a schema")
	}
	if f.Schema != "" {
		if _, err := apps.For(f.Schema); err != nil {
			return nil, wire.Errorf(wire.CodeInvalid, "rpush: desc: schema %q is not one of vote, donation, resource", server.Truncate(f.Schema, 32))
		}
	}
	if _, err := apps.ParseAuthority(f.Authority); err != nil {
		return nil, wire.Errorf(wire.CodeInvalid, "rpush: desc: %v", err)
	}
	m := &store.ChainMeta{Public: f.Public, PoWBits: int(f.PoWBits), Schema: f.Schema}
	if len(f.Authority) > 0 {
		m.Authority = f.Authority
	}
	return m, nil
}
