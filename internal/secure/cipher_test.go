package secure

import (
	"bytes"
	"testing"

	"github.com/flynn/noise"
)

// The lazy cipher must be byte for byte flynn/noise's AESGCM, before and
// after a Noise Rekey, and refuse what that one refuses.
func TestLazyAESGCMMatchesNoiseAESGCM(t *testing.T) {
	var k [32]byte
	for i := range k {
		k[i] = byte(i * 7)
	}
	ref := noise.UnsafeNewCipherState(noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256), k, 0)
	ours := noise.UnsafeNewCipherState(noise.NewCipherSuite(noise.DH25519, cipherAESGCM, noise.HashSHA256), k, 0)
	for i := range 6 {
		if i == 3 {
			ref.Rekey()
			ours.Rekey()
		}
		pt := bytes.Repeat([]byte{byte(i)}, 10*i)
		ad := []byte{byte(i), 1}
		want, err1 := ref.Encrypt(nil, ad, pt)
		got, err2 := ours.Encrypt(nil, ad, pt)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: ours %x (%v), noise %x (%v)", i, got, err2, want, err1)
		}
	}

	c := cipherAESGCM.Cipher(k)
	ct := c.Encrypt(nil, 5, []byte("ad"), []byte("hello"))
	if pt, err := noise.CipherAESGCM.Cipher(k).Decrypt(nil, 5, []byte("ad"), ct); err != nil || string(pt) != "hello" {
		t.Fatalf("noise cannot decrypt ours: %q, %v", pt, err)
	}
	if _, err := c.Decrypt(nil, 6, []byte("ad"), ct); err == nil {
		t.Error("decrypted under the wrong nonce")
	}
	ct[0] ^= 1
	if _, err := c.Decrypt(nil, 5, []byte("ad"), ct); err == nil {
		t.Error("decrypted an altered ciphertext")
	}
}
