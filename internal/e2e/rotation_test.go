package e2e_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// rputReceipt puts one pow-0 record on chain and returns its receipt.
func rputReceipt(t *testing.T, c *client.Client, chain string, payload any) (id string, receipt []byte) {
	t.Helper()
	id = uuid.Must(uuid.NewV7()).String()
	rec, err := wire.Marshal(map[string]any{"id": id, "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.Call(context.Background(), "rput", chain, wire.RawMessage(rec), map[string]any{"receipt": true})
	if err != nil {
		t.Fatalf("rput: %v", err)
	}
	var res []struct {
		Receipt string `cbor:"receipt"`
	}
	if err := wire.Unmarshal(vals[0], &res); err != nil || len(res) != 1 || res[0].Receipt == "" {
		t.Fatalf("rput reply %v: %v", res, err)
	}
	return id, []byte(res[0].Receipt)
}

// rproof fetches the receipt of record id against the chain's newest checkpoint.
func rproof(t *testing.T, c *client.Client, chain, id string) []byte {
	t.Helper()
	vals, err := c.Call(context.Background(), "rproof", chain, id)
	if err != nil {
		t.Fatalf("rproof: %v", err)
	}
	var r string
	if err := wire.Unmarshal(vals[0], &r); err != nil {
		t.Fatal(err)
	}
	return []byte(r)
}

// serverKey is the identity key the server shows with `id`.
func serverKey(t *testing.T, srv *testenv.Server) ed25519.PublicKey {
	t.Helper()
	id, err := srv.DialClear().ID(context.Background())
	if err != nil {
		t.Fatalf("id: %v", err)
	}
	k, err := secure.ParsePublicKey(id.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// knownHostsWith writes a known_hosts file that records key for addr.
func knownHostsWith(t *testing.T, addr string, key ed25519.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	kh, err := secure.OpenKnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := kh.Set(addr, key); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIdentityRotationIsFollowedThroughReceipts runs DESIGN.md §2.4 end to
// end: `vserv keygen --identity` on a stopped server with a ledger, then
// clients that recorded the old key move to the new one through the
// rotation receipt, forged keys are still refused, old receipts still
// verify, new ones verify with the new key, and the offline verifier
// accepts the rotated ledger.
func TestIdentityRotationIsFollowedThroughReceipts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testenv.Start(t)
	admin := srv.AdminClient()
	if _, err := admin.Call(ctx, "mkchain", "tally", map[string]any{"public": true, "pow_bits": uint64(0)}); err != nil {
		t.Fatalf("mkchain: %v", err)
	}
	k0, serverID := admin.Identity(), admin.ServerID()
	beforeID, before := rputReceipt(t, admin, "tally", map[string]any{"n": 1})
	admin.Close()
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	out, err := exec.Command(testenv.Bin(t, "vserv"), "keygen", "--identity", "--yes", "-r", srv.DataRoot).CombinedOutput()
	if err != nil {
		t.Fatalf("vserv keygen --identity: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("old: "+secure.Fingerprint(k0))) || !bytes.Contains(out, []byte("keys chain")) {
		t.Errorf("keygen output does not show the old fingerprint and the rotation record:\n%s", out)
	}

	srv2 := testenv.Start(t, testenv.WithDataRoot(srv.DataRoot))
	id, err := srv2.DialClear().ID(ctx)
	if err != nil {
		t.Fatalf("id: %v", err)
	}
	k1, err := secure.ParsePublicKey(id.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Equal(k0) || id.ServerID != serverID {
		t.Fatalf("after keygen: key %s server-id %s; want a new key and server-id %s", id.Fingerprint, id.ServerID, serverID)
	}
	if !bytes.Contains(out, []byte("new: "+id.Fingerprint)) {
		t.Errorf("keygen output does not show the new fingerprint %s:\n%s", id.Fingerprint, out)
	}
	if len(id.Receipts) != 1 {
		t.Fatalf("id shows %d rotation receipts, want 1", len(id.Receipts))
	}
	got, err := verify.FollowRotations(k0, serverID, [][]byte{[]byte(id.Receipts[0])})
	if err != nil || !got.Equal(k1) {
		t.Fatalf("FollowRotations(old key, id's receipts) = %x, %v; want the new key", got, err)
	}

	t.Run("client with the old key follows the rotation", func(t *testing.T) {
		path := knownHostsWith(t, srv2.Addr, k0)
		var notices []string
		c, err := testenv.DialAddr(t, srv2.Addr, client.Options{KnownHosts: path, Notice: func(m string) { notices = append(notices, m) }})
		if err != nil {
			t.Fatalf("dial with the old key recorded: %v", err)
		}
		if !c.Identity().Equal(k1) {
			t.Errorf("session trusts %x, want the new key", c.Identity())
		}
		if len(notices) != 1 || !strings.Contains(notices[0], "rotated") || !strings.Contains(notices[0], id.Fingerprint) {
			t.Errorf("notices = %q, want one about the rotation naming %s", notices, id.Fingerprint)
		}
		kh, err := secure.OpenKnownHosts(path)
		if err != nil {
			t.Fatal(err)
		}
		if rec, ok := kh.Lookup(srv2.Addr); !ok || !rec.Equal(k1) {
			t.Errorf("known_hosts records %x, want the new key", rec)
		}
		if _, err := c.Call(ctx, "hello"); err != nil {
			t.Errorf("hello in the session: %v", err)
		}
	})

	t.Run("client with a forged key is refused", func(t *testing.T) {
		forged, _, _ := ed25519.GenerateKey(rand.Reader)
		path := knownHostsWith(t, srv2.Addr, forged)
		_, err := testenv.DialAddr(t, srv2.Addr, client.Options{KnownHosts: path})
		if !errors.Is(err, client.ErrHostKeyChanged) {
			t.Fatalf("dial with a forged key recorded: err = %v, want ErrHostKeyChanged", err)
		}
		kh, _ := secure.OpenKnownHosts(path)
		if rec, _ := kh.Lookup(srv2.Addr); !rec.Equal(forged) {
			t.Errorf("known_hosts changed after a refusal")
		}
	})

	t.Run("client pinning the old key is refused", func(t *testing.T) {
		_, err := testenv.DialAddr(t, srv2.Addr, client.Options{ServerKey: secure.PublicKeyText(k0)})
		if !errors.Is(err, client.ErrHostKeyChanged) {
			t.Fatalf("dial pinning the old key: err = %v, want ErrHostKeyChanged", err)
		}
	})

	admin = srv2.Login(testenv.AdminName, testenv.AdminPass)
	t.Run("receipts from before the rotation verify with the old key", func(t *testing.T) {
		if _, err := verify.VerifyReceipt(before, verify.ReceiptOptions{ServerKey: k0}); err != nil {
			t.Errorf("receipt kept from before: %v", err)
		}
		// Nothing was written to tally since: its newest checkpoint is still
		// the old key's.
		if _, err := verify.VerifyReceipt(rproof(t, admin, "tally", beforeID), verify.ReceiptOptions{ServerKey: k0}); err != nil {
			t.Errorf("rproof of an old record: %v", err)
		}
	})

	t.Run("rput after the rotation", func(t *testing.T) {
		_, after := rputReceipt(t, admin, "tally", map[string]any{"n": 2})
		if _, err := verify.VerifyReceipt(after, verify.ReceiptOptions{ServerKey: k1, ServerID: serverID}); err != nil {
			t.Fatalf("receipt after the rotation with the new key and the server-id: %v", err)
		}
		// SHA-256 of the new key is not the server-id, so it must be given.
		if _, err := verify.VerifyReceipt(after, verify.ReceiptOptions{ServerKey: k1}); !errors.Is(err, verify.ErrWrongOrigin) {
			t.Errorf("receipt with the new key and no server-id: err = %v, want ErrWrongOrigin", err)
		}
		if _, err := verify.VerifyReceipt(after, verify.ReceiptOptions{ServerKey: k0}); err == nil {
			t.Error("receipt after the rotation verifies with the old key")
		}
		if _, err := verify.VerifyReceipt(rproof(t, admin, "tally", beforeID), verify.ReceiptOptions{ServerKey: k1, ServerID: serverID}); err != nil {
			t.Errorf("rproof of an old record against the new checkpoint: %v", err)
		}
	})
	admin.Close()

	if err := srv2.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	out, err = exec.Command(testenv.Bin(t, "vserv"), "verify", "-q", "-r", srv.DataRoot).CombinedOutput()
	if err != nil || !bytes.HasPrefix(out, []byte("ok: ")) {
		t.Fatalf("vserv verify of the rotated ledger: %v\n%s", err, out)
	}
	out, err = exec.Command(testenv.Bin(t, "vserv"), "verify", "-q", "-r", srv.DataRoot, "--server-key", secure.PublicKeyText(k0)).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("not the newest key of the rotation history")) {
		t.Fatalf("vserv verify with the retired key: %v\n%s; want a fault naming it", err, out)
	}
}

// A second rotation chains on the first: a client that recorded the first
// key follows both receipts, one that recorded the middle key follows the
// second only.
func TestTwoRotationsAreFollowedFromEitherOldKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testenv.Start(t)
	keys := []ed25519.PublicKey{serverKey(t, srv)}
	dataRoot := srv.DataRoot
	for range 2 {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(testenv.Bin(t, "vserv"), "keygen", "--identity", "--yes", "-r", dataRoot).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v\n%s", err, out)
		}
		srv = testenv.Start(t, testenv.WithDataRoot(dataRoot))
		keys = append(keys, serverKey(t, srv))
	}
	id, err := srv.DialClear().ID(ctx)
	if err != nil || len(id.Receipts) != 2 {
		t.Fatalf("id after two rotations: %d receipts, %v; want 2", len(id.Receipts), err)
	}
	for i, old := range keys[:2] {
		path := knownHostsWith(t, srv.Addr, old)
		c, err := testenv.DialAddr(t, srv.Addr, client.Options{KnownHosts: path, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("dial with key %d recorded: %v", i, err)
		}
		if !c.Identity().Equal(keys[2]) {
			t.Errorf("dial with key %d recorded: session trusts %x, want the newest key", i, c.Identity())
		}
	}
}
