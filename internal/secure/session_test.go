package secure

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/flynn/noise"

	"github.com/vserv/vserv/internal/wire"
)

// A session is what package wire encrypts frames with.
var _ wire.Cipher = (*Session)(nil)

func TestFlippedBitFailsOpenAndBreaksTheSession(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	text := []byte("\x00[\"rput\",\"votes\"]")
	for _, pos := range []int{0, 5, len(text) - 1, len(text), len(text) + 15} {
		client, server := handshake(t, p, testPrologue, testPrologue)
		frame, err := client.Seal(nil, text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := server.Open(nil, flip(frame, pos)); err == nil {
			t.Errorf("byte %d flipped: Open = %q, want an error", pos, got)
		}
		// Any failure is final, even for the genuine frame.
		if got, err := server.Open(nil, frame); err == nil {
			t.Errorf("byte %d flipped: the genuine frame opened afterwards (%q)", pos, got)
		}
	}
}

func TestReplayedOrReorderedFramesFail(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)

	client, server := handshake(t, p, testPrologue, testPrologue)
	f1, _ := client.Seal(nil, []byte("one"))
	if _, err := server.Open(nil, f1); err != nil {
		t.Fatal(err)
	}
	if got, err := server.Open(nil, f1); err == nil {
		t.Errorf("replayed frame opened: %q", got)
	}

	client, server = handshake(t, p, testPrologue, testPrologue)
	f1, _ = client.Seal(nil, []byte("one"))
	f2, _ := client.Seal(nil, []byte("two"))
	if got, err := server.Open(nil, f2); err == nil {
		t.Errorf("frame 2 opened before frame 1: %q", got)
	}
	_ = f1

	// A frame sealed by the server cannot be reflected back to it.
	_, server = handshake(t, p, testPrologue, testPrologue)
	f, _ := server.Seal(nil, []byte("from server"))
	if got, err := server.Open(nil, f); err == nil {
		t.Errorf("reflected frame opened: %q", got)
	}
}

func TestRekeyKeepsTrafficWorking(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	client, server := handshake(t, p, testPrologue, testPrologue)
	exchange(t, client, server, []byte("before"))
	exchange(t, server, client, []byte("before"))
	for i := range 3 {
		client.Rekey()
		server.Rekey()
		exchange(t, client, server, fmt.Appendf(nil, "after rekey %d", i))
		exchange(t, server, client, fmt.Appendf(nil, "after rekey %d", i))
	}
}

func TestOldKeyFramesDoNotOpenAfterRekey(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	client, server := handshake(t, p, testPrologue, testPrologue)
	exchange(t, client, server, []byte("before"))
	// Sealed under the old key at the nonce the server expects next, but
	// delivered only after both sides rekeyed.
	stale, err := client.Seal(nil, []byte("sealed under the old key"))
	if err != nil {
		t.Fatal(err)
	}
	client.Rekey()
	server.Rekey()
	if got, err := server.Open(nil, stale); err == nil {
		t.Errorf("old-key frame opened after rekey: %q", got)
	}

	// And a frame sealed after only the sender rekeyed fails at a receiver
	// still on the old key.
	client, server = handshake(t, p, testPrologue, testPrologue)
	client.Rekey()
	f, _ := client.Seal(nil, []byte("new key"))
	if got, err := server.Open(nil, f); err == nil {
		t.Errorf("new-key frame opened with the old key: %q", got)
	}
}

func TestFrameSizeLimits(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	client, server := handshake(t, p, testPrologue, testPrologue)
	frame, err := client.Seal(nil, make([]byte, 65519))
	if err != nil || len(frame) != 65535 {
		t.Fatalf("Seal of 65519 bytes = %d bytes, %v; want a 65535-byte frame", len(frame), err)
	}
	if _, err := client.Seal(nil, make([]byte, 65520)); err == nil {
		t.Error("Seal of 65520 bytes succeeded")
	}
	if _, err := server.Open(nil, frame); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 15, 65536} {
		_, server := handshake(t, p, testPrologue, testPrologue)
		if _, err := server.Open(nil, make([]byte, n)); err == nil {
			t.Errorf("Open of a %d-byte frame succeeded", n)
		}
	}
}

func TestSealAppendsToDst(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	client, server := handshake(t, p, testPrologue, testPrologue)
	frame, err := client.Seal([]byte("hdr"), []byte("body"))
	if err != nil || !bytes.HasPrefix(frame, []byte("hdr")) || len(frame) != 3+4+16 {
		t.Fatalf("Seal with dst = %q, %v", frame, err)
	}
	got, err := server.Open([]byte("pre"), frame[3:])
	if err != nil || string(got) != "prebody" {
		t.Errorf("Open with dst = %q, %v; want \"prebody\"", got, err)
	}
}

func TestNonceExhaustionIsAnError(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	client, server := handshake(t, p, testPrologue, testPrologue)
	client.send.SetNonce(noise.MaxNonce)
	server.recv.SetNonce(noise.MaxNonce)
	last, err := client.Seal(nil, []byte("last"))
	if err != nil {
		t.Fatalf("Seal at the last nonce: %v", err)
	}
	if got, err := server.Open(nil, last); err != nil || string(got) != "last" {
		t.Fatalf("Open at the last nonce = %q, %v", got, err)
	}
	for i := range 2 {
		if f, err := client.Seal(nil, []byte("one too many")); err == nil {
			t.Errorf("Seal %d after the last nonce = %x, want an error", i, f)
		}
	}
	if got, err := server.Open(nil, last); err == nil {
		t.Errorf("Open after the last nonce = %q, want an error", got)
	}
}

// Both directions run at once on one session, as the server's reader and
// writer goroutines will; -race checks the locking.
func TestSessionDirectionsAreIndependentUnderConcurrency(t *testing.T) {
	p, _, _, _ := newTestPool(t, 1)
	client, server := handshake(t, p, testPrologue, testPrologue)
	const n = 300
	run := func(from, to *Session, tag string) error {
		frames := make(chan []byte, 16)
		errc := make(chan error, 1)
		go func() {
			defer close(frames)
			for i := range n {
				f, err := from.Seal(nil, fmt.Appendf(nil, "%s %d", tag, i))
				if err != nil {
					errc <- err
					return
				}
				frames <- f
			}
		}()
		i := 0
		for f := range frames {
			got, err := to.Open(nil, f)
			if err != nil {
				return err
			}
			if want := fmt.Sprintf("%s %d", tag, i); string(got) != want {
				return fmt.Errorf("got %q, want %q", got, want)
			}
			i++
		}
		select {
		case err := <-errc:
			return err
		default:
		}
		if i != n {
			return fmt.Errorf("%s: %d frames, want %d", tag, i, n)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = run(client, server, "c2s") })
	wg.Go(func() { errs[1] = run(server, client, "s2c") })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
