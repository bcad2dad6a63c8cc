package replic_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

func has(keys []ed25519.PublicKey, k ed25519.PublicKey) bool {
	return slices.ContainsFunc(keys, func(h ed25519.PublicKey) bool { return bytes.Equal(h, k) })
}

func TestHomeKeysAreTheHomeAndLogEntriesOfTheOrigin(t *testing.T) {
	peers, accounts, _ := open(t)
	if _, err := accounts.Add(t.Context(), "peer-c", "peer-c-password", "user"); err != nil {
		t.Fatal(err)
	}
	homePub, _, _ := ed25519.GenerateKey(rand.Reader)
	logPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	origin := secure.ServerIDOf(homePub)
	for _, spec := range []replic.Spec{
		{Peer: "a.example:6666", Role: replic.RoleHome, Key: secure.PublicKeyText(homePub), Chains: []string{"c"}, Account: "peer-b", User: "u", Pass: "p-1"},
		{Peer: "o.example:6666", Role: replic.RoleHome, Key: secure.PublicKeyText(otherPub), Chains: []string{"c"}, Account: "peer-c", User: "u", Pass: "p-1"},
		{Peer: verify.OriginLine(origin, "c"), Role: replic.RoleLog, Key: secure.PublicKeyText(logPub)},
		{Peer: verify.OriginLine(secure.ServerIDOf(otherPub), "c"), Role: replic.RoleLog, Key: secure.PublicKeyText(otherPub)},
	} {
		if _, err := peers.Add(t.Context(), spec); err != nil {
			t.Fatalf("add %s: %v", spec.Peer, err)
		}
	}
	keys, err := peers.HomeKeys(t.Context(), origin)
	if err != nil || len(keys) != 2 || !has(keys, homePub) || !has(keys, logPub) {
		t.Fatalf("HomeKeys = %d keys, %v; want the home's and the log's", len(keys), err)
	}
	keys, err = peers.HomeKeys(t.Context(), "0123456789abcdef0123456789abcdef")
	if err != nil || len(keys) != 0 {
		t.Fatalf("HomeKeys of an unknown home = %d keys, %v; want none", len(keys), err)
	}
}

// openLedger opens a ledger of its own store, signing with priv.
func openLedger(t *testing.T, priv ed25519.PrivateKey) *ledger.Ledger {
	t.Helper()
	st, err := bolt.OpenFile(t.Context(), filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub := priv.Public().(ed25519.PublicKey)
	l, err := ledger.Open(t.Context(), st, ledger.Config{ServerID: secure.ServerIDOf(pub), Signer: priv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.EnsureDefaultChains(t.Context()); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFollowRotationsAddsTheKeysAMirroredKeysChainLeadsTo(t *testing.T) {
	k0pub, k0, _ := ed25519.GenerateKey(rand.Reader)
	k1pub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, mirrorKey, _ := ed25519.GenerateKey(rand.Reader)
	home, mirror := openLedger(t, k0), openLedger(t, mirrorKey)
	origin := secure.ServerIDOf(k0pub)
	rec, err := verify.NewRotationRecord(origin, testenv.NewID(), 1, k0, k1pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := home.AppendServer(t.Context(), verify.KeysChain, rec); err != nil {
		t.Fatal(err)
	}

	// Before the keys chain is mirrored: the pinned keys alone.
	keys, err := replic.FollowRotations(t.Context(), mirror, origin, []ed25519.PublicKey{k0pub})
	if err != nil || len(keys) != 1 {
		t.Fatalf("FollowRotations without the keys chain = %d keys, %v; want 1", len(keys), err)
	}

	entry, _, err := home.Abs(t.Context(), verify.KeysChain, 0)
	if err != nil {
		t.Fatal(err)
	}
	head, err := home.Head(t.Context(), verify.KeysChain)
	if err != nil {
		t.Fatal(err)
	}
	meta := store.ChainMeta{Origin: origin, Name: verify.KeysChain, Public: true, ServerWritten: true}
	if _, err := mirror.Mirror(t.Context(), ledger.MirrorBatch{Meta: meta, Entries: [][]byte{entry}, Checkpoint: head,
		HomeKeys: []ed25519.PublicKey{k0pub}}); err != nil {
		t.Fatalf("mirror the keys chain: %v", err)
	}
	keys, err = replic.FollowRotations(t.Context(), mirror, origin, []ed25519.PublicKey{k0pub})
	if err != nil || len(keys) != 2 || !has(keys, k0pub) || !has(keys, k1pub) {
		t.Fatalf("FollowRotations from k0 = %d keys, %v; want k0 and k1", len(keys), err)
	}
	// From a key the history does not know: nothing is added.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	keys, err = replic.FollowRotations(t.Context(), mirror, origin, []ed25519.PublicKey{otherPub})
	if err != nil || len(keys) != 1 || !has(keys, otherPub) {
		t.Fatalf("FollowRotations from an unknown key = %d keys, %v; want it alone", len(keys), err)
	}
}
