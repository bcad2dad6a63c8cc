package replic_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

// Hostile or broken witnesses: an answer over the bound, a redirect, a
// 500. None gets anything kept, the redirect is not followed, and failures
// back off (1 s, 2 s, …) instead of being retried every round.
func TestSubmitterBacksOffFromBrokenWitnessesAndKeepsNothing(t *testing.T) {
	peers, _, st := open(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := ledger.Open(t.Context(), st, ledger.Config{ServerID: secure.ServerIDOf(pub), Signer: priv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateChain(t.Context(), "c", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), "c", [][]byte{testenv.NewRecord(t, map[string]any{"n": 1})}, ledger.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var redirected atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Add(1) }))
	defer target.Close()
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("— x " + strings.Repeat("A", 20<<10) + "\n"))
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/witness/add-checkpoint", http.StatusTemporaryRedirect)
		}},
		{"fails", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }},
	}
	hits := make([]atomic.Int32, len(cases))
	wpub, _, _ := ed25519.GenerateKey(rand.Reader)
	for i, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			c.handler(w, r)
		}))
		defer srv.Close()
		if _, err := peers.Add(t.Context(), replic.Spec{Peer: srv.URL + "/witness", Role: replic.RoleWitness,
			Key: secure.PublicKeyText(wpub), Name: "w-" + c.name}); err != nil {
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
	time.Sleep(2500 * time.Millisecond) // attempts at about 0 s and 1 s, the next at 3 s
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	for i, c := range cases {
		// Without backoff a round every 250 ms would make about 10.
		if n := hits[i].Load(); n < 1 || n > 3 {
			t.Errorf("%s: %d requests in 2.5 s, want 1–3 (backing off)", c.name, n)
		}
	}
	if n := redirected.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
	head, err := l.Head(t.Context(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(head), "\n— ") != 1 {
		t.Errorf("head carries lines besides the server's own:\n%s", head)
	}
}
