package ledger

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

func TestSignedNotifiesOncePerChainAndCoalesces(t *testing.T) {
	e := newEnv(t)
	e.l.TakeSigned()
	select { // drain a signal of the setup
	case <-e.l.Signed():
	default:
	}
	e.appendN("t", 0, 2)
	e.appendN("t", 2, 3)
	select {
	case <-e.l.Signed():
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after two commits")
	}
	select {
	case <-e.l.Signed():
		t.Fatal("two signals for commits before one Take")
	default:
	}
	if got := e.l.TakeSigned(); len(got) != 1 || got["t"] != 5 {
		t.Fatalf("TakeSigned = %v, want map[t:5]", got)
	}
	if got := e.l.TakeSigned(); len(got) != 0 {
		t.Fatalf("second TakeSigned = %v, want empty", got)
	}
}

// A cosignature kept with the head is served with it by Head, Proof and
// Consistency; the checkpoint is kept when newer ones come; receipts still
// verify; a line of the same witness replaces the older one.
func TestCosignatureIsServedWithItsCheckpointAndKept(t *testing.T) {
	e := newEnv(t)
	e.appendN("t", 0, 3)
	head, err := e.l.Head(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(head), "\n\n")
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wid := verify.ServerIDFromKey(wpriv.Public().(ed25519.PublicKey))
	line, err := verify.CosignLine(text+"\n", verify.CosignatureSigner(wid, wpriv, time.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.l.AddCosignature(ctx, "t", 3, line); err != nil {
		t.Fatal(err)
	}
	if err := e.l.AddCosignature(ctx, "t", 3, line); err != nil { // same witness again: replaced
		t.Fatal(err)
	}
	want := string(head) + line + "\n"
	if got, _ := e.l.Head(ctx, "t"); string(got) != want {
		t.Fatalf("Head = %q, want %q", got, want)
	}
	e.appendN("t", 3, 2)
	_, note, err := e.l.Consistency(ctx, "t", 0, 3)
	if err != nil || string(note) != want {
		t.Fatalf("Consistency to 3: %q %v, want the cosigned note", note, err)
	}
	r, err := e.l.Proof(ctx, "t", 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.VerifyReceipt(r, verify.ReceiptOptions{ServerKey: testPub()})
	if err != nil || v.Checkpoint.Size != 3 {
		t.Fatalf("receipt with a cosigned checkpoint: %v", err)
	}
	if !strings.Contains(string(r), line) {
		t.Errorf("receipt does not carry the cosignature line")
	}
	err = e.l.AddCosignature(ctx, "t", 4, line)
	testenv.WantCode(t, err, wire.CodeNotFound, "no checkpoint of size 4")
	err = e.l.AddCosignature(ctx, "t", 5, "not a line")
	testenv.WantCode(t, err, wire.CodeInvalid, "not a signature line")
}
