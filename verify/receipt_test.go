package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

func TestVerifyReceiptAtManySizes(t *testing.T) {
	l := newTestLog(t, 70)
	for size := uint64(1); size <= 70; size += 3 {
		for seq := uint64(0); seq < size; seq += 1 + seq/3 {
			r := l.receipt(t, seq, size)
			v, err := VerifyReceipt(r, ReceiptOptions{ServerKey: l.pub()})
			if err != nil {
				t.Fatalf("seq %d size %d: %v", seq, size, err)
			}
			if v.Entry.Seq != seq || v.Checkpoint.Size != size || !bytes.Equal(v.Leaf[:], l.tree.LeafHash(seq)) {
				t.Fatalf("seq %d size %d: got %+v", seq, size, v.Checkpoint)
			}
		}
	}
}

func TestVerifyReceiptRejects(t *testing.T) {
	l := newTestLog(t, 9)
	w1, w2, stranger := testKey(11), testKey(12), testKey(13)
	good := l.receipt(t, 4, 9, w1, w2)
	replace := func(old, new string) []byte { return []byte(strings.Replace(string(good), old, new, 1)) }
	lines := strings.Split(string(good), "\n")
	otherEntry := base64.StdEncoding.EncodeToString(l.entries[5])

	badWitnessLine := func() []byte {
		// A cosignature line from w1 whose signature does not verify.
		r := l.receipt(t, 4, 9)
		line, _ := CosignLine(FormatCheckpointText(l.checkpoint(8)), witnessSigner(w1))
		out, _ := AttachCosignatures(r, line)
		return out
	}()
	strangerLine := l.receipt(t, 4, 9, stranger)

	opts := ReceiptOptions{ServerKey: l.pub(), Witnesses: []WitnessKey{witnessKey(w1), witnessKey(w2)}, Quorum: 2}
	tests := []struct {
		name    string
		receipt []byte
		opts    func(o *ReceiptOptions)
		want    error
	}{
		{"good", good, nil, nil},
		{"wrong server key", good, func(o *ReceiptOptions) { o.ServerKey = testKey(2).Public().(ed25519.PublicKey) }, ErrWrongOrigin},
		{"wrong server key with right id", good, func(o *ReceiptOptions) {
			o.ServerID = l.serverID
			o.ServerKey = testKey(2).Public().(ed25519.PublicKey)
		}, ErrNoLogSig},
		{"other entry", replace(lines[1], "extra "+otherEntry), nil, ErrBadReceipt},
		{"index differs from seq", replace("index 4", "index 5"), nil, ErrBadReceipt},
		{"tampered proof hash", replace(lines[3], base64.StdEncoding.EncodeToString(make([]byte, 32))), nil, ErrNotIncluded},
		{"missing proof hash", replace(lines[3]+"\n", ""), nil, ErrNotIncluded},
		{"bad header", replace("tlog-proof@v1", "tlog-proof@v2"), nil, ErrBadReceipt},
		{"no empty line", []byte(strings.ReplaceAll(string(good), "\n\n", "\n")), nil, ErrBadReceipt},
		{"quorum 3 of 2", good, func(o *ReceiptOptions) { o.Quorum = 3 }, ErrQuorum},
		{"same witness twice", good, func(o *ReceiptOptions) { o.Witnesses = []WitnessKey{witnessKey(w1), witnessKey(w1)} }, ErrQuorum},
		{"server key as witness", l.receipt(t, 4, 9), func(o *ReceiptOptions) { o.Witnesses = []WitnessKey{{Key: l.pub()}}; o.Quorum = 1 }, ErrQuorum},
		{"failing line from a listed witness", badWitnessLine, func(o *ReceiptOptions) { o.Quorum = 0 }, ErrWitnessFailed},
		{"unlisted witness ignored", strangerLine, func(o *ReceiptOptions) { o.Quorum = 0 }, nil},
		{"unlisted witness does not count", strangerLine, func(o *ReceiptOptions) { o.Quorum = 1 }, ErrQuorum},
		{"checkpoint of another chain", func() []byte {
			o := *l
			o.chain = "donation"
			p, _ := l.tree.InclusionProof(4, 9)
			return FormatReceipt(l.entries[4], 4, p, o.note(t, 9))
		}(), func(o *ReceiptOptions) { o.Quorum = 0 }, ErrNoLogSig},
		{"index beyond size", func() []byte {
			n := l.note(t, 4)
			return FormatReceipt(l.entries[4], 4, nil, n)
		}(), func(o *ReceiptOptions) { o.Quorum = 0 }, ErrBadReceipt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			if tt.opts != nil {
				tt.opts(&o)
			}
			v, err := VerifyReceipt(tt.receipt, o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err == nil && tt.name == "good" && len(v.Cosigners) != 2 {
				t.Fatalf("cosigners: %d", len(v.Cosigners))
			}
		})
	}
}

func TestOpenCheckpoint(t *testing.T) {
	l := newTestLog(t, 3)
	n := l.note(t, 3)
	c, err := OpenCheckpoint(n, l.origin(), l.pub())
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 3 || !bytes.Equal(c.Root[:], l.tree.HashAt(3)) {
		t.Fatalf("got %+v", c)
	}
	if _, err := OpenCheckpoint(n, l.origin(), testKey(9).Public().(ed25519.PublicKey)); !errors.Is(err, ErrNoLogSig) {
		t.Fatalf("other key: %v", err)
	}
	tampered := bytes.Replace(n, []byte("\n3\n"), []byte("\n4\n"), 1)
	if _, err := OpenCheckpoint(tampered, l.origin(), l.pub()); !errors.Is(err, ErrNoLogSig) {
		t.Fatalf("tampered size: %v", err)
	}
}

func TestParseCheckpointIsStrict(t *testing.T) {
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	empty := base64.StdEncoding.EncodeToString(EmptyRoot[:])
	for _, text := range []string{
		"o\n01\n" + root + "\n",
		"o\n1\n" + root + "\nextension\n",
		"o\n1\n" + root,
		"o\n1\n" + strings.TrimRight(root, "=") + "\n",
		"o\n-1\n" + root + "\n",
		"\n1\n" + root + "\n",
		"o\n0\n" + root + "\n",
	} {
		if _, err := ParseCheckpoint(text); !errors.Is(err, ErrBadNote) {
			t.Errorf("%q: got %v", text, err)
		}
	}
	if _, err := ParseCheckpoint("o\n0\n" + empty + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyConsistency(t *testing.T) {
	l := newTestLog(t, 40)
	for _, sizes := range [][2]uint64{{0, 0}, {0, 5}, {1, 1}, {1, 2}, {3, 7}, {4, 8}, {5, 40}, {16, 33}, {39, 40}} {
		p, err := l.tree.ConsistencyProof(sizes[0], sizes[1])
		if err != nil {
			t.Fatal(err)
		}
		a, b := l.checkpoint(sizes[0]), l.checkpoint(sizes[1])
		if sizes[0] == 0 {
			a.Root = EmptyRoot
		}
		if err := VerifyConsistency(&a, &b, p); err != nil {
			t.Fatalf("%v: %v", sizes, err)
		}
		if sizes[0] == 0 || sizes[0] == sizes[1] {
			continue
		}
		a.Root[0] ^= 1
		if err := VerifyConsistency(&a, &b, p); !errors.Is(err, ErrInconsistent) {
			t.Fatalf("%v with a bad old root: %v", sizes, err)
		}
	}
	zero := Checkpoint{Origin: l.origin()}
	b := l.checkpoint(5)
	if err := VerifyConsistency(&zero, &b, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("size 0 with a zero root accepted: %v", err)
	}
	if !bytes.Equal(EmptyRoot[:], rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatal("EmptyRoot differs from RFC 6962")
	}
}

func TestCosignatureRoundTrip(t *testing.T) {
	l := newTestLog(t, 2)
	w := testKey(21)
	text := FormatCheckpointText(l.checkpoint(2))
	line, err := CosignLine(text, witnessSigner(w))
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := "— vserv/" + ServerIDFromKey(w.Public().(ed25519.PublicKey)) + " "
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, wantPrefix))
	if !strings.HasPrefix(line, wantPrefix) || len(raw) != 4+8+64 {
		t.Fatalf("line %q", line)
	}
	v := CosignatureVerifier(ServerIDFromKey(w.Public().(ed25519.PublicKey)), w.Public().(ed25519.PublicKey))
	if !v.Verify([]byte(text), raw[4:]) || v.Verify([]byte(text+"x"), raw[4:]) {
		t.Fatal("cosignature verification wrong")
	}
}

func BenchmarkVerifyReceipt(b *testing.B) {
	l := newTestLog(b, 1000)
	w := testKey(11)
	r := l.receipt(b, 617, 1000, w)
	opts := ReceiptOptions{ServerKey: l.pub(), Witnesses: []WitnessKey{witnessKey(w)}, Quorum: 1}
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyReceipt(r, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// §4.5: a failing line from a listed key invalidates the receipt, even when
// a valid line by the same key comes first (note.Open skips repeated lines
// of one key without checking them).
func TestVerifyReceiptRefusesAFailingRepeatedLineOfAListedKey(t *testing.T) {
	l := newTestLog(t, 5)
	w := testKey(9)
	good := l.receipt(t, 2, 5, w)
	opts := ReceiptOptions{ServerKey: l.pub(), ServerID: l.serverID, Witnesses: []WitnessKey{witnessKey(w)}, Quorum: 1}
	if _, err := VerifyReceipt(good, opts); err != nil {
		t.Fatalf("the untouched receipt: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(good), "\n"), "\n")
	corrupt := func(line string) string {
		i := strings.LastIndex(line, " ")
		sig, err := base64.StdEncoding.DecodeString(line[i+1:])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)-1] ^= 1
		return line[:i+1] + base64.StdEncoding.EncodeToString(sig)
	}
	witnessLine, logLine := lines[len(lines)-1], lines[len(lines)-2]
	for _, tc := range []struct {
		name string
		add  string
		want error
	}{
		{"a bad second cosignature line", corrupt(witnessLine), ErrWitnessFailed},
		{"a bad second log signature line", corrupt(logLine), ErrBadReceipt},
	} {
		r := append(bytes.Clone(good), []byte(tc.add+"\n")...)
		if _, err := VerifyReceipt(r, opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}
