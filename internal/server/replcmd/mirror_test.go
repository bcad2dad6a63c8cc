package replcmd_test

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

const (
	homePeer = "peer-a" // A's peer account at B
	homePass = "peer-a-password"
)

// mirrorPair is home A and mirror B: A homes the private chain c (pow 0),
// B has A as its home for c, with peer account peer-a pinned to A's key.
type mirrorPair struct {
	a, b       *testenv.Server
	aID, bID   *secure.Identity
	aAdmin     *client.Client
	bAdmin     *client.Client
	pusher     *client.Client // at B as peer-a, signed in with pauth by A's key
	chainOfA   string         // vserv/<A>/c
	entriesOfA func(from, to uint64) [][]byte
}

func newMirrorPair(t *testing.T) *mirrorPair {
	t.Helper()
	p := &mirrorPair{a: testenv.StartTwoFA(t), b: testenv.StartTwoFA(t)}
	p.aAdmin, p.bAdmin = p.a.AdminClient(), p.b.AdminClient()
	var err error
	if p.aID, _, err = secure.LoadOrCreateIdentity(p.a.DataRoot); err != nil {
		t.Fatal(err)
	}
	if p.bID, _, err = secure.LoadOrCreateIdentity(p.b.DataRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := p.aAdmin.Call(ctx, "mkchain", "c", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	p.b.AddUser(homePeer, homePass, false)
	if err := p.bAdmin.AddHost(ctx, p.a.Addr, client.HostSpec{Role: "home", Key: secure.PublicKeyText(p.aID.Public()),
		Chains: []string{"c"}, Account: homePeer, User: "peer-b", Pass: "peer-b-password"}); err != nil {
		t.Fatalf("ihost add home: %v", err)
	}
	p.pusher = peerAt(t, p.b, p.aID.Key)
	p.chainOfA = verify.OriginLine(p.aID.ServerID, "c")
	p.entriesOfA = func(from, to uint64) [][]byte {
		t.Helper()
		e, err := p.aAdmin.Entries(ctx, "c", from, to)
		if err != nil {
			t.Fatalf("rentries c %d %d at A: %v", from, to, err)
		}
		return e
	}
	return p
}

// peerAt logs in at srv as peer-a and signs in with key.
func peerAt(t *testing.T, srv *testenv.Server, key ed25519.PrivateKey) *client.Client {
	t.Helper()
	c, owed := testenv.LoginPassword(t, srv, homePeer, homePass)
	if !owed {
		t.Fatal("a peer account's password alone verified")
	}
	if err := c.PeerAuth(ctx, key); err != nil {
		t.Fatalf("pauth: %v", err)
	}
	return c
}

// put appends n records to A's chain c and returns A's head.
func (p *mirrorPair) put(t *testing.T, n int) string {
	t.Helper()
	testenv.Put(t, p.aAdmin, "c", false, testenv.Numbered(t, "e", 0, n)...)
	head, err := p.aAdmin.Head(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	return head
}

// batch is the push of A's entries [from, to) of c, with A's checkpoint
// of size to and the consistency proof from from.
func (p *mirrorPair) batch(t *testing.T, from, to uint64) client.PushBatch {
	t.Helper()
	proof, cp, err := p.aAdmin.Consistency(ctx, "c", from, to)
	if err != nil {
		t.Fatalf("rcons c %d %d at A: %v", from, to, err)
	}
	return client.PushBatch{Origin: p.aID.ServerID, Chain: "c", From: from, Entries: p.entriesOfA(from, to), Checkpoint: cp, Proof: proof}
}

var descC = &client.ChainDesc{Public: false, Schema: "", Authority: []string{}}

func noteText(t *testing.T, note string) string {
	t.Helper()
	text, _, ok := strings.Cut(note, "\n\n")
	if !ok {
		t.Fatalf("not a signed note: %q", note)
	}
	return text + "\n"
}

func TestRpushStoresTheHomesEntriesAndCosigns(t *testing.T) {
	p := newMirrorPair(t)
	p.put(t, 3)
	first := p.batch(t, 0, 3)

	// Not held, no description: notfound (the workers will pull it).
	_, _, err := p.pusher.Push(ctx, first)
	testenv.WantCode(t, err, wire.CodeNotFound, "rpush of a chain not held, without desc")

	first.Desc = descC
	size, line, err := p.pusher.Push(ctx, first)
	if err != nil {
		t.Fatalf("first rpush with desc: %v", err)
	}
	if size != 3 {
		t.Fatalf("rpush: size %d, want 3", size)
	}
	if _, err := verify.VerifyCosignatureLine(noteText(t, first.Checkpoint), line, verify.WitnessName(p.bID.ServerID), p.bID.Public()); err != nil {
		t.Fatalf("B's cosignature line %q does not verify: %v", line, err)
	}

	// A second batch with a consistency proof from 3 to 5; its desc is
	// ignored now that the chain is held.
	head := p.put(t, 2)
	second := p.batch(t, 3, 5)
	second.Desc = &client.ChainDesc{Public: true}
	if size, _, err := p.pusher.Push(ctx, second); err != nil || size != 5 {
		t.Fatalf("second rpush: size %d, %v; want 5", size, err)
	}

	// B serves A's chain by full origin, bytes as A's.
	bHead, err := p.bAdmin.Head(ctx, p.chainOfA)
	if err != nil {
		t.Fatal(err)
	}
	if bHead != head {
		t.Fatalf("rhead at B:\n%s\nat A:\n%s", bHead, head)
	}
	seqs := []int64{0, 1, 2, 3, 4}
	aEntries, err := p.aAdmin.AbsRecords(ctx, "c", seqs)
	if err != nil {
		t.Fatal(err)
	}
	bEntries, err := p.bAdmin.AbsRecords(ctx, p.chainOfA, seqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range seqs {
		if !bytes.Equal(aEntries[i], bEntries[i]) {
			t.Fatalf("rabs %d: B's entry differs from A's", i)
		}
	}
	for _, seq := range []uint64{0, 4} {
		aProof, err := p.aAdmin.Proof(ctx, "c", client.BySeq(seq), 5)
		if err != nil {
			t.Fatal(err)
		}
		bProof, err := p.bAdmin.Proof(ctx, p.chainOfA, client.BySeq(seq), 5)
		if err != nil {
			t.Fatalf("rproof %d at B: %v", seq, err)
		}
		if aProof != bProof {
			t.Fatalf("rproof %d at B:\n%s\nat A:\n%s", seq, bProof, aProof)
		}
	}
	if _, err := p.bAdmin.Call(ctx, "rput", p.chainOfA, wire.RawMessage(testenv.NewRecord(t, map[string]any{"type": "x"}))); err == nil {
		t.Fatal("rput to a mirrored chain succeeded")
	}

	// ihave: B answers for A's chain as a mirror (hops > 0) with A's head,
	// A for its own (hops 0).
	theirs, cp, desc, err := p.pusher.IHave(ctx, p.aID.ServerID, "c", 2)
	if err != nil {
		t.Fatalf("ihave at B: %v", err)
	}
	if theirs != 5 || cp != head || desc.Hops == 0 || desc.Public || desc.PoWBits != 0 || desc.Schema != "" || len(desc.Authority) != 0 {
		t.Fatalf("ihave at B: %d %q %+v", theirs, cp, desc)
	}
	theirs, cp, desc, err = p.aAdmin.IHave(ctx, p.aID.ServerID, "c", 9)
	if err != nil || theirs != 5 || cp != head || desc.Hops != 0 {
		t.Fatalf("ihave at A: %d %q %+v %v", theirs, cp, desc, err)
	}
	// rentries by full origin at B (peer-a holds replicate on c there).
	got, err := p.pusher.Entries(ctx, p.chainOfA, 1, 5)
	if err != nil || len(got) != 4 || !bytes.Equal(got[0], aEntries[1]) {
		t.Fatalf("rentries at B: %d entries, %v", len(got), err)
	}
}

func TestRpushRetransmissionForkAndRefusals(t *testing.T) {
	p := newMirrorPair(t)
	p.put(t, 4)
	all := p.batch(t, 0, 4)
	all.Desc = descC
	if _, _, err := p.pusher.Push(ctx, all); err != nil {
		t.Fatal(err)
	}
	// Held entries again: OK, nothing changes.
	again := p.batch(t, 0, 4)
	if size, _, err := p.pusher.Push(ctx, again); err != nil || size != 4 {
		t.Fatalf("retransmission: size %d, %v; want 4, OK", size, err)
	}
	part := p.batch(t, 1, 4)
	part.Proof = nil
	part.From, part.Entries = 2, part.Entries[1:]
	if size, _, err := p.pusher.Push(ctx, part); err != nil || size != 4 {
		t.Fatalf("retransmission of [2, 4): size %d, %v; want 4, OK", size, err)
	}

	// Another entry at a held seq: a fork, refused and kept.
	forked := p.batch(t, 0, 4)
	forked.Entries[1] = bytes.Clone(forked.Entries[1])
	forked.Entries[1][len(forked.Entries[1])-1] ^= 1
	_, _, err := p.pusher.Push(ctx, forked)
	testenv.WantCode(t, err, wire.CodeConflict, "rpush of another entry at a held seq")
	testenv.WaitLog(t, p.b, "fork: a home offered a history inconsistent")

	// The checkpoint's signature broken, or by another key.
	p.put(t, 1)
	next := p.batch(t, 4, 5)
	text := noteText(t, next.Checkpoint)
	sig := []byte(next.Checkpoint[len(text)+1:])
	sig[len(sig)-5] ^= 1
	bad := next
	bad.Checkpoint = text + "\n" + string(sig)
	_, _, err = p.pusher.Push(ctx, bad)
	testenv.WantCode(t, err, wire.CodeInvalid, "rpush with a broken checkpoint signature")
	_, other, _ := peerKey(t)
	byOther := next
	byOther.Checkpoint = signCheckpoint(t, text, p.aID.ServerID, other)
	_, _, err = p.pusher.Push(ctx, byOther)
	testenv.WantCode(t, err, wire.CodeInvalid, "rpush with a checkpoint signed by another key")
	if size, _, err := p.pusher.Push(ctx, next); err != nil || size != 5 {
		t.Fatalf("the good batch after the refusals: size %d, %v", size, err)
	}

	// A home with no pinned key here.
	noKey := next
	noKey.Origin = strings.Repeat("ab", 16)
	_, _, err = p.pusher.Push(ctx, noKey)
	testenv.WantCode(t, err, wire.CodePerm, "rpush for a home without a pinned key")

	// A chain peer-a has no replicate right on.
	d := next
	d.Chain = "d"
	_, _, err = p.pusher.Push(ctx, d)
	testenv.WantCode(t, err, wire.CodePerm, "rpush of a chain without replicate")

	// Accounts that are not peer accounts.
	_, _, err = p.bAdmin.Push(ctx, next)
	testenv.WantCode(t, err, wire.CodePerm, "rpush from an admin")
	p.b.AddUser("ann", "ann-password-1", false)
	ann := p.b.Login("ann", "ann-password-1")
	_, _, err = ann.Push(ctx, next)
	testenv.WantCode(t, err, wire.CodePerm, "rpush from a user")
	_, err = ann.Call(ctx, "ihave", p.aID.ServerID, "c", uint64(0))
	testenv.WantCode(t, err, wire.CodePerm, "ihave from a user without replicate")
	_, err = p.pusher.Call(ctx, "ihave", p.aID.ServerID, "d", uint64(0))
	testenv.WantCode(t, err, wire.CodePerm, "ihave of a chain without replicate")
	_, err = p.bAdmin.Call(ctx, "ihave", p.aID.ServerID, "nothere", uint64(0))
	testenv.WantCode(t, err, wire.CodeNotFound, "ihave of a chain not held")
}

// signCheckpoint signs checkpoint text of serverID's chain c with key.
func signCheckpoint(t *testing.T, text, serverID string, key ed25519.PrivateKey) string {
	t.Helper()
	cp, err := verify.ParseCheckpoint(text)
	if err != nil {
		t.Fatal(err)
	}
	note, err := verify.SignCheckpoint(*cp, verify.NewNoteSigner(verify.OriginLine(serverID, "c"), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(note)
}

func TestRpushBadArguments(t *testing.T) {
	p := newMirrorPair(t)
	p.put(t, 1)
	good := p.batch(t, 0, 1)
	origin, cp := p.aID.ServerID, good.Checkpoint
	entries := good.Entries
	noProof := [][]byte{}
	badUTF8 := wire.RawMessage{0x62, 'a', 0xff}
	many := make([][]byte, 1001)
	for i := range many {
		many[i] = []byte{1}
	}
	big := make([][]byte, 129)
	for i := range big {
		big[i] = make([]byte, 65536)
	}
	proof := func(n, size int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = make([]byte, size)
		}
		return out
	}
	desc := func(m map[string]any) []any {
		return []any{origin, "c", uint64(0), entries, cp, noProof, uint64(0), m}
	}
	cases := []struct {
		name string
		args []any
		code wire.Code
	}{
		{"five arguments", []any{origin, "c", uint64(0), entries, cp}, wire.CodeProto},
		{"nine arguments", append(desc(map[string]any{}), 1), wire.CodeProto},
		{"origin not text", []any{uint64(1), "c", uint64(0), entries, cp, noProof}, wire.CodeProto},
		{"origin not UTF-8", []any{badUTF8, "c", uint64(0), entries, cp, noProof}, wire.CodeProto},
		{"origin not a server-id", []any{"vserv/x", "c", uint64(0), entries, cp, noProof}, wire.CodeInvalid},
		{"chain not text", []any{origin, []byte("c"), uint64(0), entries, cp, noProof}, wire.CodeProto},
		{"chain not UTF-8", []any{origin, badUTF8, uint64(0), entries, cp, noProof}, wire.CodeProto},
		{"chain name bad", []any{origin, "C D", uint64(0), entries, cp, noProof}, wire.CodeInvalid},
		{"from negative", []any{origin, "c", int64(-1), entries, cp, noProof}, wire.CodeProto},
		{"entries a map", []any{origin, "c", uint64(0), map[string]any{}, cp, noProof}, wire.CodeProto},
		{"entries of text", []any{origin, "c", uint64(0), []string{"x"}, cp, noProof}, wire.CodeProto},
		{"1,001 entries", []any{origin, "c", uint64(0), many, cp, noProof}, wire.CodeLimit},
		{"over 8 MiB of entries", []any{origin, "c", uint64(0), big, cp, noProof}, wire.CodeLimit},
		{"checkpoint bytes", []any{origin, "c", uint64(0), entries, []byte(cp), noProof}, wire.CodeProto},
		{"checkpoint not UTF-8", []any{origin, "c", uint64(0), entries, badUTF8, noProof}, wire.CodeProto},
		{"checkpoint over 64 KiB", []any{origin, "c", uint64(0), entries, strings.Repeat("x", 64<<10+1), noProof}, wire.CodeLimit},
		{"proof not an array", []any{origin, "c", uint64(0), entries, cp, []byte{}}, wire.CodeProto},
		{"proof of 129 hashes", []any{origin, "c", uint64(0), entries, cp, proof(129, 32)}, wire.CodeLimit},
		{"proof hash of 31 bytes", []any{origin, "c", uint64(0), entries, cp, proof(1, 31)}, wire.CodeInvalid},
		{"hops text", []any{origin, "c", uint64(0), entries, cp, noProof, "0"}, wire.CodeProto},
		{"desc null", append(desc(nil)[:7:7], nil), wire.CodeProto},
		{"desc an array", append(desc(nil)[:7:7], []string{}), wire.CodeProto},
		{"desc unknown key", desc(map[string]any{"owner": "x"}), wire.CodeInvalid},
		{"desc public text", desc(map[string]any{"public": "yes"}), wire.CodeProto},
		{"desc pow_bits 33", desc(map[string]any{"pow_bits": uint64(33)}), wire.CodeInvalid},
		{"desc pow_bits negative", desc(map[string]any{"pow_bits": int64(-1)}), wire.CodeProto},
		{"desc schema unknown", desc(map[string]any{"schema": "poll"}), wire.CodeInvalid},
		{"desc authority without schema", desc(map[string]any{"authority": []string{secure.PublicKeyText(p.aID.Public())}}), wire.CodeInvalid},
		{"desc authority not a key", desc(map[string]any{"schema": "vote", "authority": []string{"nope"}}), wire.CodeInvalid},
		{"desc authority of bytes", desc(map[string]any{"schema": "vote", "authority": [][]byte{{1}}}), wire.CodeProto},
		{"own chain", []any{p.bID.ServerID, "c", uint64(0), entries, cp, noProof}, wire.CodeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.pusher.Call(ctx, "rpush", tc.args...)
			testenv.WantCode(t, err, tc.code, "rpush with "+tc.name)
		})
	}
	// Nothing was stored: the chain is still not held.
	_, err := p.bAdmin.Head(ctx, p.chainOfA)
	testenv.WantCode(t, err, wire.CodeNotFound, "rhead at B after the refusals")
}

func TestRentriesAndIhaveAnswersAndBounds(t *testing.T) {
	t.Parallel()
	srv := testenv.StartTwoFA(t)
	admin := srv.AdminClient()
	if _, err := admin.Call(ctx, "mkchain", "c", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Call(ctx, "mkchain", "big", map[string]any{"public": true}); err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, admin, "c", false, testenv.Numbered(t, "a", 0, 1000)...)
	testenv.Put(t, admin, "c", false, testenv.Numbered(t, "b", 0, 5)...)
	pad := strings.Repeat("p", 64000)
	for range 3 {
		recs := make([][]byte, 50)
		for i := range recs {
			recs[i] = testenv.NewRecord(t, map[string]any{"type": "x", "pad": pad})
		}
		testenv.Put(t, admin, "big", false, recs...)
	}
	got, err := admin.Entries(ctx, "c", 0, 2000)
	if err != nil || len(got) != 1000 {
		t.Fatalf("rentries c 0 2000: %d entries, %v; want 1000", len(got), err)
	}
	got, err = admin.Entries(ctx, "c", 1000, 2000)
	if err != nil || len(got) != 5 {
		t.Fatalf("rentries c 1000 2000: %d entries, %v; want 5", len(got), err)
	}
	if e, _, err := verify.ParseEntry(got[4]); err != nil || e.Seq != 1004 {
		t.Fatalf("rentries c 1000 2000: the last entry is %+v, %v; want seq 1004", e, err)
	}
	got, err = admin.Entries(ctx, "c", 1005, 1005)
	if err != nil || len(got) != 0 {
		t.Fatalf("rentries from the size: %d entries, %v; want none", len(got), err)
	}
	_, err = admin.Entries(ctx, "c", 1006, 2000)
	testenv.WantCode(t, err, wire.CodeNotFound, "rentries from beyond the size")
	_, err = admin.Entries(ctx, "c", 5, 4)
	testenv.WantCode(t, err, wire.CodeInvalid, "rentries with from after to")

	// The byte cut: 150 entries of about 64 KB.
	sum := func(es [][]byte) int {
		n := 0
		for _, e := range es {
			n += len(e)
		}
		return n
	}
	got, err = admin.Entries(ctx, "big", 0, 150)
	if err != nil || len(got) == 0 || len(got) >= 150 || sum(got) > 8<<20 || sum(got)+65535 <= 8<<20 {
		t.Fatalf("rentries big 0 150: %d entries of %d bytes, %v; want a cut at 8 MiB", len(got), sum(got), err)
	}
	anon := srv.Dial()
	got, err = anon.Entries(ctx, "big", 10, 150)
	if err != nil || len(got) == 0 || sum(got) > 4<<20 || sum(got)+65535+16<<10 <= 4<<20 {
		t.Fatalf("anonymous rentries big: %d entries of %d bytes, %v; want a cut below 4 MiB", len(got), sum(got), err)
	}
	if e, _, err := verify.ParseEntry(got[0]); err != nil || e.Seq != 10 {
		t.Fatalf("anonymous rentries big 10: first entry %+v, %v", e, err)
	}
	// A private chain does not exist for an anonymous session.
	_, err = anon.Entries(ctx, "c", 0, 1)
	testenv.WantCode(t, err, wire.CodeNotFound, "anonymous rentries of a private chain")
	for _, tc := range []struct {
		name string
		args []any
		code wire.Code
	}{
		{"two arguments", []any{"c", uint64(0)}, wire.CodeProto},
		{"chain not text", []any{uint64(0), uint64(0), uint64(1)}, wire.CodeProto},
		{"from text", []any{"big", "0", uint64(1)}, wire.CodeProto},
		{"to negative", []any{"big", uint64(0), int64(-1)}, wire.CodeProto},
		{"bad origin", []any{"vserv/x/big", uint64(0), uint64(1)}, wire.CodeInvalid},
	} {
		_, err := anon.Call(ctx, "rentries", tc.args...)
		testenv.WantCode(t, err, tc.code, "rentries with "+tc.name)
	}

	// ihave from an anonymous session, and with bad arguments.
	id, err := admin.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.Call(ctx, "ihave", id.ServerID, "c", uint64(0))
	testenv.WantCode(t, err, wire.CodeState, "ihave without a login")
	for _, tc := range []struct {
		name string
		args []any
		code wire.Code
	}{
		{"two arguments", []any{id.ServerID, "c"}, wire.CodeProto},
		{"size text", []any{id.ServerID, "c", "1"}, wire.CodeProto},
		{"origin not a server-id", []any{"abc", "c", uint64(0)}, wire.CodeInvalid},
		{"origin not UTF-8", []any{wire.RawMessage{0x62, 'a', 0xff}, "c", uint64(0)}, wire.CodeProto},
	} {
		_, err := admin.Call(ctx, "ihave", tc.args...)
		testenv.WantCode(t, err, tc.code, "ihave with "+tc.name)
	}
	size, _, desc, err := admin.IHave(ctx, id.ServerID, "big", 0)
	if err != nil || size != 150 || !desc.Public || desc.Hops != 0 {
		t.Fatalf("ihave big: %d %+v %v", size, desc, err)
	}
	// help lists the mirroring commands.
	for _, name := range []string{"ihave", "rentries", "rpush"} {
		vals, err := anon.Call(ctx, "help", name)
		if err != nil || len(vals) == 0 || !strings.Contains(string(vals[0]), name) {
			t.Fatalf("help %s: %v", name, err)
		}
	}
}
