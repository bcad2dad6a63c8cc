package replic_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/wire"
)

func open(t *testing.T) (*replic.Peers, *auth.Store, store.Store) {
	t.Helper()
	st, err := bolt.OpenFile(t.Context(), filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	accounts, err := auth.New(st, auth.Options{Argon: auth.TestArgon2, SecretKey: bytes.Repeat([]byte{7}, auth.SecretKeyLen)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.Add(t.Context(), "peer-b", "peer-b-password", auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	return replic.New(st, accounts), accounts, st
}

func key(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return secure.PublicKeyText(pub)
}

func TestCredentialsOpenWhatAddSealed(t *testing.T) {
	peers, _, _ := open(t)
	spec := replic.Spec{Peer: "[::1]:7001", Role: replic.RoleHome, Key: key(t), Chains: []string{"c"}, Account: "peer-b", User: "peer-a", Pass: "the-pass-at-a"}
	if _, err := peers.Add(t.Context(), spec); err != nil {
		t.Fatalf("add a home on an IPv6 address: %v", err)
	}
	user, pass, err := peers.Credentials(t.Context(), "[::1]:7001", replic.RoleHome)
	if err != nil || user != "peer-a" || pass != "the-pass-at-a" {
		t.Fatalf("Credentials = %q, %q, %v; want peer-a, the-pass-at-a", user, pass, err)
	}
	if _, _, err := peers.Credentials(t.Context(), "[::1]:7001", replic.RoleMirror); !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("Credentials of a role not added: %v, want ERR notfound", err)
	}
}

func TestSealedPasswordMovedToAnotherPeerDoesNotOpen(t *testing.T) {
	peers, _, st := open(t)
	k := key(t)
	for _, p := range []string{"a.example:1", "b.example:1"} {
		spec := replic.Spec{Peer: p, Role: replic.RoleMirror, Key: k, Chains: []string{"c"}, Account: "peer-b", User: "u-" + p[:1], Pass: "pass-" + p[:1]}
		if _, err := peers.Add(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
	}
	// An attacker with write access to ledger.db swaps the records.
	err := st.Update(t.Context(), func(tx store.WriteTx) error {
		a, _ := tx.Peer("mirror\x00a.example:1")
		b, _ := tx.Peer("mirror\x00b.example:1")
		a, b = bytes.Clone(a), bytes.Clone(b)
		if err := tx.PutPeer("mirror\x00a.example:1", b); err != nil {
			return err
		}
		return tx.PutPeer("mirror\x00b.example:1", a)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, pass, err := peers.Credentials(t.Context(), "a.example:1", replic.RoleMirror); err == nil {
		t.Fatalf("a swapped record opened: pass %q", pass)
	}
}

func TestAddOfAnotherKeyForAPeerAccountIsExistsAndChangesNothing(t *testing.T) {
	peers, accounts, _ := open(t)
	spec := replic.Spec{Peer: "a.example:1", Role: replic.RoleMirror, Key: key(t), Chains: []string{"c"}, Account: "peer-b", User: "u", Pass: "p"}
	if _, err := peers.Add(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	other := spec
	other.Peer, other.Key, other.Chains = "b.example:1", key(t), []string{"d"}
	var we *wire.Error
	if _, err := peers.Add(t.Context(), other); !errors.As(err, &we) || we.Code != wire.CodeExists {
		t.Fatalf("a second key for peer-b: %v, want ERR exists", err)
	}
	list, err := peers.List(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v; want the first entry only", list, err)
	}
	if ok, err := accounts.HasRight(t.Context(), "peer-b", "d", auth.RightReplicate); err != nil || ok {
		t.Fatalf("the refused add granted replicate on d: %v, %v", ok, err)
	}
	if ok, err := accounts.HasRight(t.Context(), "peer-b", "c", auth.RightReplicate); err != nil || !ok {
		t.Fatalf("replicate on c: %v, %v; want held", ok, err)
	}
}

func TestDeleteKeepsRightsAnotherEntryOfTheAccountNeeds(t *testing.T) {
	peers, accounts, _ := open(t)
	k := key(t)
	for _, r := range []replic.Role{replic.RoleMirror, replic.RoleHome} {
		spec := replic.Spec{Peer: "a.example:1", Role: r, Key: k, Chains: []string{"c", string(r)}, Account: "peer-b", User: "u", Pass: "p"}
		if _, err := peers.Add(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := peers.Delete(t.Context(), "a.example:1", replic.RoleMirror); err != nil {
		t.Fatal(err)
	}
	for chain, want := range map[string]bool{"c": true, "home": true, "mirror": false} {
		if ok, err := accounts.HasRight(t.Context(), "peer-b", chain, auth.RightReplicate); err != nil || ok != want {
			t.Errorf("after del of the mirror, replicate on %s = %v (%v), want %v", chain, ok, err, want)
		}
	}
}
