package verify

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// NamedCosignatureVerifier verifies C2SP tlog-cosignature/v1 lines of the
// witness whose key name is name: a vserv witness (name WitnessName(id)) or
// any other C2SP witness, under the name it publishes.
func NamedCosignatureVerifier(name string, pub ed25519.PublicKey) note.Verifier {
	return &cosigVerifier{name: name, id: KeyID(name, algCosignature, pub), pub: pub}
}

// cosigLineLen is the decoded length of a cosignature line's signature:
// key ID (4) ‖ uint64-BE(T) (8) ‖ Ed25519 signature (64).
const cosigLineLen = 4 + 8 + ed25519.SignatureSize

// VerifyCosignatureLine checks one cosignature line (with or without its
// final newline) of the witness (name, pub) over the checkpoint note text
// (the note without its signature lines, ending in a newline) and returns
// the witness's time T. The line is
//
//	— <name> base64(key ID ‖ uint64-BE(T) ‖ signature)
//
// with key ID = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ pub)[:4] and the signature over
// CosignedMessage(T, text). A line that is not of that shape is ErrBadNote;
// one by another key, or whose signature does not verify, is
// ErrWitnessFailed.
func VerifyCosignatureLine(text, line, name string, pub ed25519.PublicKey) (uint64, error) {
	if len(pub) != ed25519.PublicKeySize {
		return 0, fmt.Errorf("verify cosignature: witness key must be %d bytes", ed25519.PublicKeySize)
	}
	line = strings.TrimSuffix(line, "\n")
	rest, ok := strings.CutPrefix(line, "— ")
	if !ok || strings.Contains(line, "\n") {
		return 0, fmt.Errorf("%w: a cosignature line starts with \"— \" and is one line", ErrBadNote)
	}
	gotName, b64, ok := strings.Cut(rest, " ")
	if !ok || gotName == "" || strings.Contains(b64, " ") {
		return 0, fmt.Errorf("%w: want \"— <name> <base64>\"", ErrBadNote)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) != cosigLineLen {
		return 0, fmt.Errorf("%w: cosignature must be %d bytes in padded base64", ErrBadNote, cosigLineLen)
	}
	if gotName != name {
		return 0, fmt.Errorf("%w: line is by %q, want %q", ErrWitnessFailed, gotName, name)
	}
	if binary.BigEndian.Uint32(sig[:4]) != KeyID(name, algCosignature, pub) {
		return 0, fmt.Errorf("%w: key ID is not that of the witness key", ErrWitnessFailed)
	}
	t := binary.BigEndian.Uint64(sig[4:12])
	if t == 0 {
		return 0, fmt.Errorf("%w: cosignature time must be positive", ErrBadNote)
	}
	if !ed25519.Verify(pub, CosignedMessage(t, []byte(text)), sig[12:]) {
		return 0, fmt.Errorf("%w: signature does not verify", ErrWitnessFailed)
	}
	return t, nil
}

// ParseLogCheckpoint parses the note text of any C2SP tlog-checkpoint: the
// origin, the size (decimal, no leading zeros), the root (32 bytes in padded
// standard base64), then zero or more non-empty extension lines, each line
// ending in a newline. A witness accepts checkpoints of logs that are not
// vserv's, so unlike ParseCheckpoint it allows extension lines (and ignores
// them); the root and size are what it checks proofs against.
func ParseLogCheckpoint(text string) (*Checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%w: checkpoint text must end in a newline", ErrBadNote)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("%w: want at least 3 lines", ErrBadNote)
	}
	for _, l := range lines {
		if l == "" {
			return nil, fmt.Errorf("%w: empty line in checkpoint text", ErrBadNote)
		}
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return nil, fmt.Errorf("%w: size %q is not a decimal without leading zeros", ErrBadNote, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return nil, fmt.Errorf("%w: root must be 32 bytes in padded base64", ErrBadNote)
	}
	c := &Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// CosignatureVerifierKey is the C2SP signed-note verifier key ("vkey") of
// the witness (name, pub): "<name>+<key ID, 8 hex digits>+base64(0x04 ‖
// pub)", what a witness publishes so that logs and clients that are not
// vserv (torchwood policies, Sigsum, Tessera) can check its cosignatures.
func CosignatureVerifierKey(name string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", name, KeyID(name, algCosignature, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algCosignature}, pub...)))
}
