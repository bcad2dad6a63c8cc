package uid_test

import (
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"testing"

	"github.com/vserv/vserv/apps/uid"
	"github.com/vserv/vserv/canon"
)

func TestUIDRoundTripOpensToTheOpening(t *testing.T) {
	priv, err := uid.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := uid.ParsePublicKey(uid.PublicKeyText(priv.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	v, o, err := uid.New(pub, "Jane Doe, 1 Main St")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.UID) != uid.Len || v.UID[0] != 'u' || len(v.Sealed) == 0 || len(v.Sealed) > uid.MaxSealed {
		t.Fatalf("uid value %q with %d sealed bytes has the wrong shape", v.UID, len(v.Sealed))
	}
	if _, err := uid.CheckValue(v.Map()); err != nil {
		t.Fatalf("CheckValue of a fresh value: %v", err)
	}
	got, err := uid.Open(priv, v)
	if err != nil {
		t.Fatal(err)
	}
	if got != o {
		t.Fatalf("opened %+v, want %+v", got, o)
	}
	if err := uid.Check(v.UID, o); err != nil {
		t.Fatal(err)
	}
	// The private key survives storage.
	b, err := uid.MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	priv2, err := uid.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := uid.Open(priv2, v); err != nil || got != o {
		t.Fatalf("open with the reloaded key: %+v, %v", got, err)
	}
}

func TestUIDIsTheCommitmentOfTheDefinition(t *testing.T) {
	o := uid.Opening{M: "Jane"}
	for i := range o.R {
		o.R[i] = byte(i)
	}
	h := sha256.Sum256(append(append([]byte("vserv-uid-v1\n"), o.R[:]...), "Jane"...))
	want := "u" + strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(h[:20]), "="))
	if got := uid.Commit(o); got != want {
		t.Fatalf("Commit = %q, want %q", got, want)
	}
}

func TestWrongOpeningIsRefused(t *testing.T) {
	v, o, err := uid.New(nil, "Jane")
	if err != nil {
		t.Fatal(err)
	}
	if v.Sealed != nil {
		t.Fatal("a uid made without a publisher key carries a sealed opening")
	}
	other := o
	other.M = "John"
	flipped := o
	flipped.R[0] ^= 1
	for _, bad := range []uid.Opening{other, flipped} {
		if err := uid.Check(v.UID, bad); !errors.Is(err, uid.ErrMismatch) {
			t.Errorf("Check of a wrong opening: %v, want ErrMismatch", err)
		}
	}
}

func TestOpenRefusesOtherKeysAndForeignSealings(t *testing.T) {
	priv, _ := uid.GenerateKey()
	other, _ := uid.GenerateKey()
	v, _, err := uid.New(priv.PublicKey(), "Jane")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uid.Open(other, v); !errors.Is(err, uid.ErrOpen) {
		t.Errorf("open with another key: %v, want ErrOpen", err)
	}
	// A sealing of someone else's opening under this uid does not match.
	w, _, _ := uid.New(priv.PublicKey(), "John")
	if _, err := uid.Open(priv, uid.Value{UID: v.UID, Sealed: w.Sealed}); !errors.Is(err, uid.ErrMismatch) {
		t.Errorf("open of a foreign sealing: %v, want ErrMismatch", err)
	}
	// A sealed plaintext that is not {m, r} is malformed.
	if _, err := uid.Open(priv, uid.Value{UID: v.UID}); !errors.Is(err, uid.ErrOpen) {
		t.Errorf("open without sealed: %v, want ErrOpen", err)
	}
}

func TestNewRefusesTextTooLongToSeal(t *testing.T) {
	priv, _ := uid.GenerateKey()
	if _, _, err := uid.New(priv.PublicKey(), strings.Repeat("m", 2919)); !errors.Is(err, uid.ErrTooLong) {
		t.Fatalf("2,919 bytes: got %v, want ErrTooLong", err)
	}
	v, _, err := uid.New(priv.PublicKey(), strings.Repeat("m", 2918))
	if err != nil || len(v.Sealed) != uid.MaxSealed {
		t.Fatalf("2,918 bytes should seal to exactly 4,096: %d bytes, %v", len(v.Sealed), err)
	}
}

func TestCheckValueShapes(t *testing.T) {
	good := "u" + strings.Repeat("a", 32)
	for _, tc := range []struct {
		name string
		v    any
		ok   bool
	}{
		{"UIDOnly", map[string]any{"uid": good}, true},
		{"WithSealed", map[string]any{"uid": good, "sealed": []byte{1}}, true},
		{"Sealed4096", map[string]any{"uid": good, "sealed": make([]byte, 4096)}, true},
		{"Sealed4097", map[string]any{"uid": good, "sealed": make([]byte, 4097)}, false},
		{"SealedEmpty", map[string]any{"uid": good, "sealed": []byte{}}, false},
		{"SealedText", map[string]any{"uid": good, "sealed": "x"}, false},
		{"NoUID", map[string]any{"sealed": []byte{1}}, false},
		{"ExtraKey", map[string]any{"uid": good, "m": "Jane"}, false},
		{"Short", map[string]any{"uid": good[:32]}, false},
		{"Long", map[string]any{"uid": good + "a"}, false},
		{"NoPrefix", map[string]any{"uid": "x" + good[1:]}, false},
		{"Uppercase", map[string]any{"uid": "uA" + good[2:]}, false},
		{"Digit1", map[string]any{"uid": "u1" + good[2:]}, false},
		{"UIDBytes", map[string]any{"uid": []byte(good)}, false},
		{"NotAMap", good, false},
		{"Nil", nil, false},
	} {
		_, err := uid.CheckValue(tc.v)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, uid.ErrShape)) {
			t.Errorf("%s: CheckValue = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestParsePublicKeyIsStrict(t *testing.T) {
	priv, _ := uid.GenerateKey()
	text := uid.PublicKeyText(priv.PublicKey())
	for _, bad := range []string{"", "AAAA", text[:len(text)-4], strings.TrimRight(text, "="), text + "AAAA", strings.ReplaceAll(text, "+", "-")} {
		if bad == text {
			continue
		}
		if _, err := uid.ParsePublicKey(bad); !errors.Is(err, uid.ErrKey) {
			t.Errorf("ParsePublicKey(%.20q…) = %v, want ErrKey", bad, err)
		}
	}
}

// TestOpenRefusesAPlaintextThatIsNotAnOpening seals, with the suite of
// §6.5, plaintexts other than the canonical map {m: text, r: 32 bytes}.
func TestOpenRefusesAPlaintextThatIsNotAnOpening(t *testing.T) {
	priv, _ := uid.GenerateKey()
	v, _, _ := uid.New(nil, "Jane")
	for _, pt := range []any{
		"Jane",
		map[string]any{"m": "Jane"},
		map[string]any{"m": "Jane", "r": make([]byte, 31)},
		map[string]any{"m": []byte("Jane"), "r": make([]byte, 32)},
		map[string]any{"m": "Jane", "r": make([]byte, 32), "x": 1},
	} {
		b, err := canon.Marshal(pt)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := hpke.Seal(priv.PublicKey(), hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("vserv-uid-v1"), b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := uid.Open(priv, uid.Value{UID: v.UID, Sealed: sealed}); !errors.Is(err, uid.ErrShape) {
			t.Errorf("open of sealed %v: %v, want ErrShape", pt, err)
		}
	}
}
