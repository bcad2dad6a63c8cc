package verify

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestNoteVerifierKeyOpensOurCheckpoints: x/mod's note parses the vkey to
// a verifier with our key name and key ID that opens a checkpoint we
// signed, and refuses one signed by another key under the same origin.
func TestNoteVerifierKeyOpensOurCheckpoints(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	origin := "vserv/" + ServerIDFromKey(pub) + "/c"
	vkey := NoteVerifierKey(origin, pub)
	if !strings.HasPrefix(vkey, origin+"+") {
		t.Fatalf("vkey %q does not start with the origin", vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("x/mod refuses the vkey %q: %v", vkey, err)
	}
	ours := NewNoteVerifier(origin, pub)
	if v.Name() != ours.Name() || v.KeyHash() != ours.KeyHash() {
		t.Fatalf("vkey verifier is %s/%08x, ours %s/%08x", v.Name(), v.KeyHash(), ours.Name(), ours.KeyHash())
	}
	c := Checkpoint{Origin: origin, Size: 5, Root: [32]byte{7}}
	msg, err := SignCheckpoint(c, NewNoteSigner(origin, priv))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(msg, note.VerifierList(v)); err != nil || len(n.Sigs) != 1 {
		t.Fatalf("our checkpoint does not open under the vkey: %v", err)
	}
	forged, err := SignCheckpoint(c, NewNoteSigner(origin, other))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(forged, note.VerifierList(v)); err == nil {
		t.Fatal("a checkpoint by another key opens under the vkey")
	}
}
