package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
}

// testLog is a chain built in memory with the reference tree of
// transparency-dev/merkle, signed by a fixed key.
type testLog struct {
	priv     ed25519.PrivateKey
	serverID string
	chain    string
	entries  [][]byte
	tree     *testonly.Tree
}

func newTestLog(t testing.TB, n int) *testLog {
	t.Helper()
	l := &testLog{priv: testKey(1), chain: "vote", tree: testonly.New(rfc6962.DefaultHasher)}
	l.serverID = ServerIDFromKey(l.pub())
	var prev [32]byte
	for i := 0; i < n; i++ {
		rec := mustMarshal(t, map[string]any{
			"id":      fmt.Sprintf("00000000-0000-7000-8000-%012x", i),
			"payload": map[string]any{"n": i, "text": "صوت"},
		})
		e, err := EncodeEntry(Entry{V: 1, Seq: uint64(i), Prev: prev, Time: 1700000000000 + uint64(i),
			Chain: l.chain, Origin: l.serverID, Record: rec})
		if err != nil {
			t.Fatal(err)
		}
		prev = LeafHash(e)
		l.entries = append(l.entries, e)
		l.tree.AppendData(e)
	}
	return l
}

func (l *testLog) pub() ed25519.PublicKey { return l.priv.Public().(ed25519.PublicKey) }
func (l *testLog) origin() string         { return OriginLine(l.serverID, l.chain) }

func (l *testLog) checkpoint(size uint64) Checkpoint {
	c := Checkpoint{Origin: l.origin(), Size: size}
	copy(c.Root[:], l.tree.HashAt(size))
	return c
}

func (l *testLog) note(t testing.TB, size uint64) []byte {
	t.Helper()
	n, err := SignCheckpoint(l.checkpoint(size), NewNoteSigner(l.origin(), l.priv))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (l *testLog) receipt(t testing.TB, seq, size uint64, cosigners ...ed25519.PrivateKey) []byte {
	t.Helper()
	p, err := l.tree.InclusionProof(seq, size)
	if err != nil {
		t.Fatal(err)
	}
	n := l.note(t, size)
	for _, w := range cosigners {
		line, err := CosignLine(FormatCheckpointText(l.checkpoint(size)), witnessSigner(w))
		if err != nil {
			t.Fatal(err)
		}
		if n, err = AttachCosignatures(n, line); err != nil {
			t.Fatal(err)
		}
	}
	return FormatReceipt(l.entries[seq], seq, p, n)
}

func witnessSigner(w ed25519.PrivateKey) interface {
	Name() string
	KeyHash() uint32
	Sign([]byte) ([]byte, error)
} {
	pub := w.Public().(ed25519.PublicKey)
	return CosignatureSigner(ServerIDFromKey(pub), w, func() time.Time { return time.Unix(1700000000, 0) })
}

func witnessKey(w ed25519.PrivateKey) WitnessKey {
	return WitnessKey{Key: w.Public().(ed25519.PublicKey)}
}
