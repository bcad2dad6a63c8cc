package secure

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// BenchmarkHandshake is one full handshake, both sides in this process:
// keyinfo parse and signature check, encapsulation and msg1 (client), Accept
// (server), Finish (client). DESIGN.md §8 wants ≥ 1,000 handshakes/s with the
// server side ≤ 0.5 ms; BenchmarkAccept isolates the server side.
func BenchmarkHandshake(b *testing.B) {
	p, _, _, _ := newTestPool(b, 8)
	b.ReportAllocs()
	for b.Loop() {
		ki, err := ParseKeyInfo(p.Pick().Info())
		if err != nil {
			b.Fatal(err)
		}
		hs, err := ClientHandshake(ki, testPrologue)
		if err != nil {
			b.Fatal(err)
		}
		msg2, _, err := p.Accept(hs.KID, hs.CT, hs.Msg1, testPrologue)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := hs.Finish(msg2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkAccept is the server's CPU per handshake: decapsulation, two
// X25519 operations plus an ephemeral key, and the Noise hashing.
func BenchmarkAccept(b *testing.B) {
	p, _, _, _ := newTestPool(b, 8)
	ki, err := ParseKeyInfo(p.Pick().Info())
	if err != nil {
		b.Fatal(err)
	}
	hs, err := ClientHandshake(ki, testPrologue)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// Re-running the same msg1 is fine for the server: each Accept makes
		// a fresh ephemeral key, so each gives a different session.
		if _, _, err := p.Accept(hs.KID, hs.CT, hs.Msg1, testPrologue); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/accept")
}

func BenchmarkSeal64K(b *testing.B) {
	p, _, _, _ := newTestPool(b, 1)
	client, _ := handshake(b, p, testPrologue, testPrologue)
	plaintext := make([]byte, MaxPlaintext)
	buf := make([]byte, 0, MaxFrame)
	b.SetBytes(MaxPlaintext)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = client.Seal(buf[:0], plaintext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen64K(b *testing.B) {
	p, _, _, _ := newTestPool(b, 1)
	client, server := handshake(b, p, testPrologue, testPrologue)
	plaintext := make([]byte, MaxPlaintext)
	frames := make([][]byte, 256)
	next := len(frames)
	buf := make([]byte, 0, MaxFrame)
	b.SetBytes(MaxPlaintext)
	b.ReportAllocs()
	for b.Loop() {
		if next == len(frames) {
			// Frames must be opened in order, once: seal a batch off the clock.
			b.StopTimer()
			for i := range frames {
				frames[i], _ = client.Seal(frames[i][:0], plaintext)
			}
			next = 0
			b.StartTimer()
		}
		var err error
		if buf, err = server.Open(buf[:0], frames[next]); err != nil {
			b.Fatal(err)
		}
		next++
	}
}

// BenchmarkResponderDH is the responder's X25519 work in one NK handshake
// (an ephemeral key pair, DH(s, re) and DH(e, re)) with our crypto/ecdh
// DHFunc and with flynn/noise's DH25519, to keep the saving of DESIGN.md §10
// measured.
func BenchmarkResponderDH(b *testing.B) {
	static, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, _ := noise.DH25519.GenerateKeypair(rand.Reader)
	staticKey, err := ecdh.X25519().NewPrivateKey(static.Private)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		dh   func() noise.DHFunc
	}{
		{"ecdh", func() noise.DHFunc { return newHandshakeDH(staticKey) }},
		{"DH25519", func() noise.DHFunc { return noise.DH25519 }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				dh := tt.dh()
				e, err := dh.GenerateKeypair(rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := dh.DH(static.Private, peer.Public); err != nil {
					b.Fatal(err)
				}
				if _, err := dh.DH(e.Private, peer.Public); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
