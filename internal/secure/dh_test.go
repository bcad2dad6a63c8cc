package secure

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

func TestECDHX25519InteroperatesWithDH25519(t *testing.T) {
	ours := newHandshakeDH(nil)
	if ours.DHName() != noise.DH25519.DHName() || ours.DHLen() != noise.DH25519.DHLen() {
		t.Fatalf("name/len %s/%d, want %s/%d", ours.DHName(), ours.DHLen(), noise.DH25519.DHName(), noise.DH25519.DHLen())
	}
	for i := range 5 {
		a, err := ours.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := noise.DH25519.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		// The reference derives the same public key from our private key.
		ref, err := noise.DH25519.DH(a.Private, b.Public)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := ours.DH(a.Private, b.Public)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := noise.DH25519.DH(b.Private, a.Public)
		if err != nil {
			t.Fatal(err)
		}
		var zero ECDHX25519 // no cached keys: parses the private key
		uncached, err := zero.DH(b.Private, a.Public)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mine, ref) || !bytes.Equal(mine, theirs) || !bytes.Equal(uncached, theirs) || len(mine) != 32 {
			t.Errorf("round %d: ours %x, reference %x, peer %x, uncached %x; want all equal", i, mine, ref, theirs, uncached)
		}
	}
}

func TestECDHX25519RefusesLowOrderPoints(t *testing.T) {
	ours := newHandshakeDH(nil)
	a, _ := ours.GenerateKeypair(rand.Reader)
	for _, pub := range [][]byte{make([]byte, 32), append([]byte{1}, make([]byte, 31)...)} {
		if out, err := ours.DH(a.Private, pub); err == nil {
			t.Errorf("DH with low-order point %x = %x, want an error", pub, out)
		}
		if _, err := noise.DH25519.DH(a.Private, pub); err == nil {
			t.Errorf("reference DH accepted low-order point %x (test assumption broken)", pub)
		}
	}
	if _, err := ours.DH(a.Private, make([]byte, 31)); err == nil {
		t.Error("DH with a 31-byte public key succeeded")
	}
}

// A full handshake with the client on flynn/noise's DH25519 and the server on
// ours (TestAcceptInteroperatesWithAReferenceNoiseInitiator) and the reverse
// here: our initiator against a responder on DH25519.
func TestClientInteroperatesWithAReferenceResponder(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	k := p.Pick()
	ki, _ := ParseKeyInfo(k.Info())
	hs, err := ClientHandshake(ki, testPrologue)
	if err != nil {
		t.Fatal(err)
	}
	psk, err := k.dk.Decapsulate(hs.CT)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256),
		Pattern:               noise.HandshakeNK,
		Prologue:              testPrologue,
		PresharedKey:          psk,
		PresharedKeyPlacement: 0,
		StaticKeypair:         noise.DHKey{Private: k.xPriv, Public: k.xPub},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := resp.ReadMessage(nil, hs.Msg1); err != nil {
		t.Fatalf("reference responder refused msg1: %v", err)
	}
	msg2, toServer, toClient, err := resp.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := hs.Finish(msg2)
	if err != nil {
		t.Fatalf("Finish with a reference responder: %v", err)
	}
	server := newSession(toClient, toServer, resp.ChannelBinding())
	exchange(t, client, server, []byte("ping"))
	exchange(t, server, client, []byte("pong"))
}
