package replic_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// TestSyncPullsNowAndRunStopsCleanly runs a Replicator in this process as
// the mirror B of a real home A that never pushes: Sync pulls what A holds
// at once (the periodic pull would wait a minute), the status and Hops say
// so, and Run returns when its context ends.
func TestSyncPullsNowAndRunStopsCleanly(t *testing.T) {
	a := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "r", 0, 3)...)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := &secure.Identity{Key: priv, ServerID: secure.ServerIDOf(pub)}
	// On A, peer-b is B's peer account (an entry nobody listens at: A
	// dials it in vain, and never pushes).
	a.Srv.AddUser("peer-b", passAtA, false)
	addHost(t, a.Admin, "127.0.0.1:1", client.HostSpec{Role: "home", Key: secure.PublicKeyText(pub), Chains: []string{"c"}, Account: "peer-b", User: "x", Pass: "x-password-1"})

	peers, _, _ := open(t)
	if _, err := peers.Add(t.Context(), replic.Spec{Peer: a.Srv.Addr, Role: replic.RoleHome, Key: a.KeyText(), Chains: []string{"c"}, Account: "peer-b", User: "peer-b", Pass: passAtA}); err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, priv)
	r, err := replic.NewReplicator(replic.ReplicatorConfig{Ledger: l, Peers: peers, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	}()

	origin := verify.OriginLine(verify.ServerIDFromKey(a.Key), "c")
	sync := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := r.Sync(t.Context(), a.Srv.Addr)
			if err == nil && len(st) == 1 && st[0].Size == want {
				if s := st[0]; s.Chain != origin || s.Role != replic.RoleHome || s.Want != want || s.LagEntries != 0 || s.Hops != 1 || s.LastError != "" || s.LastOK.IsZero() {
					t.Fatalf("status after Sync: %+v", s)
				}
				return
			}
			if err != nil && !errors.Is(err, wire.ErrNotFound) { // not yet: before Run read the peer table
				t.Fatalf("Sync: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("Sync: %+v, %v; want %s at %d", st, err, origin, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sync(3)
	testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "r", 3, 2)...)
	start := time.Now()
	sync(5)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Sync took %v", d)
	}
	if info, err := l.Chain(origin); err != nil || info.Size != 5 {
		t.Errorf("the ledger holds %+v, %v; want 5 entries of %s", info, err, origin)
	}
	if h := r.Hops(verify.ServerIDFromKey(a.Key), "c"); h != 1 {
		t.Errorf("Hops of the pulled chain = %d, want 1", h)
	}
	if h := r.Hops(id.ServerID, "vote"); h != 0 {
		t.Errorf("Hops of our own chain = %d, want 0", h)
	}
	_, err = r.Sync(t.Context(), "nobody.example:6666")
	testenv.WantCode(t, err, wire.CodeNotFound, "Sync of a peer without an entry")
}
