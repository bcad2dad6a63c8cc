package secure

import (
	"crypto/mlkem"
	"errors"
	"fmt"

	"github.com/flynn/noise"

	"github.com/vserv/vserv/internal/wire"
)

// ProtocolName is the full Noise protocol name of a vserv session.
const ProtocolName = "Noise_NKpsk0_25519_AESGCM_SHA256"

// pskPlacement puts the ML-KEM key into the very first message, so that
// msg1's own payload tag and everything after it depend on it.
const pskPlacement = 0

// noiseConfig is the handshake configuration both sides share.
func noiseConfig(dh noise.DHFunc, initiator bool, prologue, psk []byte) (noise.Config, error) {
	// flynn/noise treats an empty PSK as "no PSK" and would run plain NK
	// under another protocol name; refuse anything but a real 32-byte key.
	if len(psk) != mlkem.SharedKeySize {
		return noise.Config{}, fmt.Errorf("psk is %d bytes, want %d", len(psk), mlkem.SharedKeySize)
	}
	return noise.Config{
		CipherSuite:           noise.NewCipherSuite(dh, cipherAESGCM, noise.HashSHA256),
		Pattern:               noise.HandshakeNK,
		Initiator:             initiator,
		Prologue:              prologue,
		PresharedKey:          psk,
		PresharedKeyPlacement: pskPlacement,
	}, nil
}

// ClientHS is a client handshake in progress: send ["sess", KID, CT, Msg1],
// then pass the server's msg2 to Finish.
type ClientHS struct {
	KID  string // the pool key used
	CT   []byte // ML-KEM-768 ciphertext, 1088 bytes
	Msg1 []byte // Noise msg1, 48 bytes

	hs *noise.HandshakeState
}

// ClientHandshake starts a handshake to the pool key ki. The caller has
// already parsed ki (ParseKeyInfo), checked its freshness and decided that it
// trusts ki.ID; prologue is "vserv-v1" ‖ SHA-256(T) (§2.3 step 2).
func ClientHandshake(ki *KeyInfo, prologue []byte) (*ClientHS, error) {
	ek := ki.ek
	if ek == nil {
		var err error
		if ek, err = mlkem.NewEncapsulationKey768(ki.MLKEM); err != nil {
			return nil, fmt.Errorf("handshake: mlkem key: %w", err)
		}
	}
	if len(ki.X25519) != X25519KeySize {
		return nil, fmt.Errorf("handshake: x25519 key is %d bytes, want %d", len(ki.X25519), X25519KeySize)
	}
	psk, ct := ek.Encapsulate()
	cfg, err := noiseConfig(newHandshakeDH(nil), true, prologue, psk)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	cfg.PeerStatic = ki.X25519
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if len(msg1) != HandshakeMsgLen || len(ct) != MLKEMCTSize {
		return nil, fmt.Errorf("handshake: msg1 %d bytes, ct %d bytes: wrong construction", len(msg1), len(ct))
	}
	return &ClientHS{KID: ki.KID, CT: ct, Msg1: msg1, hs: hs}, nil
}

// Finish processes the server's msg2 and returns the session. It may be
// called once; any error means the server is not who ki says or the
// transcripts differ, and the connection must be closed.
func (c *ClientHS) Finish(msg2 []byte) (*Session, error) {
	hs := c.hs
	if hs == nil {
		return nil, errors.New("handshake: already finished")
	}
	c.hs = nil
	if len(msg2) != HandshakeMsgLen {
		return nil, fmt.Errorf("handshake: msg2 is %d bytes, want %d", len(msg2), HandshakeMsgLen)
	}
	payload, toServer, toClient, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, fmt.Errorf("handshake: server authentication failed: %w", err)
	}
	if len(payload) != 0 || toServer == nil {
		return nil, errors.New("handshake: unexpected payload or unfinished handshake")
	}
	return newSession(toServer, toClient, hs.ChannelBinding()), nil
}

// Accept is the server side of sess: it decapsulates ct with pool key kid,
// reads msg1 and returns msg2 and the session. Every error is a refusal the
// server answers with ERR invalid before closing; the errors are
// *wire.Error with code invalid and say which check failed.
func (p *Pool) Accept(kid string, ct, msg1, prologue []byte) (msg2 []byte, s *Session, err error) {
	k, ok := p.Lookup(kid)
	if !ok {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "unknown or expired pool key %q", kid)
	}
	if len(ct) != MLKEMCTSize {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "ct is %d bytes, want %d", len(ct), MLKEMCTSize)
	}
	if len(msg1) != HandshakeMsgLen {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "msg1 is %d bytes, want %d", len(msg1), HandshakeMsgLen)
	}
	return k.accept(ct, msg1, prologue)
}

func (k *PoolKey) accept(ct, msg1, prologue []byte) ([]byte, *Session, error) {
	// ML-KEM's implicit rejection turns a forged ct into an unrelated psk
	// rather than an error here; it then fails as a Noise error below.
	psk, err := k.dk.Decapsulate(ct)
	if err != nil {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "ct: %v", err)
	}
	cfg, err := noiseConfig(newHandshakeDH(k.x25519), false, prologue, psk)
	if err != nil {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "handshake: %v", err)
	}
	cfg.StaticKeypair = noise.DHKey{Private: k.xPriv, Public: k.xPub}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "handshake: %v", err)
	}
	payload, _, _, err := hs.ReadMessage(nil, msg1)
	if err != nil {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "handshake failed (wrong ct, prologue or key)")
	}
	if len(payload) != 0 {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "handshake: msg1 carries a payload")
	}
	msg2, toServer, toClient, err := hs.WriteMessage(nil, nil)
	if err != nil || toServer == nil {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "handshake: %v", err)
	}
	return msg2, newSession(toClient, toServer, hs.ChannelBinding()), nil
}
