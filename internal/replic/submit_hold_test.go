package replic_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

// At runtime, a witness whose 409 names a size larger than ours, or one
// that refuses our consistency proof (422), makes the submitter hold the
// chain with the reason; a chain whose witness only fails (500) is not held.
func TestSubmitterHoldsAChainAWitnessShowsBehindOrForked(t *testing.T) {
	peers, _, st := open(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := ledger.Open(t.Context(), st, ledger.Config{ServerID: secure.ServerIDOf(pub), Signer: priv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	handlers := map[string]http.HandlerFunc{
		"behind": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", replic.ContentTypeSize)
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte("1000\n"))
		},
		"forked": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "consistency proof does not verify", http.StatusUnprocessableEntity)
		},
		"down": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) },
	}
	wpub, _, _ := ed25519.GenerateKey(rand.Reader)
	for chain, h := range handlers {
		if err := l.CreateChain(t.Context(), chain, true, 0, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(t.Context(), chain, [][]byte{testenv.NewRecord(t, map[string]any{"n": 1})}, ledger.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		if _, err := peers.Add(t.Context(), replic.Spec{Peer: srv.URL + "/witness", Role: replic.RoleWitness,
			Key: secure.PublicKeyText(wpub), Name: "w-" + chain, Chains: []string{chain}}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := replic.NewSubmitter(replic.SubmitterConfig{Ledger: l, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(l.Holds()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a round more: "down" must stay free
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	holds := l.Holds()
	if why := holds["behind"]; !strings.Contains(why, "holds size 1000, this data directory only 1") {
		t.Errorf("chain behind: hold %q, want one saying the witness holds 1000", why)
	}
	if why := holds["forked"]; !strings.Contains(why, "another history") {
		t.Errorf("chain forked: hold %q, want one saying the witness holds another history", why)
	}
	if why, ok := holds["down"]; ok {
		t.Errorf("chain down is held (%q): a failing witness says nothing of our history", why)
	}
	_, err = l.Append(t.Context(), "behind", [][]byte{testenv.NewRecord(t, map[string]any{"n": 2})}, ledger.AppendOptions{})
	testenv.WantCode(t, err, "conflict", "append to the chain a witness showed behind")
}
