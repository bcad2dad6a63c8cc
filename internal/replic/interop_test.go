package replic

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vserv/vserv/verify"
)

// TestWitnessCosignsANonVservLogAndTorchwoodVerifies: a log that is not
// vserv (x/mod's note signer, an x/mod tlog tree, a checkpoint with an
// extension line) gets a cosignature from our witness for a real
// consistency proof, and torchwood's cosignature verifier accepts it under
// the vkey our witness publishes.
func TestWitnessCosignsANonVservLogAndTorchwoodVerifies(t *testing.T) {
	e := newWitnessEnv(t)
	l := e.log
	sign := func(n int64) []byte {
		l.grow(t, n)
		root, err := tlog.TreeHash(n, l)
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("%s\n%d\n%s\nextension: not vserv's\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))
		msg, err := note.Sign(&note.Note{Text: text}, l.signer)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	wv, err := torchwood.NewCosignatureVerifier(verify.CosignatureVerifierKey(verify.WitnessName(e.id), e.key.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatalf("torchwood refuses our witness's vkey: %v", err)
	}
	logV, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	var old int64
	for _, size := range []int64{3, 13, 100} {
		cp := sign(size)
		got := e.post(t, body(old, l.proof(t, old, size), cp))
		if got.status != 200 {
			t.Fatalf("old %d → %d: %+v, want 200", old, size, got)
		}
		n, err := note.Open([]byte(string(cp)+got.body), note.VerifierList(logV, wv))
		if err != nil {
			t.Fatalf("size %d: the note with our cosignature does not open: %v", size, err)
		}
		var ours []note.Signature
		for _, s := range n.Sigs {
			if s.Name == wv.Name() {
				ours = append(ours, s)
			}
		}
		if len(ours) != 1 || !strings.HasPrefix(got.body, "— "+wv.Name()+" ") {
			t.Fatalf("size %d: torchwood verified %d cosignatures by %s in %q", size, len(ours), wv.Name(), got.body)
		}
		if ts, err := torchwood.CosignatureTimestamp(ours[0]); err != nil || ts != testNow.Unix() {
			t.Errorf("size %d: torchwood reads time %d (%v), want %d", size, ts, err, testNow.Unix())
		}
		old = size
	}
}
