package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

var (
	k1Priv       = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{43}, 32))
	k2Priv       = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{44}, 32))
	strangerPriv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{45}, 32))
)

func pubKey(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// newKeysEnv is newEnv with the default chains (keys among them) and five
// records in "t", all under signer.
func newKeysEnv(t *testing.T, signer ed25519.PrivateKey) *env {
	t.Helper()
	e := newEnvSigned(t, signer)
	if err := e.l.EnsureDefaultChains(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.appendN("t", 0, 5)
	return e
}

// rotate does what `vserv keygen --identity` does with the ledger: the
// current signer appends the key.rotate record to the keys chain and keeps
// the checkpoint that first covers it. It returns that entry's seq.
func (e *env) rotate(n int, old, next ed25519.PrivateKey) uint64 {
	e.t.Helper()
	ctx := context.Background()
	rec, err := verify.NewRotationRecord(testServerID, recID(n), 1_700_000_000_000, old, pubKey(next))
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.l.AppendServer(ctx, "keys", rec)
	if err != nil {
		e.t.Fatalf("append rotation: %v", err)
	}
	if err := e.l.KeepCheckpoint(ctx, "keys", res.Seq+1, nil); err != nil {
		e.t.Fatalf("keep the rotation's checkpoint: %v", err)
	}
	return res.Seq
}

func (e *env) readOnly() map[string]string {
	out := map[string]string{}
	for _, c := range e.l.Chains() {
		out[c.Name] = c.ReadOnly
	}
	return out
}

func TestRotatedLedgerKeepsWritingUnderTheNewKey(t *testing.T) {
	ctx := context.Background()
	e := newKeysEnv(t, nil)
	before, err := e.l.Proof(ctx, "t", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	seq := e.rotate(900, testPriv, k1Priv)

	// The retired key signs nothing more, not even in this process.
	_, err = e.l.Append(ctx, "t", [][]byte{rec(t, 50, "late")}, AppendOptions{})
	testenv.WantCode(t, err, wire.CodeConflict, "")

	e.signer = k1Priv
	e.reopen()
	for name, why := range e.readOnly() {
		if why != "" {
			t.Errorf("chain %s is read-only after a recorded rotation: %s", name, why)
		}
	}
	// Not written since the rotation, "t" still hands out receipts that the
	// new key verifies (its newest checkpoint was countersigned at open), and
	// that the old key still verifies too.
	untouched, err := e.l.Proof(ctx, "t", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.VerifyReceipt(untouched, verify.ReceiptOptions{ServerKey: pubKey(k1Priv), ServerID: testServerID}); err != nil {
		t.Errorf("receipt of a chain untouched since the rotation does not verify with the new key: %v", err)
	}
	if _, err := verify.VerifyReceipt(untouched, verify.ReceiptOptions{ServerKey: testPub()}); err != nil {
		t.Errorf("receipt of a chain untouched since the rotation no longer verifies with the old key: %v", err)
	}
	res, err := e.l.Append(ctx, "t", [][]byte{rec(t, 5, "after")}, AppendOptions{Receipt: true})
	if err != nil {
		t.Fatalf("append under the new key: %v", err)
	}
	if _, err := verify.VerifyReceipt(res[0].Receipt, verify.ReceiptOptions{ServerKey: pubKey(k1Priv), ServerID: testServerID}); err != nil {
		t.Errorf("receipt after the rotation does not verify with the new key: %v", err)
	}
	if _, err := verify.VerifyReceipt(before, verify.ReceiptOptions{ServerKey: testPub()}); err != nil {
		t.Errorf("receipt from before the rotation no longer verifies with the old key: %v", err)
	}
	rotation, err := e.l.Proof(ctx, "keys", seq, seq+1)
	if err != nil {
		t.Fatalf("proof of the rotation against its kept checkpoint: %v", err)
	}
	got, err := verify.FollowRotations(testPub(), testServerID, [][]byte{rotation})
	if err != nil || !got.Equal(pubKey(k1Priv)) {
		t.Fatalf("FollowRotations = %x, %v; want the new key", got, err)
	}
	for _, c := range e.l.Chains() {
		if _, faults, err := e.l.Check(ctx, c.Name, "all"); err != nil || len(faults) != 0 {
			t.Errorf("rcheck %s: %v %v", c.Name, faultList(faults), err)
		}
	}

	e.reopen()
	if faults, err := VerifyDB(ctx, e.st, pubKey(k1Priv), nil); err != nil || len(faults) != 0 {
		t.Fatalf("VerifyDB with the new key: %v %v", faultList(faults), err)
	}
	faults, err := VerifyDB(ctx, e.st, testPub(), nil)
	if err != nil || len(faults) != 1 || faults[0].Chain != "keys" || !strings.Contains(faults[0].What, errNotNewestKey) {
		t.Fatalf("VerifyDB with the retired key = %v %v, want one keys fault %q", faultList(faults), err, errNotNewestKey)
	}

	// A second rotation chains on: k0 → k1 → k2.
	seq2 := e.rotate(901, k1Priv, k2Priv)
	e.signer = k2Priv
	e.reopen()
	e.appendN("t", 6, 2)
	if faults, err := VerifyDB(ctx, e.st, pubKey(k2Priv), nil); err != nil || len(faults) != 0 {
		t.Fatalf("VerifyDB after two rotations: %v %v", faultList(faults), err)
	}
	var receipts [][]byte
	for _, s := range []uint64{seq, seq2} {
		r, err := e.l.Proof(ctx, "keys", s, s+1)
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r)
	}
	if got, err := verify.FollowRotations(testPub(), testServerID, receipts); err != nil || !got.Equal(pubKey(k2Priv)) {
		t.Fatalf("FollowRotations from k0 = %x, %v; want k2", got, err)
	}
}

func TestRetiredKeyCannotWriteAfterRestart(t *testing.T) {
	e := newKeysEnv(t, nil)
	e.rotate(900, testPriv, k1Priv)
	e.reopen() // still the old key, as if identity.key had been put back by hand
	for name, why := range e.readOnly() {
		if why != errNotNewestKey {
			t.Errorf("chain %s read-only reason = %q, want %q", name, why, errNotNewestKey)
		}
	}
	_, err := e.l.Append(context.Background(), "t", [][]byte{rec(t, 5, "x")}, AppendOptions{})
	testenv.WantCode(t, err, wire.CodeConflict, "")
	err = e.l.CreateChain(context.Background(), "new", true, 0, "")
	testenv.WantCode(t, err, wire.CodeConflict, "")
}

func TestHandReplacedKeyMakesChainsReadOnly(t *testing.T) {
	ctx := context.Background()
	e := newKeysEnv(t, nil)
	e.signer = k1Priv // identity.key replaced without a key.rotate record
	e.reopen()
	for name, why := range e.readOnly() {
		if !strings.Contains(why, "does not verify") || !strings.Contains(why, "no key.rotate record leads to it") {
			t.Errorf("chain %s read-only reason = %q, want the newest checkpoint not verifying and why", name, why)
		}
	}
	_, err := e.l.Append(ctx, "t", [][]byte{rec(t, 5, "x")}, AppendOptions{})
	testenv.WantCode(t, err, wire.CodeConflict, "")
	faults, err := VerifyDB(ctx, e.st, pubKey(k1Priv), nil)
	if err != nil || len(faults) == 0 {
		t.Fatalf("VerifyDB with a hand-replaced key = %v %v, want faults", faultList(faults), err)
	}
	for _, f := range faults {
		if !strings.HasPrefix(f.What, "tree: checkpoint of size") || !strings.Contains(f.What, "does not verify") {
			t.Errorf("fault %s, want only checkpoints that do not verify", f)
		}
	}
}

// A key that was never the server's can be given a "history" only by the
// server-id's own key: a rotation signed by the intruder's key leads nowhere.
func TestForgedHistoryIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newKeysEnv(t, strangerPriv) // every checkpoint signed by a key the server-id does not derive from
	e.rotate(900, strangerPriv, k1Priv)
	e.signer = k1Priv
	e.reopen()
	for name, why := range e.readOnly() {
		if !strings.Contains(why, "key rotation history") || !strings.Contains(why, "not the server's first key") {
			t.Errorf("chain %s read-only reason = %q, want the broken history", name, why)
		}
	}
	faults, err := VerifyDB(ctx, e.st, pubKey(k1Priv), nil)
	if err != nil || len(faults) == 0 || faults[0].Chain != "keys" || !strings.Contains(faults[0].What, "not the server's first key") {
		t.Fatalf("VerifyDB of a forged history = %v %v", faultList(faults), err)
	}
}

func TestAppendServerRefusesRotationsNotBySigner(t *testing.T) {
	e := newKeysEnv(t, nil)
	ctx := context.Background()
	byOther, err := verify.NewRotationRecord(testServerID, recID(900), 1, k1Priv, pubKey(k2Priv))
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := wire.Marshal(map[string]any{"id": recID(901), "type": verify.RotateType,
		"payload": map[string]any{"new": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string][]byte{"authored by another key": byOther, "unsigned": unsigned} {
		_, err := e.l.AppendServer(ctx, "keys", r)
		testenv.WantCode(t, err, wire.CodeInvalid, "")
		if n, _ := e.l.Size(ctx, "keys"); n != 0 {
			t.Fatalf("%s: keys chain has %d entries, want 0", name, n)
		}
	}
	// Other records on the keys chain are not rotations and pass.
	if _, err := e.l.AppendServer(ctx, "keys", rec(t, 902, "note")); err != nil {
		t.Fatalf("plain record on keys: %v", err)
	}
	if _, err := e.l.Append(ctx, "t", [][]byte{rec(t, 5, "x")}, AppendOptions{}); err != nil {
		t.Fatalf("a plain keys record must not retire the key: %v", err)
	}
}
