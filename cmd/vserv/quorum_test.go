package main

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// TestVservWitnessQuorumOutOfRangeIsUsageError: K is 0 to 32 (the
// cosignatures one checkpoint holds at most).
func TestVservWitnessQuorumOutOfRangeIsUsageError(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"-1", "33"} {
		_, stderr, code := runVserv(t, "-p", "0", "-r", filepath.Join(t.TempDir(), "data"), "--test-kdf", "--http", "off", "--witness-quorum", k)
		if code != 2 || !strings.Contains(stderr, "--witness-quorum "+k+": want 0 to 32") {
			t.Errorf("--witness-quorum %s: exit %d, stderr:\n%s\nwant 2 and the range", k, code, stderr)
		}
	}
}

// TestVservWitnessQuorumChoosesTheCosignedCheckpoint: with --witness-quorum
// 1, rproof without a tree size proves against the newest checkpoint with a
// cosignature that covers the entry, and the newest checkpoint otherwise.
func TestVservWitnessQuorumChoosesTheCosignedCheckpoint(t *testing.T) {
	quorum := testenv.WithArgs("--witness-quorum", "1")
	e := testenv.NewLedgerEnv(t, []string{"q"}, quorum)
	testenv.Put(t, e.Admin, "q", false, testenv.Numbered(t, "a", 0, 3)...)
	e.Admin.Close()
	if err := e.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	root := e.Srv.DataRoot
	line := cosignOffline(t, root, "q", 3)

	srv := testenv.Start(t, testenv.WithDataRoot(root), quorum)
	c := srv.AdminClient()
	defer c.Close()
	testenv.Put(t, c, "q", false, testenv.Numbered(t, "b", 0, 2)...)
	for _, tc := range []struct {
		seq, wantSize uint64
		cosigned      bool
	}{{0, 3, true}, {2, 3, true}, {3, 5, false}} {
		r, err := c.Proof(context.Background(), "q", client.BySeq(tc.seq), 0)
		if err != nil {
			t.Fatal(err)
		}
		v, err := verify.VerifyReceipt([]byte(r), e.ReceiptOptions())
		if err != nil || v.Checkpoint.Size != tc.wantSize || strings.Contains(r, line) != tc.cosigned {
			t.Errorf("rproof q %d: checkpoint %v (%v), cosigned %v; want size %d, cosigned %v",
				tc.seq, v, err, strings.Contains(r, line), tc.wantSize, tc.cosigned)
		}
	}
}

// cosignOffline stores a made-up witness's cosignature of the checkpoint of
// chain at size in a stopped server's database, as the witness submitter
// would, and returns the line.
func cosignOffline(t *testing.T, root, chain string, size uint64) string {
	t.Helper()
	ctx := context.Background()
	id, _, err := secure.LoadOrCreateIdentity(root)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.OpenDB(datadir.New(root).DBPath(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(ctx, db, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: id.ServerID, Signer: id.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	head, err := l.Head(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(head), "\n\n")
	pub, priv, _ := ed25519.GenerateKey(nil)
	line, err := verify.CosignLine(text+"\n", verify.CosignatureSigner(verify.ServerIDFromKey(pub), priv, time.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddCosignature(ctx, chain, size, line); err != nil {
		t.Fatal(err)
	}
	return line
}
