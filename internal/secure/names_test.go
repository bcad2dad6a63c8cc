package secure

import (
	"crypto/ed25519"
	"testing"
)

func TestKeyNamesHaveExactForms(t *testing.T) {
	zero := make(ed25519.PublicKey, 32)
	tests := []struct {
		key                ed25519.PublicKey
		text, fp, serverID string
	}{
		{zero, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "SHA256:Zmh6rfhivXdsj8GLjp+OIAiXFIVu4jOzkCpZHQ1fKSU", "66687aadf862bd776c8fc18b8e9f8e20"},
		{seqKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "SHA256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN0", "630dcd2966c4336691125448bbb25b4f"},
	}
	for _, tt := range tests {
		if got := PublicKeyText(tt.key); got != tt.text {
			t.Errorf("PublicKeyText = %q, want %q", got, tt.text)
		}
		if got := Fingerprint(tt.key); got != tt.fp {
			t.Errorf("Fingerprint = %q, want %q", got, tt.fp)
		}
		if got := ServerIDOf(tt.key); got != tt.serverID {
			t.Errorf("ServerIDOf = %q, want %q", got, tt.serverID)
		}
		back, err := ParsePublicKey(tt.text)
		if err != nil || !back.Equal(tt.key) {
			t.Errorf("ParsePublicKey(%q) = %x, %v; want %x", tt.text, back, err, tt.key)
		}
		if !IsFingerprint(tt.fp) {
			t.Errorf("IsFingerprint(%q) = false", tt.fp)
		}
		if IsFingerprint(tt.text) {
			t.Errorf("IsFingerprint(public key %q) = true", tt.text)
		}
	}
}

func TestParsePublicKeyRefusesNonCanonicalText(t *testing.T) {
	for _, text := range []string{
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",      // unpadded
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",     // non-zero trailing bits
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",     // 31 bytes
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", // 34 bytes
		" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",    // leading space
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",   // trailing newline
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",     // URL alphabet
		"SHA256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN0",
	} {
		if k, err := ParsePublicKey(text); err == nil {
			t.Errorf("ParsePublicKey(%q) = %x, want an error", text, k)
		}
	}
}

func TestIsFingerprintRefusesOtherText(t *testing.T) {
	for _, text := range []string{
		"",
		"SHA256:",
		"sha256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN0",
		"SHA256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN0=", // padded
		"SHA256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN",   // 42 chars
		"SHA256:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN1",  // non-zero trailing bits
		"MD5:Yw3NKWbEM2aRElRIu7JbT/QSpJxzLbLIq8G4WBvXEN0",
	} {
		if IsFingerprint(text) {
			t.Errorf("IsFingerprint(%q) = true, want false", text)
		}
	}
}
