package secure

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/flynn/noise"
)

// Frame limits (§2.1): a frame body is at most 65535 bytes, and one
// encryption adds a 16-byte GCM tag.
const (
	MaxFrame     = 65535
	TagSize      = 16
	MaxPlaintext = MaxFrame - TagSize // 65519
)

// ErrSessionBroken is returned by every Open (or Seal) after one has failed:
// a failed decryption means tampering or desynchronisation, and nothing later
// on that direction can be trusted.
var ErrSessionBroken = errors.New("session: a previous frame failed; the connection must be closed")

// Session is an established encrypted session: one Noise CipherState per
// direction, each behind its own lock because a CipherState is not safe for
// concurrent use, while sending and receiving may well run at the same time.
type Session struct {
	hash []byte

	sendMu     sync.Mutex
	send       *noise.CipherState
	sendBroken bool

	recvMu     sync.Mutex
	recv       *noise.CipherState
	recvBroken bool
}

func newSession(send, recv *noise.CipherState, handshakeHash []byte) *Session {
	return &Session{send: send, recv: recv, hash: bytes.Clone(handshakeHash)}
}

// Seal encrypts one frame body and appends it to dst. plaintext may be at
// most MaxPlaintext bytes. After 2^64-1 frames it fails rather than reuse a
// nonce (a new handshake is needed long before that).
func (s *Session) Seal(dst, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("seal: %d bytes, at most %d fit in a frame", len(plaintext), MaxPlaintext)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sendBroken {
		return nil, ErrSessionBroken
	}
	out, err := s.send.Encrypt(dst, nil, plaintext)
	if err != nil {
		s.sendBroken = true
		return nil, fmt.Errorf("seal: %w", err)
	}
	return out, nil
}

// Open decrypts one frame body and appends the plaintext to dst. Frames
// must arrive in the order they were sealed, each exactly once. Any failure
// is final: the session refuses every later frame too.
func (s *Session) Open(dst, ciphertext []byte) ([]byte, error) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.recvBroken {
		return nil, ErrSessionBroken
	}
	if len(ciphertext) < TagSize || len(ciphertext) > MaxFrame {
		s.recvBroken = true
		return nil, fmt.Errorf("open: frame of %d bytes, want %d to %d", len(ciphertext), TagSize, MaxFrame)
	}
	out, err := s.recv.Decrypt(dst, nil, ciphertext)
	if err != nil {
		s.recvBroken = true
		return nil, fmt.Errorf("open: %w", err)
	}
	return out, nil
}

// Rekey replaces the keys of both directions by their Noise REKEY (§2.3
// step 4): the server calls it right after sealing the last frame of rekey's
// OK, the client right after opening it. Nonces continue.
func (s *Session) Rekey() {
	s.sendMu.Lock()
	s.send.Rekey()
	s.sendMu.Unlock()
	s.recvMu.Lock()
	s.recv.Rekey()
	s.recvMu.Unlock()
}

// HandshakeHash is the Noise handshake hash h (the channel binding): 32
// bytes unique to this session. pauth signs it, and a handshake inside the
// session puts it at the head of the next transcript.
func (s *Session) HandshakeHash() []byte { return bytes.Clone(s.hash) }

// PeerAuthContext begins the message a replication peer signs to prove its
// identity on a session (pauth, docs/protocol.md §11).
const PeerAuthContext = "vserv-peer-v1\n"

// PeerAuthMessage is what a peer signs with its identity key for pauth:
// PeerAuthContext ‖ h, h the handshake hash of the session in force. The
// hash binds the signature to this session: it is worth nothing on another.
func PeerAuthMessage(h []byte) []byte {
	return append([]byte(PeerAuthContext), h...)
}
