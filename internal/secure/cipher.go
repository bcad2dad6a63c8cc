package secure

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"

	"github.com/flynn/noise"
)

// cipherAESGCM is noise.CipherAESGCM ("AESGCM": AES-256-GCM, nonce = 32
// zero bits ‖ uint64-BE(n)), except that it expands a key only when the key
// is first used. flynn/noise makes a cipher at every MixKey and at Split,
// seven per NKpsk0 handshake, of which the handshake itself uses two (msg1's
// and msg2's payload tags); the three never used cost an AES key expansion
// and a GCM set-up each, about 1 KiB of garbage apiece.
var cipherAESGCM noise.CipherFunc = lazyAESGCMFunc{}

type lazyAESGCMFunc struct{}

func (lazyAESGCMFunc) Cipher(k [32]byte) noise.Cipher { return &lazyAESGCM{k: k} }
func (lazyAESGCMFunc) CipherName() string             { return "AESGCM" }

// lazyAESGCM is one key's cipher. Like every noise.Cipher it is not safe for
// concurrent use (Session serialises each direction).
type lazyAESGCM struct {
	k     [32]byte
	aead  cipher.AEAD
	nonce [12]byte
}

func (c *lazyAESGCM) get(n uint64) (cipher.AEAD, []byte) {
	if c.aead == nil {
		b, err := aes.NewCipher(c.k[:])
		if err != nil {
			panic(err) // a 32-byte key cannot be refused
		}
		if c.aead, err = cipher.NewGCM(b); err != nil {
			panic(err)
		}
		clear(c.k[:]) // the AEAD holds the expanded key now
	}
	binary.BigEndian.PutUint64(c.nonce[4:], n)
	return c.aead, c.nonce[:]
}

func (c *lazyAESGCM) Encrypt(out []byte, n uint64, ad, plaintext []byte) []byte {
	aead, nonce := c.get(n)
	return aead.Seal(out, nonce, plaintext, ad)
}

func (c *lazyAESGCM) Decrypt(out []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	aead, nonce := c.get(n)
	return aead.Open(out, nonce, ciphertext, ad)
}
