package server_test

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/google/uuid"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// TestPutReceiptVerifiesOffline is the core promise in one test: a record put
// over the wire comes back with a receipt that verifies offline against the
// server's public key, and the audit chain recorded the admin action.
func TestPutReceiptVerifiesOffline(t *testing.T) {
	srv := testenv.Start(t)
	ctx := context.Background()
	admin := srv.AdminClient()
	if _, err := admin.Call(ctx, "mkchain", "tally", map[string]any{"public": true, "pow_bits": uint64(0)}); err != nil {
		t.Fatalf("mkchain: %v", err)
	}
	rec, err := wire.Marshal(map[string]any{
		"id":      uuid.Must(uuid.NewV7()).String(),
		"payload": map[string]any{"voter": "José", "choice": "نعم", "note": "Привет 世界 🗳️"},
	})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := admin.Call(ctx, "rput", "tally", wire.RawMessage(rec), map[string]any{"receipt": true})
	if err != nil {
		t.Fatalf("rput: %v", err)
	}
	var res []struct {
		ID      string `cbor:"id"`
		Seq     uint64 `cbor:"seq"`
		Leaf    []byte `cbor:"leaf"`
		Receipt string `cbor:"receipt"`
	}
	if err := wire.Unmarshal(vals[0], &res); err != nil || len(res) != 1 {
		t.Fatalf("rput reply %v: %v", res, err)
	}
	if res[0].Seq != 0 || len(res[0].Leaf) != 32 {
		t.Errorf("rput result = seq %d leaf %d bytes, want seq 0 and 32 bytes", res[0].Seq, len(res[0].Leaf))
	}
	id, err := admin.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := secure.ParsePublicKey(id.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := verify.VerifyReceipt([]byte(res[0].Receipt), verify.ReceiptOptions{ServerKey: ed25519.PublicKey(pub)})
	if err != nil {
		t.Fatalf("receipt does not verify: %v\n%s", err, res[0].Receipt)
	}
	if got == nil {
		t.Fatal("VerifyReceipt returned nothing")
	}

	// The anonymous reader sees the public chain, not the private audit chain.
	anon := srv.Dial()
	if _, err := anon.Call(ctx, "rget", "tally", res[0].ID); err != nil {
		t.Errorf("anonymous rget of a public chain: %v", err)
	}
	if _, err := anon.Call(ctx, "rsize", "audit"); !errorsIsCode(err, wire.CodeNotFound) {
		t.Errorf("anonymous rsize audit: err = %v, want ERR notfound", err)
	}
	vals, err = admin.Call(ctx, "rsize", "audit")
	if err != nil {
		t.Fatalf("admin rsize audit: %v", err)
	}
	var n uint64
	if err := wire.Unmarshal(vals[0], &n); err != nil || n < 1 {
		t.Errorf("audit chain size = %d (%v), want at least 1 (the mkchain)", n, err)
	}
}

func errorsIsCode(err error, code wire.Code) bool {
	return err != nil && wire.CodeOf(err) == code
}
