package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is the signed statement of §4.4: the chain with this origin line
// has Size entries and Merkle root Root.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
}

// FormatCheckpointText returns the note text of c: exactly three lines (the
// origin, the size in decimal, the root in padded standard base64), each
// ending in a newline, with no extension lines.
func FormatCheckpointText(c Checkpoint) string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" +
		base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ParseCheckpoint parses checkpoint note text (without signature lines) and
// accepts it only if FormatCheckpointText gives the same bytes back.
func ParseCheckpoint(text string) (*Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return nil, fmt.Errorf("%w: want exactly 3 newline-terminated lines", ErrBadNote)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	size, err := strconv.ParseUint(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: size: %v", ErrBadNote, err)
	}
	root, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("%w: root must be 32 bytes in padded base64", ErrBadNote)
	}
	c := &Checkpoint{Origin: origin, Size: size}
	copy(c.Root[:], root)
	if size == 0 && c.Root != EmptyRoot {
		return nil, fmt.Errorf("%w: size 0 must have the empty root", ErrBadNote)
	}
	if origin == "" || strings.ContainsAny(origin, " +") || FormatCheckpointText(*c) != text {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadNote)
	}
	return c, nil
}

// Signature algorithm bytes of C2SP signed-note key IDs.
const (
	algEd25519     = 0x01
	algCosignature = 0x04
)

// KeyID is a C2SP signed-note key ID: SHA-256(name ‖ 0x0A ‖ alg ‖ key)[:4]
// read as a big-endian uint32.
func KeyID(name string, alg byte, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', alg})
	h.Write(pub)
	var sum [32]byte
	return binary.BigEndian.Uint32(h.Sum(sum[:0]))
}

type ed25519Signer struct {
	name string
	id   uint32
	priv ed25519.PrivateKey
}

func (s *ed25519Signer) Name() string    { return s.name }
func (s *ed25519Signer) KeyHash() uint32 { return s.id }
func (s *ed25519Signer) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

type ed25519Verifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

func (v *ed25519Verifier) Name() string    { return v.name }
func (v *ed25519Verifier) KeyHash() uint32 { return v.id }
func (v *ed25519Verifier) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(v.pub, msg, sig)
}

// NewNoteSigner signs checkpoints of origin with the identity key; the key
// name is the origin line itself (§4.4).
func NewNoteSigner(origin string, priv ed25519.PrivateKey) note.Signer {
	pub := priv.Public().(ed25519.PublicKey)
	return &ed25519Signer{name: origin, id: KeyID(origin, algEd25519, pub), priv: priv}
}

// NewNoteVerifier verifies checkpoint signatures of origin by pub.
func NewNoteVerifier(origin string, pub ed25519.PublicKey) note.Verifier {
	return &ed25519Verifier{name: origin, id: KeyID(origin, algEd25519, pub), pub: pub}
}

// SignCheckpoint returns the signed note of c.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: FormatCheckpointText(c)}, s)
}

// OpenCheckpoint verifies a checkpoint note signed by pub for origin and
// parses it. Signature lines by other keys (witness cosignatures) are
// ignored here; VerifyReceipt counts them.
func OpenCheckpoint(msg []byte, origin string, pub ed25519.PublicKey) (*Checkpoint, error) {
	return OpenCheckpointKeys(msg, origin, pub)
}

// OpenCheckpointKeys is OpenCheckpoint for a server whose identity rotated:
// the note must carry a valid signature by at least one of keys (its
// verified key history, KeyHistory). The key ID on each signature line says
// which key made it, so this costs one signature check, not one per key.
func OpenCheckpointKeys(msg []byte, origin string, keys ...ed25519.PublicKey) (*Checkpoint, error) {
	verifiers := make([]note.Verifier, 0, len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("open checkpoint: server key must be 32 bytes")
		}
		if seen[string(k)] {
			continue // the same key twice would make note.Open call the line ambiguous
		}
		seen[string(k)] = true
		verifiers = append(verifiers, NewNoteVerifier(origin, k))
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return nil, noteErr(err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	if c.Origin != origin {
		return nil, fmt.Errorf("%w: checkpoint is for %q, want %q", ErrWrongOrigin, c.Origin, origin)
	}
	return c, nil
}

func noteErr(err error) error {
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		return fmt.Errorf("%w: %v", ErrNoLogSig, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%w: %v", ErrNoLogSig, err)
	}
	return fmt.Errorf("%w: %v", ErrBadNote, err)
}

// CheckpointNote returns the signed checkpoint note held in b: b itself, or,
// when b is a receipt (§4.5), the note after its first empty line. It checks
// nothing; open the result with OpenCheckpoint.
func CheckpointNote(b []byte) []byte {
	s := string(b)
	if strings.HasPrefix(s, receiptHeader+"\n") {
		if _, n, ok := strings.Cut(s, "\n\n"); ok {
			return []byte(n)
		}
	}
	return b
}

// CheckpointOrigin returns the origin line (the first line) of a checkpoint
// note without checking anything else.
func CheckpointOrigin(b []byte) string {
	origin, _, _ := strings.Cut(string(b), "\n")
	return origin
}

// NoteVerifierKey is the C2SP signed-note verifier key ("vkey") of the
// checkpoints of origin signed by pub, as NewNoteVerifier checks them:
// "<origin>+<key ID, 8 hex digits>+base64(0x01 ‖ pub)". A witness that is
// not vserv (torchwood's witnessctl add-key, a Sigsum or Tessera policy)
// pins a vserv chain by it.
func NoteVerifierKey(origin string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", origin, KeyID(origin, algEd25519, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, pub...)))
}
