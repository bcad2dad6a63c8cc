package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"
)

// The worked example of docs/formats.md. Every input is fixed here and in
// the document; every output is recomputed and compared with the bytes the
// document prints, so the document cannot drift from the code.

const formatsDoc = "../docs/formats.md"

// docBlocks returns the fenced blocks of the document whose info string is
// "<lang> <name>", by name.
func docBlocks(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(formatsDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		lang, name, named := strings.Cut(info, " ")
		if !ok || !named || !strings.HasPrefix(name, "example-") {
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		text := strings.Join(body, "\n") + "\n"
		if lang == "hex" {
			text = strings.Join(strings.Fields(text), "")
		}
		blocks[name] = text
	}
	return blocks
}

type formatsExample struct {
	record, unsigned, entry []byte
	hash, leaf, powDigest   [32]byte
	checkpoint, receipt     []byte
	cosignature             string
}

func buildFormatsExample(t *testing.T) formatsExample {
	t.Helper()
	server := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x01}, 32))
	author := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x02}, 32))
	witness := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x03}, 32))
	serverID := ServerIDFromKey(server.Public().(ed25519.PublicKey))
	origin := OriginLine(serverID, "vote")

	base, err := encMode.Marshal(map[string]any{
		"id":      "0190a5c4-7d2e-7b3a-9f1e-2c3d4e5f6a7b",
		"type":    "vote.cast",
		"created": uint64(1700000000000),
		"payload": map[string]any{"ballot": "b1", "choice": "نعم"},
	})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := SignRecord(origin, base, author)
	if err != nil {
		t.Fatal(err)
	}
	var x formatsExample
	x.hash = mustHash(t, signed)
	pow := SolvePoW(x.hash, 8)
	var m map[string]any
	if err := decMode.Unmarshal(signed, &m); err != nil {
		t.Fatal(err)
	}
	m["pow"] = pow
	x.record = mustMarshal(t, m)
	delete(m, "sig")
	delete(m, "pow")
	x.unsigned = mustMarshal(t, m)
	x.powDigest = powDigest(x.hash, pow)
	if r, err := CheckRecord(x.record); err != nil || r.CheckSig(origin) != nil || !PoWValid(r.Hash, r.PoW, 8) {
		t.Fatalf("example record: %v", err)
	}

	x.entry, err = EncodeEntry(Entry{V: 1, Seq: 0, Time: 1700000000123, Chain: "vote", Origin: serverID, Record: x.record})
	if err != nil {
		t.Fatal(err)
	}
	x.leaf = LeafHash(x.entry)
	x.checkpoint, err = SignCheckpoint(Checkpoint{Origin: origin, Size: 1, Root: x.leaf}, NewNoteSigner(origin, server))
	if err != nil {
		t.Fatal(err)
	}
	wid := ServerIDFromKey(witness.Public().(ed25519.PublicKey))
	x.cosignature, err = CosignLine(FormatCheckpointText(Checkpoint{Origin: origin, Size: 1, Root: x.leaf}),
		CosignatureSigner(wid, witness, func() time.Time { return time.Unix(1700000100, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	note, err := AttachCosignatures(x.checkpoint, x.cosignature)
	if err != nil {
		t.Fatal(err)
	}
	x.receipt = FormatReceipt(x.entry, 0, nil, note)
	v, err := VerifyReceipt(x.receipt, ReceiptOptions{ServerKey: server.Public().(ed25519.PublicKey),
		Witnesses: []WitnessKey{{Key: witness.Public().(ed25519.PublicKey)}}, Quorum: 1})
	if err != nil || v.Entry.Seq != 0 || len(v.Cosigners) != 1 {
		t.Fatalf("example receipt: %v", err)
	}
	return x
}

func TestFormatsDocumentExample(t *testing.T) {
	x := buildFormatsExample(t)
	doc := docBlocks(t)
	want := map[string]string{
		"example-record":          hex.EncodeToString(x.record),
		"example-record-unsigned": hex.EncodeToString(x.unsigned),
		"example-record-hash":     hex.EncodeToString(x.hash[:]),
		"example-pow-digest":      hex.EncodeToString(x.powDigest[:]),
		"example-entry":           hex.EncodeToString(x.entry),
		"example-leaf":            hex.EncodeToString(x.leaf[:]),
		"example-checkpoint":      string(x.checkpoint),
		"example-cosignature":     x.cosignature + "\n",
		"example-receipt":         string(x.receipt),
	}
	for name, w := range want {
		got, ok := doc[name]
		if !ok {
			t.Errorf("%s: block missing from %s; it should be:\n%s", name, formatsDoc, wrapHex(w))
			continue
		}
		if got != w {
			t.Errorf("%s: the document says\n%s\nthe code computes\n%s", name, got, wrapHex(w))
		}
	}
}

// wrapHex wraps long hex at 64 characters, as the document prints it.
func wrapHex(s string) string {
	if strings.ContainsAny(s, "\n ") {
		return s
	}
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s
}
