// Package uid makes and resolves the unique IDs of docs/applications.md §5: a uid value
// {"uid": text, "sealed": bytes?} stands for a privileged text m (a donor's
// name, a recipient's address) that only its publisher can resolve, and that
// the person it stands for can prove with the opening (m, r).
//
// The commitment is C = SHA-256("vserv-uid-v1\n" ‖ r ‖ m) with 32 random
// bytes r; uid = "u" + lowercase unpadded base32 of C[:20]. sealed is an RFC
// 9180 HPKE single-shot Seal (KEM MLKEM768-X25519, KDF HKDF-SHA256, AEAD
// AES-256-GCM, info "vserv-uid-v1") of the CBOR map {"m": m, "r": r} to the
// publisher's public key. Everything here runs on the client; the server only
// runs CheckValue on the shape. The package builds for GOOS=js GOARCH=wasm.
package uid

import (
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/vserv/vserv/canon"
)

const (
	// Info is the HPKE info string, and with a newline the commitment's
	// domain separator.
	Info = "vserv-uid-v1"
	// MaxSealed is the largest sealed opening a uid value may carry.
	MaxSealed = 4096
	// Len is the length of a uid text: "u" and 32 base32 characters.
	Len = 33
)

// Errors a caller can test with errors.Is.
var (
	ErrShape    = errors.New("uid: malformed uid value")
	ErrMismatch = errors.New("uid: opening does not match the uid")
	ErrOpen     = errors.New("uid: sealed opening does not open with this key")
	ErrKey      = errors.New("uid: malformed key")
	ErrTooLong  = errors.New("uid: text too long to seal")
)

var lowerB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// suite is the one HPKE ciphersuite of §6.5.
var (
	kem  = hpke.MLKEM768X25519()
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// Opening is what proves a uid: the privileged text and the random bytes.
type Opening struct {
	M string
	R [32]byte
}

// Value is a uid value as it appears in a payload.
type Value struct {
	UID    string
	Sealed []byte // nil when absent
}

// Map is v as the payload map {"uid": …, "sealed": …} (sealed only if set).
func (v Value) Map() map[string]any {
	m := map[string]any{"uid": v.UID}
	if v.Sealed != nil {
		m["sealed"] = v.Sealed
	}
	return m
}

// Commit is the uid text that o opens.
func Commit(o Opening) string {
	h := sha256.New()
	h.Write([]byte(Info + "\n"))
	h.Write(o.R[:])
	h.Write([]byte(o.M))
	return "u" + lowerB32.EncodeToString(h.Sum(nil)[:20])
}

// Check reports whether o opens uid; ErrMismatch if not.
func Check(uid string, o Opening) error {
	if subtle.ConstantTimeCompare([]byte(Commit(o)), []byte(uid)) != 1 {
		return fmt.Errorf("%w %s", ErrMismatch, uid)
	}
	return nil
}

// GenerateKey makes a publisher key pair.
func GenerateKey() (hpke.PrivateKey, error) {
	k, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("uid: generate key: %w", err)
	}
	return k, nil
}

// PublicKeyText is the text form of a publisher public key, as `fund.open`
// names it: padded standard base64 of its RFC 9180 serialization.
func PublicKeyText(pk hpke.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pk.Bytes())
}

// ParsePublicKey reads PublicKeyText's form strictly (canonical base64, a
// valid MLKEM768-X25519 key).
func ParsePublicKey(s string) (hpke.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: public key is not padded standard base64", ErrKey)
	}
	pk, err := kem.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not an MLKEM768-X25519 public key (%d bytes)", ErrKey, len(b))
	}
	return pk, nil
}

// MarshalPrivateKey and ParsePrivateKey store a publisher private key as its
// RFC 9180 serialization.
func MarshalPrivateKey(k hpke.PrivateKey) ([]byte, error) {
	b, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("uid: private key: %w", err)
	}
	return b, nil
}

// ParsePrivateKey is the inverse of MarshalPrivateKey.
func ParsePrivateKey(b []byte) (hpke.PrivateKey, error) {
	k, err := kem.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not an MLKEM768-X25519 private key", ErrKey)
	}
	return k, nil
}

type openingWire struct {
	M string `cbor:"m"`
	R []byte `cbor:"r"`
}

// New makes a uid for the privileged text m. With a publisher key pub the
// value carries the sealed opening; with nil it carries only the uid (the
// holder of the opening alone can then prove it).
func New(pub hpke.PublicKey, m string) (Value, Opening, error) {
	if !utf8.ValidString(m) {
		return Value{}, Opening{}, fmt.Errorf("%w: text is not valid UTF-8", ErrShape)
	}
	var o Opening
	o.M = m
	if _, err := rand.Read(o.R[:]); err != nil {
		return Value{}, Opening{}, fmt.Errorf("uid: random: %w", err)
	}
	v := Value{UID: Commit(o)}
	if pub == nil {
		return v, o, nil
	}
	pt, err := canon.Marshal(openingWire{M: o.M, R: o.R[:]})
	if err != nil {
		return Value{}, Opening{}, fmt.Errorf("uid: encode opening: %w", err)
	}
	sealed, err := hpke.Seal(pub, kdf, aead, []byte(Info), pt)
	if err != nil {
		return Value{}, Opening{}, fmt.Errorf("uid: seal: %w", err)
	}
	if len(sealed) > MaxSealed {
		return Value{}, Opening{}, fmt.Errorf("%w: sealed opening is %d bytes, the limit is %d", ErrTooLong, len(sealed), MaxSealed)
	}
	v.Sealed = sealed
	return v, o, nil
}

// Open resolves v with the publisher's private key: it opens v.Sealed, decodes
// the opening strictly and checks it against v.UID.
func Open(priv hpke.PrivateKey, v Value) (Opening, error) {
	if err := checkUID(v.UID); err != nil {
		return Opening{}, err
	}
	if len(v.Sealed) == 0 {
		return Opening{}, fmt.Errorf("%w: the uid value has no sealed opening", ErrOpen)
	}
	pt, err := hpke.Open(priv, kdf, aead, []byte(Info), v.Sealed)
	if err != nil {
		return Opening{}, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	var m map[string]any
	if err := canon.UnmarshalCanonical(pt, &m); err != nil {
		return Opening{}, fmt.Errorf("%w: opening is not a canonical cbor map: %v", ErrShape, err)
	}
	text, okM := m["m"].(string)
	r, okR := m["r"].([]byte)
	if len(m) != 2 || !okM || !okR || len(r) != 32 {
		return Opening{}, fmt.Errorf("%w: opening must be exactly {m: text, r: 32 bytes}", ErrShape)
	}
	o := Opening{M: text}
	copy(o.R[:], r)
	if err := Check(v.UID, o); err != nil {
		return Opening{}, err
	}
	return o, nil
}

// CheckValue is the server's shape check of a uid value in a payload (a
// decoded CBOR item): a map with exactly `uid` (text, "u" and 32 lowercase
// base32 characters) and optionally `sealed` (1 to MaxSealed bytes).
func CheckValue(x any) (Value, error) {
	m, ok := x.(map[string]any)
	if !ok {
		return Value{}, fmt.Errorf("%w: must be a map {uid, sealed?}", ErrShape)
	}
	var v Value
	for k, e := range m {
		switch k {
		case "uid":
			s, ok := e.(string)
			if !ok {
				return Value{}, fmt.Errorf("%w: uid must be text", ErrShape)
			}
			v.UID = s
		case "sealed":
			b, ok := e.([]byte)
			if !ok || len(b) == 0 || len(b) > MaxSealed {
				return Value{}, fmt.Errorf("%w: sealed must be 1 to %d bytes", ErrShape, MaxSealed)
			}
			v.Sealed = b
		default:
			return Value{}, fmt.Errorf("%w: unknown key %q", ErrShape, k)
		}
	}
	if _, ok := m["uid"]; !ok {
		return Value{}, fmt.Errorf("%w: uid is required", ErrShape)
	}
	if err := checkUID(v.UID); err != nil {
		return Value{}, err
	}
	return v, nil
}

func checkUID(s string) error {
	if len(s) != Len || s[0] != 'u' {
		return fmt.Errorf("%w: uid must be \"u\" and 32 base32 characters", ErrShape)
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("%w: uid must be \"u\" and 32 lowercase base32 characters", ErrShape)
		}
	}
	return nil
}
