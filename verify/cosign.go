package verify

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Witness cosignatures (§5.3) are C2SP tlog-cosignature/v1 lines: key type
// 0x04, key name vserv/<witness server-id>, and a signature that covers the
// witness's clock as well as the checkpoint text. x/mod/sumdb/note knows
// only type 0x01, so the signer and verifier are ours; note.Open and
// note.Sign call them like any other key.

// WitnessName is the cosignature key name of a witness: vserv/<server-id>.
func WitnessName(witnessServerID string) string { return "vserv/" + witnessServerID }

// CosignedMessage is what a witness signs: "cosignature/v1\ntime <T>\n"
// followed by the checkpoint's note text.
func CosignedMessage(t uint64, text []byte) []byte {
	msg := make([]byte, 0, 40+len(text))
	msg = append(msg, "cosignature/v1\ntime "...)
	msg = strconv.AppendUint(msg, t, 10)
	msg = append(msg, '\n')
	return append(msg, text...)
}

type cosigVerifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.id }

// Verify takes sig = uint64-BE(T) ‖ Ed25519 signature, as the note line
// carries it after the key ID.
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	return ed25519.Verify(v.pub, CosignedMessage(t, msg), sig[8:])
}

// CosignatureVerifier verifies cosignature lines of the witness with this
// server-id and public key.
func CosignatureVerifier(witnessServerID string, pub ed25519.PublicKey) note.Verifier {
	name := WitnessName(witnessServerID)
	return &cosigVerifier{name: name, id: KeyID(name, algCosignature, pub), pub: pub}
}

type cosigSigner struct {
	name string
	id   uint32
	priv ed25519.PrivateKey
	now  func() time.Time
}

func (s *cosigSigner) Name() string    { return s.name }
func (s *cosigSigner) KeyHash() uint32 { return s.id }
func (s *cosigSigner) Sign(msg []byte) ([]byte, error) {
	t := uint64(s.now().Unix())
	out := binary.BigEndian.AppendUint64(make([]byte, 0, 8+ed25519.SignatureSize), t)
	return append(out, ed25519.Sign(s.priv, CosignedMessage(t, msg))...), nil
}

// CosignatureSigner cosigns checkpoints as the witness with this server-id;
// now gives T (time.Now when nil).
func CosignatureSigner(witnessServerID string, priv ed25519.PrivateKey, now func() time.Time) note.Signer {
	if now == nil {
		now = time.Now
	}
	name := WitnessName(witnessServerID)
	pub := priv.Public().(ed25519.PublicKey)
	return &cosigSigner{name: name, id: KeyID(name, algCosignature, pub), priv: priv, now: now}
}

// CosignLine returns the signature line s makes over checkpoint note text,
// without its final newline: what a witness answers to `cosign`.
func CosignLine(text string, s note.Signer) (string, error) {
	signed, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return "", err
	}
	line := strings.TrimSuffix(string(signed[len(text)+1:]), "\n")
	if strings.Contains(line, "\n") {
		return "", errors.New("cosign: signer produced more than one line")
	}
	return line, nil
}

// AttachCosignatures appends signature lines to a signed note, skipping
// lines it already has.
func AttachCosignatures(signed []byte, lines ...string) ([]byte, error) {
	if len(signed) == 0 || signed[len(signed)-1] != '\n' {
		return nil, fmt.Errorf("%w: note must end in a newline", ErrBadNote)
	}
	have := string(signed)
	out := append([]byte(nil), signed...)
	for _, l := range lines {
		if !strings.HasPrefix(l, "— ") || strings.Contains(l, "\n") {
			return nil, fmt.Errorf("%w: bad signature line %q", ErrBadNote, l)
		}
		if strings.Contains(have, "\n"+l+"\n") {
			continue
		}
		out = append(append(out, l...), '\n')
	}
	return out, nil
}
