package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func keyText(k ed25519.PrivateKey) string { return base64.StdEncoding.EncodeToString(pubOf(k)) }

// rotationRecord is a key.rotate record by old for next, built by the code
// under test.
func rotationRecord(t testing.TB, serverID string, n int, old, next ed25519.PrivateKey) []byte {
	t.Helper()
	r, err := NewRotationRecord(serverID, fmt.Sprintf("00000000-0000-7000-8000-%012x", n), 1700000000000, old, pubOf(next))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// craftedRotation is a record signed by signer for origin with any payload
// and type, for records NewRotationRecord refuses to build.
func craftedRotation(t testing.TB, origin string, signer ed25519.PrivateKey, typ string, payload any) []byte {
	t.Helper()
	rec := mustMarshal(t, map[string]any{"id": "00000000-0000-7000-8000-0000000000ff", "type": typ, "payload": payload})
	if signer == nil {
		return rec
	}
	signed, err := SignRecord(origin, rec, signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// flipSig returns rec with the last byte of its signature changed: still a
// well-formed record, with a signature that does not verify.
func flipSig(t testing.TB, rec []byte) []byte {
	t.Helper()
	r, err := CheckRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(rec, r.Sig)
	out := bytes.Clone(rec)
	out[i+63] ^= 1
	return out
}

// keysLog is a keys chain of serverID holding records, whose checkpoints
// testLog.note signs with l.priv (set it per receipt).
func keysLog(t testing.TB, serverID, chain string, records ...[]byte) *testLog {
	t.Helper()
	l := &testLog{serverID: serverID, chain: chain, tree: testonly.New(rfc6962.DefaultHasher)}
	var prev [32]byte
	for i, rec := range records {
		e, err := EncodeEntry(Entry{V: 1, Seq: uint64(i), Prev: prev, Time: 1700000000000 + uint64(i),
			Chain: chain, Origin: serverID, Record: rec})
		if err != nil {
			t.Fatal(err)
		}
		prev = LeafHash(e)
		l.entries = append(l.entries, e)
		l.tree.AppendData(e)
	}
	return l
}

func TestParseRotation(t *testing.T) {
	k0, k1 := testKey(20), testKey(21)
	id := ServerIDFromKey(pubOf(k0))
	origin := OriginLine(id, KeysChain)
	good := rotationRecord(t, id, 1, k0, k1)
	tests := []struct {
		name     string
		serverID string
		rec      []byte
		want     error
		also     error
	}{
		{"good", id, good, nil, nil},
		{"other server's origin", ServerIDFromKey(pubOf(k1)), good, ErrBadRotation, ErrBadSignature},
		{"bad signature", id, flipSig(t, good), ErrBadRotation, ErrBadSignature},
		{"unsigned", id, craftedRotation(t, origin, nil, RotateType, map[string]any{"new": keyText(k1)}), ErrBadRotation, ErrUnsigned},
		{"signed for the vote chain", id, craftedRotation(t, OriginLine(id, "vote"), k0, RotateType, map[string]any{"new": keyText(k1)}), ErrBadRotation, ErrBadSignature},
		{"other type", id, craftedRotation(t, origin, k0, "key.rotated", map[string]any{"new": keyText(k1)}), ErrBadRotation, nil},
		{"no type", id, mustMarshal(t, map[string]any{"id": "00000000-0000-7000-8000-000000000001", "payload": map[string]any{"new": keyText(k1)}}), ErrBadRotation, nil},
		{"extra payload key", id, craftedRotation(t, origin, k0, RotateType, map[string]any{"new": keyText(k1), "why": "x"}), ErrBadRotation, nil},
		{"payload not a map", id, craftedRotation(t, origin, k0, RotateType, keyText(k1)), ErrBadRotation, nil},
		{"key as bytes", id, craftedRotation(t, origin, k0, RotateType, map[string]any{"new": []byte(pubOf(k1))}), ErrBadRotation, nil},
		{"unpadded key", id, craftedRotation(t, origin, k0, RotateType, map[string]any{"new": base64.RawStdEncoding.EncodeToString(pubOf(k1))}), ErrBadRotation, nil},
		{"short key", id, craftedRotation(t, origin, k0, RotateType, map[string]any{"new": base64.StdEncoding.EncodeToString(pubOf(k1)[:31])}), ErrBadRotation, nil},
		{"to itself", id, craftedRotation(t, origin, k0, RotateType, map[string]any{"new": keyText(k0)}), ErrBadRotation, nil},
		{"not a record", id, []byte{0xa0}, ErrBadRotation, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old, next, err := ParseRotation(tc.serverID, tc.rec)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ParseRotation: %v", err)
				}
				if !bytes.Equal(old, pubOf(k0)) || !bytes.Equal(next, pubOf(k1)) {
					t.Fatalf("got old %x next %x, want %x and %x", old, next, pubOf(k0), pubOf(k1))
				}
				return
			}
			if !errors.Is(err, tc.want) || (tc.also != nil && !errors.Is(err, tc.also)) {
				t.Fatalf("err = %v, want %v (and %v)", err, tc.want, tc.also)
			}
		})
	}
}

func TestKeyHistory(t *testing.T) {
	k0, k1, k2, k3, stranger := testKey(20), testKey(21), testKey(22), testKey(23), testKey(29)
	id := ServerIDFromKey(pubOf(k0))
	origin := OriginLine(id, KeysChain)
	other := mustMarshal(t, map[string]any{"id": "00000000-0000-7000-8000-0000000000aa", "type": "note", "payload": "hello"})
	r01 := rotationRecord(t, id, 1, k0, k1)
	r12 := rotationRecord(t, id, 2, k1, k2)
	entries := func(chain string, recs ...[]byte) [][]byte { return keysLog(t, id, chain, recs...).entries }
	swapped := entries(KeysChain, r01, r12)
	swapped[0], swapped[1] = swapped[1], swapped[0]

	tests := []struct {
		name    string
		entries [][]byte
		want    []ed25519.PublicKey
		err     error
	}{
		{"empty chain", nil, nil, nil},
		{"no rotations", entries(KeysChain, other), nil, nil},
		{"one rotation", entries(KeysChain, r01), []ed25519.PublicKey{pubOf(k0), pubOf(k1)}, nil},
		{"two rotations", entries(KeysChain, r01, r12), []ed25519.PublicKey{pubOf(k0), pubOf(k1), pubOf(k2)}, nil},
		{"wrong anchor", entries(KeysChain, rotationRecord(t, id, 1, stranger, k1)), nil, ErrBrokenRotation},
		{"anchor skipped", entries(KeysChain, r12), nil, ErrBrokenRotation},
		{"broken link", entries(KeysChain, r01, rotationRecord(t, id, 2, k2, k3)), nil, ErrBrokenRotation},
		{"back to a retired key", entries(KeysChain, r01, rotationRecord(t, id, 2, k1, k0)), nil, ErrBrokenRotation},
		{"bad signature", entries(KeysChain, flipSig(t, r01)), nil, ErrBadSignature},
		{"unsigned rotation", entries(KeysChain, craftedRotation(t, origin, nil, RotateType, map[string]any{"new": keyText(k1)})), nil, ErrBadRotation},
		{"rotation of another server", keysLog(t, ServerIDFromKey(pubOf(stranger)), KeysChain, rotationRecord(t, ServerIDFromKey(pubOf(stranger)), 1, stranger, k1)).entries, nil, ErrBadRotation},
		{"entry of another chain", entries("vote", r01), nil, ErrBadRotation},
		{"out of seq order", swapped, nil, ErrBrokenRotation},
		{"not an entry", [][]byte{r01}, nil, ErrBadRotation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KeyHistory(id, tc.entries)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("KeyHistory: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("key %d = %x, want %x", i, got[i], tc.want[i])
				}
			}
		})
	}

	// Records of other types between rotations do not break the links.
	got, err := KeyHistory(id, entries(KeysChain, other, r01, mustMarshal(t, map[string]any{"id": "00000000-0000-7000-8000-0000000000bb", "payload": 1}), r12))
	if err != nil || len(got) != 3 || !bytes.Equal(got[2], pubOf(k2)) {
		t.Fatalf("history with other records = %d keys, %v; want k0 k1 k2", len(got), err)
	}
}

func TestFollowRotations(t *testing.T) {
	k0, k1, k2, k3, k4 := testKey(20), testKey(21), testKey(22), testKey(23), testKey(24)
	id := ServerIDFromKey(pubOf(k0))
	other := mustMarshal(t, map[string]any{"id": "00000000-0000-7000-8000-0000000000aa", "type": "note", "payload": "hello"})
	// seq 0: other, seq 1: k0→k1, seq 2: k1→k2, seq 3: k3→k4 (forged link)
	l := keysLog(t, id, KeysChain, other, rotationRecord(t, id, 1, k0, k1), rotationRecord(t, id, 2, k1, k2), rotationRecord(t, id, 3, k3, k4))
	// receipt of seq against the checkpoint of size seq+1, signed by signer.
	receipt := func(l *testLog, seq uint64, signer ed25519.PrivateKey) []byte {
		l.priv = signer
		return l.receipt(t, seq, seq+1)
	}
	r01 := receipt(l, 1, k0)
	r12 := receipt(l, 2, k1)
	r34 := receipt(l, 3, k3)
	r01ByNew := receipt(l, 1, k1)
	r01Later := receipt(l, 1, k2) // a later checkpoint, signed by a later key
	l.priv = k0
	r01Size3 := l.receipt(t, 1, 3)

	// A key.rotate record authored by k0 but appended to the vote chain.
	vote := keysLog(t, id, "vote", rotationRecord(t, id, 1, k0, k1))
	rVote := receipt(vote, 0, k0)

	tests := []struct {
		name     string
		trusted  ed25519.PrivateKey
		serverID string
		receipts [][]byte
		want     ed25519.PrivateKey
		err      error
	}{
		{"one step", k0, id, [][]byte{r01}, k1, nil},
		{"two steps", k0, id, [][]byte{r01, r12}, k2, nil},
		{"against a later checkpoint of the old key", k0, id, [][]byte{r01Size3}, k1, nil},
		{"older history skipped", k1, id, [][]byte{r01, r12}, k2, nil},
		{"nothing from the trusted key", k2, id, [][]byte{r01, r12}, nil, ErrBrokenRotation},
		{"no receipts", k0, id, nil, nil, ErrBrokenRotation},
		{"missing first step", k0, id, [][]byte{r12}, nil, ErrBrokenRotation},
		{"receipt signed by the new key", k0, id, [][]byte{r01ByNew}, nil, ErrNoLogSig},
		{"receipt signed by a later key", k0, id, [][]byte{r01Later}, nil, ErrNoLogSig},
		{"forged link after a good step", k0, id, [][]byte{r01, r12, r34}, nil, ErrBrokenRotation},
		{"forged link alone", k3, id, [][]byte{r34}, k4, nil}, // k3 signed it: only whoever already trusts k3 follows
		{"wrong server-id", k0, ServerIDFromKey(pubOf(k1)), [][]byte{r01}, nil, ErrWrongOrigin},
		{"entry of another chain", k0, id, [][]byte{rVote}, nil, ErrBadRotation},
		{"not a receipt", k0, id, [][]byte{[]byte("hello\n\n")}, nil, ErrBadReceipt},
		{"order reversed", k0, id, [][]byte{r12, r01}, k1, nil}, // r12 is older history while nothing is applied
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FollowRotations(pubOf(tc.trusted), tc.serverID, tc.receipts)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FollowRotations: %v", err)
			}
			if !bytes.Equal(got, pubOf(tc.want)) {
				t.Fatalf("got key %x, want %x", got, pubOf(tc.want))
			}
		})
	}
}

func TestOpenCheckpointKeys(t *testing.T) {
	l := newTestLog(t, 3)
	old := testKey(9)
	n := l.note(t, 3) // signed by l.priv
	if _, err := OpenCheckpointKeys(n, l.origin(), pubOf(old), l.pub(), l.pub()); err != nil {
		t.Fatalf("note signed by the second key of the ring: %v", err)
	}
	if _, err := OpenCheckpointKeys(n, l.origin(), pubOf(old)); !errors.Is(err, ErrNoLogSig) {
		t.Fatalf("note by a key outside the ring: err = %v, want ErrNoLogSig", err)
	}
	if _, err := OpenCheckpointKeys(n, OriginLine(l.serverID, "donation"), l.pub()); !errors.Is(err, ErrNoLogSig) {
		t.Fatalf("note of another origin: err = %v, want ErrNoLogSig", err)
	}
}
