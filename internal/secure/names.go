package secure

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// fingerprintPrefix starts every fingerprint; it names the hash so that a
// fingerprint can never be mistaken for a public key.
const fingerprintPrefix = "SHA256:"

// PublicKeyText is the text form of an identity key (§2.4): padded standard
// base64 of the 32 bytes. Offline verifiers and known_hosts use it.
func PublicKeyText(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form written by PublicKeyText. It accepts
// exactly the canonical padded encoding of 32 bytes.
func ParsePublicKey(text string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("public key %q: not padded standard base64", text)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: %d bytes, want %d", text, len(b), ed25519.PublicKeySize)
	}
	if PublicKeyText(b) != text {
		return nil, fmt.Errorf("public key %q: not canonical base64", text)
	}
	return ed25519.PublicKey(b), nil
}

// Fingerprint is the form of an identity key people compare (§2.4):
// "SHA256:" + unpadded standard base64 of SHA-256 of the key. It is not
// comparable with ssh-keygen -l, which hashes a different encoding.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return fingerprintPrefix + base64.RawStdEncoding.EncodeToString(sum[:])
}

// IsFingerprint reports whether text has the exact form Fingerprint writes,
// so that a --server-key argument can be told apart from a public key.
func IsFingerprint(text string) bool {
	rest, ok := strings.CutPrefix(text, fingerprintPrefix)
	if !ok {
		return false
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == sha256.Size && base64.RawStdEncoding.EncodeToString(b) == rest
}

// ServerIDOf is the server-id derived from an identity key: lowercase hex of
// the first 16 bytes of its SHA-256. A server computes it once, from its first
// key, and keeps it across rotations.
func ServerIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// validServerID reports whether s has the form ServerIDOf produces.
func validServerID(s string) error {
	if len(s) != 32 {
		return fmt.Errorf("server-id %q: %d characters, want 32", s, len(s))
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("server-id %q: not lowercase hex", s)
		}
	}
	return nil
}
