package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

const testID = "0190a5c4-7d2e-7b3a-9f1e-2c3d4e5f6a7b"

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withPayload returns a canonical {id, payload} map whose payload is the raw
// CBOR given in hex, so a test can put any bytes there.
func withPayload(t *testing.T, payloadHex string) []byte {
	t.Helper()
	p, err := hex.DecodeString(payloadHex)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0xa2}
	b = append(b, mustMarshal(t, "id")...)
	b = append(b, mustMarshal(t, testID)...)
	b = append(b, mustMarshal(t, "payload")...)
	return append(b, p...)
}

func nested(levels int) any {
	var v any = 1
	for i := 0; i < levels; i++ {
		v = []any{v}
	}
	return v
}

func TestCheckRecordAcceptsNonASCII(t *testing.T) {
	texts := []string{"José", "مرحبا بالعالم", "Привет, мир", "你好，世界", "こんにちは", "🗳️✅👍🏽", "a\u0301"}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	origin := OriginLine(strings.Repeat("ab", 16), "vote")
	for _, s := range texts {
		rec := mustMarshal(t, map[string]any{"id": testID, "type": s, "payload": map[string]any{s: s, "list": []any{s, []byte(s)}}})
		r, err := CheckRecord(rec)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if r.Type != s || r.Payload.(map[string]any)[s] != s {
			t.Fatalf("%q did not round-trip: %#v", s, r.Payload)
		}
		signed, err := SignRecord(origin, rec, priv)
		if err != nil {
			t.Fatalf("%q: sign: %v", s, err)
		}
		if err := CheckRecordSig(origin, signed); err != nil {
			t.Fatalf("%q: signature: %v", s, err)
		}
		h1, _ := RecordHash(signed)
		sr, _ := CheckRecord(signed)
		if h1 != sr.Hash || sr.Type != s {
			t.Fatalf("%q: hash or type changed by signing", s)
		}
	}
}

func TestCheckRecordRules(t *testing.T) {
	big := strings.Repeat("x", MaxRecordSize)
	tests := []struct {
		name  string
		rec   []byte
		field string
		want  error
	}{
		{"not a map", mustMarshal(t, []any{1}), "", ErrMalformed},
		{"empty", nil, "", ErrMalformed},
		{"too large", mustMarshal(t, map[string]any{"id": testID, "payload": big}), "", ErrTooLarge},
		{"unknown key", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "extra": 1}), "extra", ErrField},
		{"missing id", mustMarshal(t, map[string]any{"payload": 1}), "id", ErrField},
		{"missing payload", mustMarshal(t, map[string]any{"id": testID}), "payload", ErrField},
		{"id uppercase", mustMarshal(t, map[string]any{"id": strings.ToUpper(testID), "payload": 1}), "id", ErrField},
		{"id without dashes", mustMarshal(t, map[string]any{"id": strings.ReplaceAll(testID, "-", ""), "payload": 1}), "id", ErrField},
		{"id as bytes", mustMarshal(t, map[string]any{"id": []byte(testID), "payload": 1}), "id", ErrField},
		{"type not text", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "type": 5}), "type", ErrField},
		{"created negative", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "created": -1}), "created", ErrField},
		{"created float", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "created": 1.5}), "created", ErrField},
		{"author 31 bytes", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "author": make([]byte, 31), "sig": make([]byte, 64)}), "author", ErrField},
		{"sig 63 bytes", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "author": make([]byte, 32), "sig": make([]byte, 63)}), "sig", ErrField},
		{"sig without author", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "sig": make([]byte, 64)}), "sig", ErrField},
		{"author without sig", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "author": make([]byte, 32)}), "sig", ErrField},
		{"pow empty", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "pow": []byte{}}), "pow", ErrField},
		{"pow 33 bytes", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "pow": make([]byte, 33)}), "pow", ErrField},
		{"pow as text", mustMarshal(t, map[string]any{"id": testID, "payload": 1, "pow": "ab"}), "pow", ErrField},
		{"nesting 17", mustMarshal(t, map[string]any{"id": testID, "payload": nested(16)}), "", ErrField},
		{"nesting far too deep", mustMarshal(t, map[string]any{"id": testID, "payload": nested(40)}), "", ErrField},
		{"tag", withPayload(t, "c11a5f000000"), "", ErrMalformed},
		{"bignum tag", withPayload(t, "c2420100"), "", ErrMalformed},
		{"undefined", withPayload(t, "f7"), "", ErrMalformed},
		{"simple value 16", withPayload(t, "f0"), "", ErrMalformed},
		{"simple value 255", withPayload(t, "f8ff"), "", ErrMalformed},
		{"NaN", withPayload(t, "f97e00"), "", ErrMalformed},
		{"infinity", withPayload(t, "f97c00"), "", ErrMalformed},
		{"minus infinity", withPayload(t, "f9fc00"), "", ErrMalformed},
		{"integer map key", withPayload(t, "a10101"), "", ErrField},
		{"byte string map key", withPayload(t, "a1416101"), "", ErrField},
		{"indefinite array", withPayload(t, "9f01ff"), "", ErrMalformed},
		{"indefinite text", withPayload(t, "7f6161ff"), "", ErrMalformed},
		{"invalid utf-8", withPayload(t, "62c328"), "", ErrMalformed},
		{"non-shortest integer", withPayload(t, "1801"), "", ErrNonCanonical},
		{"non-shortest float", withPayload(t, "fb3ff0000000000000"), "", ErrNonCanonical},
		{"unsorted keys", withPayload(t, "a262626201616102"), "", ErrNonCanonical},
		{"duplicate keys", withPayload(t, "a2616101616102"), "", ErrMalformed},
		{"trailing bytes", append(mustMarshal(t, map[string]any{"id": testID, "payload": 1}), 0), "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckRecord(tt.rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckRecord: got %v, want %v", err, tt.want)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.Field != tt.field {
				t.Fatalf("field: got %+v, want %q", re, tt.field)
			}
		})
	}
}

func TestCheckRecordAcceptsEdgeValues(t *testing.T) {
	tests := []struct{ name, payloadHex string }{
		{"null", "f6"},
		{"false", "f4"},
		{"half float", "f93c00"},
		{"negative beyond int64", "3bffffffffffffffff"},
		{"uint64 max", "1bffffffffffffffff"},
		{"nesting 16", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := withPayload(t, tt.payloadHex)
			if tt.payloadHex == "" {
				rec = mustMarshal(t, map[string]any{"id": testID, "payload": nested(15)})
			}
			if _, err := CheckRecord(rec); err != nil {
				t.Fatalf("CheckRecord: %v", err)
			}
		})
	}
}

func TestRecordHashIgnoresSigAndPoW(t *testing.T) {
	base := map[string]any{"id": testID, "payload": "x", "author": make([]byte, 32)}
	h0 := mustHash(t, mustMarshal(t, map[string]any{"id": testID, "payload": "x", "author": make([]byte, 32), "sig": make([]byte, 64)}))
	base["sig"] = bytes.Repeat([]byte{1}, 64)
	base["pow"] = []byte{1, 2, 3}
	h1 := mustHash(t, mustMarshal(t, base))
	delete(base, "sig")
	delete(base, "pow")
	if h0 != h1 || h1 != sha256Of(mustMarshal(t, base)) {
		t.Fatalf("record hash depends on sig or pow")
	}
}

func TestPoW(t *testing.T) {
	h := mustHash(t, mustMarshal(t, map[string]any{"id": testID, "payload": 1}))
	for _, bits := range []int{0, 1, 8, 12, 16} {
		pow := SolvePoW(h, bits)
		if !PoWValid(h, pow, bits) {
			t.Fatalf("bits %d: solved pow does not verify", bits)
		}
		d := powDigest(h, pow)
		if got := leadingZeroBits(d); got < bits {
			t.Fatalf("bits %d: digest %x", bits, d)
		}
	}
	pow := SolvePoW(h, 12)
	if leadingZeroBits(powDigest(h, pow)) < 20 && PoWValid(h, pow, 20) {
		t.Fatal("pow valid for more bits than it has")
	}
	if PoWValid(h, nil, 1) || PoWValid(h, make([]byte, 33), 1) || PoWValid(h, pow, 33) {
		t.Fatal("bad pow inputs accepted")
	}
}

func TestRecordSigBindsOrigin(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	a := OriginLine(strings.Repeat("0", 32), "vote")
	b := OriginLine(strings.Repeat("0", 32), "resource")
	signed, err := SignRecord(a, mustMarshal(t, map[string]any{"id": testID, "payload": 1}), priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRecordSig(a, signed); err != nil {
		t.Fatal(err)
	}
	if err := CheckRecordSig(b, signed); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other origin: got %v", err)
	}
	if err := CheckRecordSig(a, mustMarshal(t, map[string]any{"id": testID, "payload": 1})); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: got %v", err)
	}
}

func mustHash(t testing.TB, rec []byte) [32]byte {
	t.Helper()
	h, err := RecordHash(rec)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
