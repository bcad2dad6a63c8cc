package secure

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// keyInfoMap decodes a keyinfo into a generic map so tests can tamper with it.
func keyInfoMap(t *testing.T, info []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := wire.Unmarshal(info, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

func TestKeyInfoHasTheDesignedCBORLayout(t *testing.T) {
	p, id, _, _ := newTestPool(t, 1)
	k := p.Pick()
	m := keyInfoMap(t, k.Info())
	if len(m) != 6 {
		t.Errorf("keyinfo has %d fields, want 6: %v", len(m), m)
	}
	if b, _ := m["id"].([]byte); !ed25519.PublicKey(b).Equal(id.Public()) {
		t.Errorf("id = %x, want %x", b, id.Public())
	}
	if kid, _ := m["kid"].(string); kid != k.KID() || len(kid) != 16 {
		t.Errorf("kid = %q, want %q (16 hex)", kid, k.KID())
	}
	for field, size := range map[string]int{"x25519": 32, "mlkem": 1184, "sig": 64} {
		if b, ok := m[field].([]byte); !ok || len(b) != size {
			t.Errorf("%s = %T of %d bytes, want %d bytes", field, m[field], len(b), size)
		}
	}
	if exp, ok := m["exp"].(uint64); !ok || exp != uint64(k.Expires().Unix()) {
		t.Errorf("exp = %v, want %d", m["exp"], k.Expires().Unix())
	}
	if err := wire.UnmarshalCanonical(k.Info(), new(any)); err != nil {
		t.Errorf("keyinfo is not canonical CBOR: %v", err)
	}
	// The signature covers exactly the designed bytes.
	signed := poolKeySignedBytes(k.KID(), uint64(k.Expires().Unix()), m["x25519"].([]byte), m["mlkem"].([]byte))
	if want := "vserv-poolkey-v2\n" + k.KID() + "\n"; string(signed[:len(want)]) != want {
		t.Errorf("signed bytes start %q, want %q", signed[:len(want)], want)
	}
	if !ed25519.Verify(id.Public(), signed, m["sig"].([]byte)) {
		t.Error("sig does not verify over the designed bytes")
	}
}

func TestParseKeyInfoRefusesEachTamperedField(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	info := p.Pick().Info()
	otherID, _, _ := ed25519.GenerateKey(rand.Reader)

	tests := []struct {
		name   string
		tamper func(m map[string]any)
	}{
		{"id", func(m map[string]any) { m["id"] = []byte(otherID) }},
		{"kid", func(m map[string]any) { m["kid"] = "0123456789abcdef" }},
		{"x25519", func(m map[string]any) { m["x25519"] = flip(m["x25519"].([]byte), 0) }},
		{"x25519 with matching kid", func(m map[string]any) {
			m["x25519"] = flip(m["x25519"].([]byte), 0)
			m["kid"] = KIDOf(m["x25519"].([]byte), m["mlkem"].([]byte))
		}},
		{"mlkem", func(m map[string]any) { m["mlkem"] = flip(m["mlkem"].([]byte), 100) }},
		{"mlkem with matching kid", func(m map[string]any) {
			m["mlkem"] = flip(m["mlkem"].([]byte), 100)
			m["kid"] = KIDOf(m["x25519"].([]byte), m["mlkem"].([]byte))
		}},
		{"exp", func(m map[string]any) { m["exp"] = m["exp"].(uint64) + 1 }},
		{"sig", func(m map[string]any) { m["sig"] = flip(m["sig"].([]byte), 63) }},
		// Type and shape errors.
		{"id short", func(m map[string]any) { m["id"] = m["id"].([]byte)[:31] }},
		{"id as text", func(m map[string]any) { m["id"] = PublicKeyText(m["id"].([]byte)) }},
		{"kid as bytes", func(m map[string]any) { m["kid"] = []byte(m["kid"].(string)) }},
		{"x25519 long", func(m map[string]any) { m["x25519"] = append(m["x25519"].([]byte), 0) }},
		{"mlkem short", func(m map[string]any) { m["mlkem"] = m["mlkem"].([]byte)[:1183] }},
		{"exp negative", func(m map[string]any) { m["exp"] = int64(-1) }},
		{"exp as text", func(m map[string]any) { m["exp"] = "2030" }},
		{"sig short", func(m map[string]any) { m["sig"] = m["sig"].([]byte)[:63] }},
		{"missing sig", func(m map[string]any) { delete(m, "sig") }},
		{"extra field", func(m map[string]any) { m["note"] = "hi" }},
		{"extra field replacing one", func(m map[string]any) { delete(m, "sig"); m["sig2"] = []byte{1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := keyInfoMap(t, info)
			tt.tamper(m)
			data, err := wire.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if ki, err := ParseKeyInfo(data); err == nil {
				t.Errorf("ParseKeyInfo accepted a keyinfo with tampered %s (kid %s)", tt.name, ki.KID)
			}
		})
	}
	if _, err := ParseKeyInfo(info); err != nil {
		t.Errorf("untampered keyinfo refused: %v", err)
	}
}

func TestParseKeyInfoRefusesNonMaps(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	info := p.Pick().Info()
	arr, _ := wire.Marshal([]any{"id"})
	for name, data := range map[string][]byte{
		"empty":          nil,
		"array":          arr,
		"trailing bytes": append(append([]byte(nil), info...), 0),
		"truncated":      info[:len(info)-1],
	} {
		if _, err := ParseKeyInfo(data); err == nil {
			t.Errorf("%s: ParseKeyInfo succeeded", name)
		}
	}
}

func TestCheckFresh(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	week := uint64(7 * 24 * 3600)
	tests := []struct {
		exp     uint64
		wantErr bool
	}{
		{0, true},
		{1_900_000_000 - 1, true},
		{1_900_000_000, true},
		{1_900_000_000 + 1, false},
		{1_900_000_000 + 24*3600, false},
		{1_900_000_000 + week, false},
		{1_900_000_000 + week + 1, true},
		{1<<64 - 1, true},
	}
	for _, tt := range tests {
		ki := &KeyInfo{KID: "0123456789abcdef", Exp: tt.exp}
		err := ki.CheckFresh(now)
		if gotErr := err != nil; gotErr != tt.wantErr {
			t.Errorf("exp %d at %d: err = %v, want error %v", tt.exp, now.Unix(), err, tt.wantErr)
		}
	}
}
