package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// SecretKeyLen is the size of secret.key: an AES-256 key.
const SecretKeyLen = 32

// sealer encrypts small secrets kept in the database with AES-256-GCM. Each
// value is nonce ‖ ciphertext ‖ tag with a random 96-bit nonce; the number of
// seals per key (one per enrollment) is far below the random-nonce limit.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SecretKeyLen {
		return nil, fmt.Errorf("secret key is %d bytes, want %d", len(key), SecretKeyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// Associated data binds a sealed value to its purpose and account, so a
// value copied into another account's record (or another field) fails to
// open instead of being used there.
func totpAD(home string) []byte { return []byte("vserv auth totp\x00" + home) }

func (s *sealer) seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, ad), nil
}

func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed secret too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errors.New("sealed secret does not open: wrong secret.key or damaged database")
	}
	return plain, nil
}
