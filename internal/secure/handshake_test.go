package secure

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/vserv/vserv/internal/wire"
)

var testPrologue = []byte("vserv-v1 test transcript hash 0123456789")

// exchange checks that a frame sealed by from opens at to with the same text.
func exchange(t *testing.T, from, to *Session, text []byte) {
	t.Helper()
	frame, err := from.Seal(nil, text)
	if err != nil {
		t.Fatalf("Seal(%d bytes): %v", len(text), err)
	}
	if len(frame) != len(text)+16 {
		t.Errorf("frame of %d bytes for %d plaintext bytes, want +16", len(frame), len(text))
	}
	got, err := to.Open(nil, frame)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, text) {
		t.Fatalf("Open = %q, want %q", got, text)
	}
}

func TestHandshakeThenTrafficBothWays(t *testing.T) {
	p, _, _, _ := newTestPool(t, 2)
	ki, err := ParseKeyInfo(p.Pick().Info())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ClientHandshake(ki, testPrologue)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.CT) != 1088 || len(hs.Msg1) != 48 || hs.KID != ki.KID {
		t.Fatalf("ct %d bytes, msg1 %d bytes, kid %s; want 1088, 48, %s", len(hs.CT), len(hs.Msg1), hs.KID, ki.KID)
	}
	msg2, server, err := p.Accept(hs.KID, hs.CT, hs.Msg1, testPrologue)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg2) != 48 {
		t.Fatalf("msg2 is %d bytes, want 48", len(msg2))
	}
	client, err := hs.Finish(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Finish(msg2); err == nil {
		t.Error("a second Finish succeeded")
	}
	if h := client.HandshakeHash(); len(h) != 32 || !bytes.Equal(h, server.HandshakeHash()) {
		t.Errorf("handshake hashes %x / %x, want equal 32 bytes", h, server.HandshakeHash())
	}

	big := bytes.Repeat([]byte{0xa5}, MaxPlaintext)
	for _, text := range [][]byte{[]byte("\x00[\"hello\"]"), {}, []byte("second"), big} {
		exchange(t, client, server, text)
		exchange(t, server, client, text)
	}
}

func TestEachHandshakeGivesADistinctSession(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	c1, _ := handshake(t, p, testPrologue, testPrologue)
	c2, _ := handshake(t, p, testPrologue, testPrologue)
	if bytes.Equal(c1.HandshakeHash(), c2.HandshakeHash()) {
		t.Error("two handshakes with the same pool key share a handshake hash")
	}
	f1, _ := c1.Seal(nil, []byte("same"))
	f2, _ := c2.Seal(nil, []byte("same"))
	if bytes.Equal(f1, f2) {
		t.Error("two sessions encrypt the same first frame identically")
	}
}

func TestHandshakeWithWrongPSKFails(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	ki, _ := ParseKeyInfo(p.Pick().Info())
	hs, err := ClientHandshake(ki, testPrologue)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ClientHandshake(ki, testPrologue) // another encapsulation, another shared key
	if err != nil {
		t.Fatal(err)
	}
	_, s, err := p.Accept(hs.KID, other.CT, hs.Msg1, testPrologue)
	if !errors.Is(err, wire.ErrInvalid) || s != nil {
		t.Errorf("Accept with another ct = %v, %v; want ERR invalid", s, err)
	}
}

func TestHandshakeWithWrongPrologueFails(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	ki, _ := ParseKeyInfo(p.Pick().Info())
	hs, err := ClientHandshake(ki, testPrologue)
	if err != nil {
		t.Fatal(err)
	}
	for _, prologue := range [][]byte{nil, flip(testPrologue, 3), testPrologue[:len(testPrologue)-1]} {
		if _, _, err := p.Accept(hs.KID, hs.CT, hs.Msg1, prologue); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("Accept with prologue %q = %v, want ERR invalid", prologue, err)
		}
	}
}

func TestAcceptRefusals(t *testing.T) {
	p, _, clock, _ := newTestPool(t, 2)
	ki, _ := ParseKeyInfo(p.Pick().Info())
	hs, err := ClientHandshake(ki, testPrologue)
	if err != nil {
		t.Fatal(err)
	}
	var otherKID string
	for _, kid := range p.KIDs() {
		if kid != hs.KID {
			otherKID = kid
		}
	}
	tests := []struct {
		name      string
		kid       string
		ct, msg1  []byte
		afterExpy bool
	}{
		{"unknown kid", "0123456789abcdef", hs.CT, hs.Msg1, false},
		{"other pool key", otherKID, hs.CT, hs.Msg1, false},
		{"ct short", hs.KID, hs.CT[:1087], hs.Msg1, false},
		{"ct long", hs.KID, append(append([]byte(nil), hs.CT...), 0), hs.Msg1, false},
		{"ct flipped", hs.KID, flip(hs.CT, 500), hs.Msg1, false},
		{"msg1 short", hs.KID, hs.CT, hs.Msg1[:47], false},
		{"msg1 long", hs.KID, hs.CT, append(append([]byte(nil), hs.Msg1...), 0), false},
		{"msg1 ephemeral flipped", hs.KID, hs.CT, flip(hs.Msg1, 0), false},
		{"msg1 tag flipped", hs.KID, hs.CT, flip(hs.Msg1, 47), false},
		{"expired kid", hs.KID, hs.CT, hs.Msg1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.afterExpy {
				clock.advance(25 * time.Hour)
			}
			msg2, s, err := p.Accept(tt.kid, tt.ct, tt.msg1, testPrologue)
			if !errors.Is(err, wire.ErrInvalid) || msg2 != nil || s != nil {
				t.Errorf("Accept = %x, %v, %v; want ERR invalid", msg2, s, err)
			}
		})
	}
}

func TestFinishRefusesForgedMsg2(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	ki, _ := ParseKeyInfo(p.Pick().Info())
	for name, forge := range map[string]func([]byte) []byte{
		"ephemeral flipped": func(m []byte) []byte { return flip(m, 5) },
		"tag flipped":       func(m []byte) []byte { return flip(m, 40) },
		"short":             func(m []byte) []byte { return m[:47] },
		"empty":             func(m []byte) []byte { return nil },
	} {
		hs, err := ClientHandshake(ki, testPrologue)
		if err != nil {
			t.Fatal(err)
		}
		msg2, _, err := p.Accept(hs.KID, hs.CT, hs.Msg1, testPrologue)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := hs.Finish(forge(msg2)); err == nil || s != nil {
			t.Errorf("%s: Finish = %v, %v; want an error", name, s, err)
		}
	}
}

// The server must interoperate with an independent initiator built only
// from flynn/noise's own primitives and the protocol name in DESIGN.md.
func TestAcceptInteroperatesWithAReferenceNoiseInitiator(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	ki, _ := ParseKeyInfo(p.Pick().Info())
	psk, ct := ki.ek.Encapsulate()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256),
		Pattern:               noise.HandshakeNK,
		Initiator:             true,
		Prologue:              testPrologue,
		PresharedKey:          psk,
		PresharedKeyPlacement: 0,
		PeerStatic:            ki.X25519,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg2, server, err := p.Accept(ki.KID, ct, msg1, testPrologue)
	if err != nil {
		t.Fatalf("Accept of a reference initiator: %v", err)
	}
	_, toServer, toClient, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		t.Fatalf("reference initiator refused msg2: %v", err)
	}
	client := newSession(toServer, toClient, hs.ChannelBinding())
	exchange(t, client, server, []byte("client to server"))
	exchange(t, server, client, []byte("server to client"))

	// Without the PSK, flynn/noise would run plain NK: the server must not
	// agree with such an initiator.
	plain, _ := noise.NewHandshakeState(noise.Config{
		CipherSuite: noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256),
		Pattern:     noise.HandshakeNK, Initiator: true, Prologue: testPrologue, PeerStatic: ki.X25519,
	})
	msg1, _, _, _ = plain.WriteMessage(nil, nil)
	if _, _, err := p.Accept(ki.KID, ct, msg1, testPrologue); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("Accept of a plain-NK initiator = %v, want ERR invalid", err)
	}
}

func TestHandshakeRefusesAPSKThatIsNot32Bytes(t *testing.T) {
	for _, psk := range [][]byte{nil, {}, make([]byte, 31), make([]byte, 33)} {
		if _, err := noiseConfig(newHandshakeDH(nil), true, nil, psk); err == nil {
			t.Errorf("noiseConfig accepted a %d-byte psk", len(psk))
		}
	}
	cfg, err := noiseConfig(newHandshakeDH(nil), true, nil, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	name := "Noise_" + cfg.Pattern.Name + "psk0_" + string(cfg.CipherSuite.Name())
	if name != ProtocolName {
		t.Errorf("protocol name %q, want %q", name, ProtocolName)
	}
}
