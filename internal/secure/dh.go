package secure

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// ECDHX25519 is a noise.DHFunc ("25519") over crypto/ecdh. It is
// interchangeable on the wire with noise.DH25519 but, unlike it, does not
// recompute a public key on every DH: the private keys it generated or was
// given are kept parsed (crypto/ecdh derives the public key when a private
// key is parsed, which is what makes noise.DH25519 cost two scalar
// multiplications per DH instead of one).
//
// Use a fresh value per handshake (newHandshakeDH); the zero value works but
// parses its private key on every DH. A value is not safe for concurrent use.
type ECDHX25519 struct {
	keys []*ecdh.PrivateKey
}

var _ noise.DHFunc = (*ECDHX25519)(nil)

// newHandshakeDH returns a DHFunc for one handshake that already knows the
// static private key (nil on the client, which has none).
func newHandshakeDH(static *ecdh.PrivateKey) *ECDHX25519 {
	d := &ECDHX25519{keys: make([]*ecdh.PrivateKey, 0, 2)}
	if static != nil {
		d.keys = append(d.keys, static)
	}
	return d
}

// GenerateKeypair makes an X25519 key pair. Since Go 1.26 crypto/ecdh draws
// from the system's secure source whatever random is (unless
// GODEBUG=cryptocustomrand=1), which is what a handshake wants anyway.
func (d *ECDHX25519) GenerateKeypair(random io.Reader) (noise.DHKey, error) {
	k, err := ecdh.X25519().GenerateKey(random)
	if err != nil {
		return noise.DHKey{}, fmt.Errorf("x25519 key: %w", err)
	}
	d.keys = append(d.keys, k)
	return noise.DHKey{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// DH computes X25519(privkey, pubkey). It fails on a low-order public key
// (an all-zero result), as noise.DH25519 does.
func (d *ECDHX25519) DH(privkey, pubkey []byte) ([]byte, error) {
	k := d.find(privkey)
	if k == nil {
		var err error
		if k, err = ecdh.X25519().NewPrivateKey(privkey); err != nil {
			return nil, fmt.Errorf("x25519 private key: %w", err)
		}
	}
	pub, err := ecdh.X25519().NewPublicKey(pubkey)
	if err != nil {
		return nil, fmt.Errorf("x25519 public key: %w", err)
	}
	return k.ECDH(pub)
}

func (d *ECDHX25519) find(privkey []byte) *ecdh.PrivateKey {
	for _, k := range d.keys {
		if bytes.Equal(k.Bytes(), privkey) {
			return k
		}
	}
	return nil
}

// DHLen is the size of an X25519 result.
func (d *ECDHX25519) DHLen() int { return 32 }

// DHName is the Noise name of the function.
func (d *ECDHX25519) DHName() string { return "25519" }
