package secure

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// poolKeyFileSize is the size of pool/<kid>.key: X25519 private key (32) ‖
// ML-KEM-768 seed (64) ‖ uint64-BE exp (8).
const poolKeyFileSize = 32 + mlkem.SeedSize + 8

// PoolKey is one session key of the server's pool: an X25519 key (the Noise
// responder static key) and an ML-KEM-768 key, with an expiry, and their
// keyinfo signed by the identity. Everything a handshake needs is parsed and
// signed once, when the key is made or loaded, so that a handshake costs no
// signature and no key expansion.
type PoolKey struct {
	kid    string
	exp    uint64
	x25519 *ecdh.PrivateKey
	xPriv  []byte // x25519's encoding, as noise.DHKey wants it
	xPub   []byte
	dk     *mlkem.DecapsulationKey768
	info   []byte
}

// KID is the key's id: lowercase hex of SHA-256(x25519 ‖ mlkem)[:8].
func (k *PoolKey) KID() string { return k.kid }

// Expires is the end of the key's life, as its keyinfo states it.
func (k *PoolKey) Expires() time.Time { return time.Unix(int64(k.exp), 0) }

// Info is the CBOR keyinfo the akey command answers with. The slice is
// shared: do not modify it.
func (k *PoolKey) Info() []byte { return k.info }

// newPoolKey makes a fresh pool key expiring at exp (unix seconds).
func newPoolKey(id *Identity, exp uint64) (*PoolKey, error) {
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate pool key: %w", err)
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, fmt.Errorf("generate pool key: %w", err)
	}
	return assemblePoolKey(id, x, dk, exp)
}

// parsePoolKeyFile decodes a pool key file and re-signs its keyinfo with id
// (Ed25519 is deterministic, so this reproduces the signature the key had,
// or signs it with the current key after an identity rotation).
func parsePoolKeyFile(id *Identity, b []byte) (*PoolKey, error) {
	if len(b) != poolKeyFileSize {
		return nil, fmt.Errorf("pool key file: %d bytes, want %d", len(b), poolKeyFileSize)
	}
	x, err := ecdh.X25519().NewPrivateKey(b[:32])
	if err != nil {
		return nil, fmt.Errorf("pool key file: x25519: %w", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(b[32 : 32+mlkem.SeedSize])
	if err != nil {
		return nil, fmt.Errorf("pool key file: mlkem: %w", err)
	}
	exp := binary.BigEndian.Uint64(b[32+mlkem.SeedSize:])
	return assemblePoolKey(id, x, dk, exp)
}

func assemblePoolKey(id *Identity, x *ecdh.PrivateKey, dk *mlkem.DecapsulationKey768, exp uint64) (*PoolKey, error) {
	xPub := x.PublicKey().Bytes()
	ek := dk.EncapsulationKey().Bytes()
	kid := KIDOf(xPub, ek)
	ki := &KeyInfo{
		ID:     id.Public(),
		KID:    kid,
		X25519: xPub,
		MLKEM:  ek,
		Exp:    exp,
		Sig:    ed25519.Sign(id.Key, poolKeySignedBytes(kid, exp, xPub, ek)),
	}
	info, err := ki.Marshal()
	if err != nil {
		return nil, fmt.Errorf("pool key %s: keyinfo: %w", kid, err)
	}
	return &PoolKey{
		kid: kid, exp: exp, x25519: x, xPriv: x.Bytes(), xPub: xPub, dk: dk, info: info,
	}, nil
}

// fileBytes is the content of the key's pool file.
func (k *PoolKey) fileBytes() []byte {
	b := make([]byte, 0, poolKeyFileSize)
	b = append(b, k.xPriv...)
	b = append(b, k.dk.Bytes()...)
	return binary.BigEndian.AppendUint64(b, k.exp)
}
