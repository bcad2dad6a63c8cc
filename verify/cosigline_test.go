package verify

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func TestVerifyCosignatureLineAcceptsOnlyTheWitnessOverTheText(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	pub := priv.Public().(ed25519.PublicKey)
	id := ServerIDFromKey(pub)
	text := FormatCheckpointText(Checkpoint{Origin: "example.com/log", Size: 3, Root: [32]byte{1}})
	signer := CosignatureSigner(id, priv, func() time.Time { return time.Unix(1700000000, 0) })
	line, err := CosignLine(text, signer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "— vserv/"+id+" ") {
		t.Fatalf("line %q does not start with the witness name", line)
	}
	otherLine, _ := CosignLine(text, CosignatureSigner(id, other, nil))
	zeroT, _ := CosignLine(text, CosignatureSigner(id, priv, func() time.Time { return time.Unix(0, 0) }))
	cases := []struct {
		name, text, line, wname string
		want                    error
	}{
		{"good", text, line, WitnessName(id), nil},
		{"good with newline", text, line + "\n", WitnessName(id), nil},
		{"other text", strings.Replace(text, "3\n", "4\n", 1), line, WitnessName(id), ErrWitnessFailed},
		{"other name", text, line, "vserv/someone", ErrWitnessFailed},
		{"other key, same name", text, otherLine, WitnessName(id), ErrWitnessFailed},
		{"no dash", text, strings.TrimPrefix(line, "— "), WitnessName(id), ErrBadNote},
		{"short", text, line[:len(line)-8], WitnessName(id), ErrBadNote},
		{"time zero", text, zeroT, WitnessName(id), ErrBadNote},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyCosignatureLine(tc.text, tc.line, tc.wname, pub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && got != 1700000000 {
				t.Fatalf("T = %d, want 1700000000", got)
			}
		})
	}
}

func TestParseLogCheckpointAllowsExtensionLinesOnly(t *testing.T) {
	root := "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	cases := []struct {
		name, text string
		ok         bool
	}{
		{"plain", "o\n5\n" + root + "\n", true},
		{"extension", "o\n5\n" + root + "\next one\n", true},
		{"leading zero", "o\n05\n" + root + "\n", false},
		{"no final newline", "o\n5\n" + root, false},
		{"empty extension", "o\n5\n" + root + "\n\n", false},
		{"short root", "o\n5\nAQ==\n", false},
		{"two lines", "o\n5\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseLogCheckpoint(tc.text)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (c.Origin != "o" || c.Size != 5 || c.Root[0] != 1) {
				t.Fatalf("parsed %+v", c)
			}
		})
	}
}

func TestNamedCosignatureVerifierOpensAThirdPartyWitnessLine(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	pub := priv.Public().(ed25519.PublicKey)
	text := FormatCheckpointText(Checkpoint{Origin: "example.com/log", Size: 1, Root: [32]byte{7}})
	// A witness named as other networks name theirs, signing like ours.
	s := &cosigSigner{name: "witness.example/w1", id: KeyID("witness.example/w1", algCosignature, pub), priv: priv,
		now: func() time.Time { return time.Unix(5, 0) }}
	line, err := CosignLine(text, s)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(text + "\n" + line + "\n")
	n, err := note.Open(msg, note.VerifierList(NamedCosignatureVerifier("witness.example/w1", pub)))
	if err != nil || len(n.Sigs) != 1 || n.Sigs[0].Name != "witness.example/w1" {
		t.Fatalf("note.Open = %v, %v; want one signature by witness.example/w1", n, err)
	}
	if vkey := CosignatureVerifierKey("witness.example/w1", pub); !strings.HasPrefix(vkey, "witness.example/w1+") {
		t.Errorf("vkey %q", vkey)
	}
}
