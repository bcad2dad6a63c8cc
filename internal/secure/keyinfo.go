package secure

import (
	"bytes"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// Sizes of the keyinfo fields (§2.3).
const (
	X25519KeySize   = 32
	MLKEMKeySize    = mlkem.EncapsulationKeySize768 // 1184
	MLKEMCTSize     = mlkem.CiphertextSize768       // 1088
	HandshakeMsgLen = 48                            // msg1 and msg2: a 32-byte ephemeral key and a 16-byte tag
	kidBytes        = 8
)

// MaxKeyInfoAhead is how far in the future a keyinfo's exp may lie: a pool key
// lives a day, so a longer one is a misconfigured or compromised server.
const MaxKeyInfoAhead = 7 * 24 * time.Hour

// poolKeySigContext separates pool-key signatures from every other use of the
// identity key (checkpoints, records).
const poolKeySigContext = "vserv-poolkey-v2\n"

// KeyInfo is a pool key's public half as the akey command carries it: a CBOR
// map {"id", "kid", "x25519", "mlkem", "exp", "sig"} (§2.3).
type KeyInfo struct {
	ID     ed25519.PublicKey // the identity that signed it
	KID    string            // lowercase hex of SHA-256(X25519 ‖ MLKEM)[:8]
	X25519 []byte            // 32 bytes: the Noise responder static key
	MLKEM  []byte            // 1184 bytes: the ML-KEM-768 encapsulation key
	Exp    uint64            // unix seconds after which the key is no longer used
	Sig    []byte            // Ed25519 by ID over SignedBytes()

	ek *mlkem.EncapsulationKey768 // parsed MLKEM, kept by ParseKeyInfo
}

// keyInfoWire is the CBOR layout; wire.Marshal orders the keys canonically.
type keyInfoWire struct {
	ID     []byte `cbor:"id"`
	KID    string `cbor:"kid"`
	X25519 []byte `cbor:"x25519"`
	MLKEM  []byte `cbor:"mlkem"`
	Exp    uint64 `cbor:"exp"`
	Sig    []byte `cbor:"sig"`
}

// KIDOf computes a pool key's kid from its two public keys.
func KIDOf(x25519Pub, mlkemEK []byte) string {
	h := sha256.New()
	h.Write(x25519Pub)
	h.Write(mlkemEK)
	return hex.EncodeToString(h.Sum(nil)[:kidBytes])
}

// poolKeySignedBytes is what the identity signs for a pool key:
// "vserv-poolkey-v2\n" ‖ kid ‖ "\n" ‖ uint64-BE(exp) ‖ x25519 ‖ mlkem.
func poolKeySignedBytes(kid string, exp uint64, x25519Pub, mlkemEK []byte) []byte {
	b := make([]byte, 0, len(poolKeySigContext)+len(kid)+1+8+len(x25519Pub)+len(mlkemEK))
	b = append(b, poolKeySigContext...)
	b = append(b, kid...)
	b = append(b, '\n')
	b = binary.BigEndian.AppendUint64(b, exp)
	b = append(b, x25519Pub...)
	b = append(b, mlkemEK...)
	return b
}

// Marshal encodes ki as the deterministic CBOR map of §2.3.
func (ki *KeyInfo) Marshal() ([]byte, error) {
	return wire.Marshal(keyInfoWire{
		ID: ki.ID, KID: ki.KID, X25519: ki.X25519, MLKEM: ki.MLKEM, Exp: ki.Exp, Sig: ki.Sig,
	})
}

// ParseKeyInfo decodes an akey keyinfo and checks everything that can be
// checked without a clock or a trust decision: exactly the six fields with
// their CBOR types and lengths, the kid, a well-formed ML-KEM key, and the
// signature by the included id. The caller must still call CheckFresh and
// decide whether it trusts ki.ID.
func ParseKeyInfo(data []byte) (*KeyInfo, error) {
	var m map[string]any
	if err := wire.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("keyinfo: %w", err)
	}
	if len(m) != 6 {
		return nil, fmt.Errorf("keyinfo: %d fields, want id, kid, x25519, mlkem, exp, sig", len(m))
	}
	var ki KeyInfo
	var err error
	if ki.ID, err = bytesField(m, "id", ed25519.PublicKeySize); err != nil {
		return nil, err
	}
	if ki.X25519, err = bytesField(m, "x25519", X25519KeySize); err != nil {
		return nil, err
	}
	if ki.MLKEM, err = bytesField(m, "mlkem", MLKEMKeySize); err != nil {
		return nil, err
	}
	if ki.Sig, err = bytesField(m, "sig", ed25519.SignatureSize); err != nil {
		return nil, err
	}
	kid, ok := m["kid"].(string)
	if !ok {
		return nil, fmt.Errorf("keyinfo: kid is missing or not text")
	}
	ki.KID = kid
	exp, ok := m["exp"].(uint64)
	if !ok {
		return nil, fmt.Errorf("keyinfo: exp is missing or not an unsigned integer")
	}
	ki.Exp = exp

	if want := KIDOf(ki.X25519, ki.MLKEM); ki.KID != want {
		return nil, fmt.Errorf("keyinfo: kid %q does not match its keys (%s)", ki.KID, want)
	}
	if !ed25519.Verify(ki.ID, poolKeySignedBytes(ki.KID, ki.Exp, ki.X25519, ki.MLKEM), ki.Sig) {
		return nil, fmt.Errorf("keyinfo: bad signature")
	}
	if ki.ek, err = mlkem.NewEncapsulationKey768(ki.MLKEM); err != nil {
		return nil, fmt.Errorf("keyinfo: mlkem: %w", err)
	}
	return &ki, nil
}

func bytesField(m map[string]any, name string, size int) ([]byte, error) {
	b, ok := m[name].([]byte)
	if !ok {
		return nil, fmt.Errorf("keyinfo: %s is missing or not a byte string", name)
	}
	if len(b) != size {
		return nil, fmt.Errorf("keyinfo: %s is %d bytes, want %d", name, len(b), size)
	}
	return bytes.Clone(b), nil
}

// CheckFresh refuses a keyinfo that has expired or claims to live more than
// MaxKeyInfoAhead past now.
func (ki *KeyInfo) CheckFresh(now time.Time) error {
	t := now.Unix()
	if t < 0 {
		return fmt.Errorf("keyinfo: clock before 1970")
	}
	switch {
	case ki.Exp <= uint64(t):
		return fmt.Errorf("keyinfo %s: expired at %s", ki.KID, time.Unix(int64(ki.Exp), 0).UTC().Format(time.RFC3339))
	case ki.Exp > uint64(t)+uint64(MaxKeyInfoAhead/time.Second):
		return fmt.Errorf("keyinfo %s: expiry %d is more than 7 days ahead", ki.KID, ki.Exp)
	}
	return nil
}
