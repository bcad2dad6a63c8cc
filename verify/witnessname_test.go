package verify

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"filippo.io/torchwood"
)

// torchwoodLine is a cosignature line made by torchwood's signer for a
// third-party witness called name, over the checkpoint of l at size.
func torchwoodLine(t *testing.T, l *testLog, size uint64, name string, w ed25519.PrivateKey) string {
	t.Helper()
	s, err := torchwood.NewCosignatureSigner(name, w)
	if err != nil {
		t.Fatal(err)
	}
	line, err := CosignLine(FormatCheckpointText(l.checkpoint(size)), s)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestWitnessesByNameAndByServerID: a checkpoint cosigned by a vserv
// witness (vserv/<id>) and by a third-party witness whose line torchwood
// made counts both towards the quorum when each is listed the way it is
// named; a third-party witness listed under another name, or with another
// key, does not count; a bad line of a listed named witness fails.
func TestWitnessesByNameAndByServerID(t *testing.T) {
	l := newTestLog(t, 9)
	vw, tw := testKey(21), testKey(22)
	const twName = "example.com/torchwood-witness"
	base := l.note(t, 9)
	msg, err := AttachCosignatures(base, mustCosign(t, l, 9, vw), torchwoodLine(t, l, 9, twName, tw))
	if err != nil {
		t.Fatal(err)
	}
	named := WitnessKey{Name: twName, Key: tw.Public().(ed25519.PublicKey)}
	// A line of the named witness over another checkpoint: its signature
	// does not verify over this one.
	badLine := torchwoodLine(t, l, 8, twName, tw)
	withBad, err := AttachCosignatures(base, badLine)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		msg       []byte
		witnesses []WitnessKey
		quorum    int
		want      error
		cosigners int
	}{
		{"both count", msg, []WitnessKey{witnessKey(vw), named}, 2, nil, 2},
		{"named witness alone", msg, []WitnessKey{named}, 1, nil, 1},
		{"named witness under another name", msg, []WitnessKey{witnessKey(vw), {Name: "example.com/other", Key: named.Key}}, 2, ErrQuorum, 1},
		{"named witness with another key", msg, []WitnessKey{witnessKey(vw), {Name: twName, Key: testKey(23).Public().(ed25519.PublicKey)}}, 2, ErrQuorum, 1},
		{"named witness as vserv witness", msg, []WitnessKey{witnessKey(tw)}, 1, ErrQuorum, 0},
		{"same key listed twice", msg, []WitnessKey{named, named}, 2, ErrQuorum, 1},
		{"bad line of a listed named witness", withBad, []WitnessKey{named}, 0, ErrWitnessFailed, 0},
		{"bad line of an unlisted witness", withBad, nil, 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := OpenCosignedCheckpoint(tt.msg, l.origin(), l.pub(), tt.witnesses, tt.quorum)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && len(c.Cosigners) != tt.cosigners {
				t.Fatalf("cosigners %d, want %d", len(c.Cosigners), tt.cosigners)
			}
			if errors.Is(err, ErrQuorum) && tt.cosigners > 0 && !strings.Contains(err.Error(), "verified: ") {
				t.Fatalf("quorum error %q does not say which witnesses verified", err)
			}
		})
	}

	// The same in a receipt.
	p, err := l.tree.InclusionProof(4, 9)
	if err != nil {
		t.Fatal(err)
	}
	r := FormatReceipt(l.entries[4], 4, p, msg)
	v, err := VerifyReceipt(r, ReceiptOptions{ServerKey: l.pub(), Witnesses: []WitnessKey{witnessKey(vw), named}, Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Cosigners) != 2 || v.Cosigners[1].KeyName() != twName {
		t.Fatalf("cosigners %+v", v.Cosigners)
	}
	if _, err := VerifyReceipt(r, ReceiptOptions{ServerKey: l.pub(), Witnesses: []WitnessKey{named}, Quorum: 2}); !errors.Is(err, ErrQuorum) ||
		!strings.Contains(err.Error(), twName) {
		t.Fatalf("quorum 2 of one listed: %v", err)
	}
}

func mustCosign(t *testing.T, l *testLog, size uint64, w ed25519.PrivateKey) string {
	t.Helper()
	line, err := CosignLine(FormatCheckpointText(l.checkpoint(size)), witnessSigner(w))
	if err != nil {
		t.Fatal(err)
	}
	return line
}
