package secure

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// prologuePrefix starts every handshake prologue (§2.3 step 2).
const prologuePrefix = "vserv-v1"

// Transcript accumulates T, the clear-text messages a handshake's prologue
// commits to, so that the server and the client compute it the same way:
// each message as uint32-BE(n) ‖ its n bytes (the complete CBOR message,
// fragments joined, without frame headers or flag bytes), in the order they
// crossed the connection, malformed ones included. Not safe for concurrent
// use; the connection's single reader feeds it.
type Transcript struct {
	h hash.Hash
}

// NewTranscript starts the transcript of a connection's first handshake;
// the first message added is the sign-on.
func NewTranscript() *Transcript { return &Transcript{h: sha256.New()} }

// NewSessionTranscript starts the transcript of a handshake run inside a
// session (§2.3 step 5): it begins with the 32-byte handshake hash of the
// session in force, not length-prefixed; then add the akey request and its
// answer.
func NewSessionTranscript(handshakeHash []byte) *Transcript {
	t := NewTranscript()
	t.h.Write(handshakeHash)
	return t
}

// Add appends one message.
func (t *Transcript) Add(msg []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(msg)))
	t.h.Write(n[:])
	t.h.Write(msg)
}

// Prologue is "vserv-v1" ‖ SHA-256(T) for the messages added so far. It does
// not end the transcript.
func (t *Transcript) Prologue() []byte {
	return t.h.Sum([]byte(prologuePrefix))
}
