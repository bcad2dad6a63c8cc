package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// TestMirroredChainIsReadOverTCPByFullOriginWithTheHomesBytes: a data
// directory holding another home's chain (mirrored through the ledger API,
// as replication will) serves it by full origin, byte for byte as the home
// holds it, with receipts that verify with the home's key; a plain name
// stays this server's own chain, and rput to the mirror is refused.
func TestMirroredChainIsReadOverTCPByFullOriginWithTheHomesBytes(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Home A: a ledger of its own on a store of its own.
	_, aPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	aPub := aPriv.Public().(ed25519.PublicKey)
	aID := verify.ServerIDFromKey(aPub)
	ast, err := bolt.OpenFile(ctx, filepath.Join(t.TempDir(), "a.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ast.Close()
	a, err := ledger.Open(ctx, ast, ledger.Config{ServerID: aID, Signer: aPriv, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateChain(ctx, "m", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		r := testenv.NewRecord(t, map[string]any{"n": i})
		res, err := a.Append(ctx, "m", [][]byte{r}, ledger.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res[0].ID)
	}
	entries, _ := a.AbsMany(ctx, "m", []int64{0, 1, 2}, nil)
	proof, head, _ := a.Consistency(ctx, "m", 0, 0)
	receipt1, _ := a.Proof(ctx, "m", 1, 0)

	// Mirror B: a real data directory, filled while its server is stopped.
	srv := testenv.Start(t)
	srv.InitAdmin()
	dir := srv.DataRoot
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	func() {
		id, _, err := secure.LoadOrCreateIdentity(dir)
		if err != nil {
			t.Fatal(err)
		}
		bst, err := bolt.OpenFile(ctx, datadir.New(dir).DBPath(), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer bst.Close()
		b, err := ledger.Open(ctx, bst, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		n, err := b.Mirror(ctx, ledger.MirrorBatch{Meta: store.ChainMeta{Origin: aID, Name: "m", Public: true},
			Entries: entries, Checkpoint: head, Proof: proof, HomeKeys: []ed25519.PublicKey{aPub}})
		if err != nil || n != 3 {
			t.Fatalf("Mirror into B's data directory: %d, %v", n, err)
		}
	}()
	srv = testenv.Start(t, testenv.WithDataRoot(dir))
	c := srv.Dial()
	full := verify.OriginLine(aID, "m")

	if n, err := c.ChainSize(ctx, full); err != nil || n != 3 {
		t.Fatalf("rsize %s = %d, %v; want 3", full, n, err)
	}
	got, err := c.AbsRecords(ctx, full, []int64{0, 1, 2})
	if err != nil || len(got) != 3 || !bytes.Equal(bytes.Join(got, nil), bytes.Join(entries, nil)) {
		t.Fatalf("rabs %s = %x, %v; want the home's bytes %x", full, got, err, entries)
	}
	if e, err := c.GetRecord(ctx, full, ids[2]); err != nil || !bytes.Equal(e, entries[2]) {
		t.Fatalf("rget %s %s = %x, %v; want the home's entry 2", full, ids[2], e, err)
	}
	r, err := c.Proof(ctx, full, client.BySeq(1), 0)
	if err != nil || r != string(receipt1) {
		t.Fatalf("rproof %s 1 = %q, %v; want the home's receipt %q", full, r, err, receipt1)
	}
	if v, err := verify.VerifyReceipt([]byte(r), verify.ReceiptOptions{ServerKey: aPub}); err != nil || v.Entry.Seq != 1 {
		t.Fatalf("the mirror's receipt does not verify with the home's key: %v", err)
	}
	if h, err := c.Head(ctx, full); err != nil || h != string(head) {
		t.Fatalf("rhead %s = %q, %v; want the home's checkpoint %q", full, h, err, head)
	}
	vals, err := c.Call(ctx, "chains")
	if err != nil {
		t.Fatal(err)
	}
	var chains []map[string]any
	if err := wire.Unmarshal(vals[0], &chains); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ch := range chains {
		found = found || ch["name"] == "m" && ch["origin"] == aID && ch["size"] == uint64(3)
	}
	if !found {
		t.Fatalf("chains = %v; want m of origin %s with 3 entries", chains, aID)
	}

	// A plain name is B's own chain only.
	_, err = c.ChainSize(ctx, "m")
	testenv.WantCode(t, err, wire.CodeNotFound, "rsize m (a plain name) on the mirror")
	// Nobody writes a mirror, not even an admin.
	admin := srv.AdminClient()
	_, err = admin.Call(ctx, "rput", full, wire.RawMessage(testenv.NewRecord(t, "x")))
	if we := testenv.WantCode(t, err, wire.CodePerm, "rput to the mirror"); !strings.Contains(we.Text, "written only at its home") {
		t.Fatalf("rput to the mirror: %q, want a text saying it is written only at its home", we.Text)
	}
	_, err = admin.Call(ctx, "grant", testenv.AdminName, full, "read")
	testenv.WantCode(t, err, wire.CodeInvalid, "grant on a mirrored chain")

	// B's own chain of the same name is another chain, listed apart.
	if _, err := admin.Call(ctx, "mkchain", "m", map[string]any{"public": true, "pow_bits": 4}); err != nil {
		t.Fatal(err)
	}
	all, err := c.Chains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own, ok1 := c.FindChain(all, "m")
	mirrored, ok2 := c.FindChain(all, full)
	if !ok1 || !ok2 || own.Size != 0 || own.PoWBits != 4 || own.Origin != c.ServerID() ||
		mirrored.Size != 3 || mirrored.PoWBits != 0 || mirrored.Origin != aID || mirrored.Ref(c.ServerID()) != full {
		t.Fatalf("chains: own m = %+v (%v), mirrored = %+v (%v); want B's empty m (pow 4) and A's m of 3 entries", own, ok1, mirrored, ok2)
	}
	if n, err := c.ChainSize(ctx, "m"); err != nil || n != 0 {
		t.Fatalf("rsize m = %d, %v; want B's own empty m", n, err)
	}
}
