package replcmd_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

const (
	peerName = "peer-b"
	peerPass = "peer-b-password"
)

// peerServer starts a server with the account peer-b made the peer account
// of a mirror pinned to the returned key, with replicate on vote.
func peerServer(t *testing.T) (*testenv.Server, ed25519.PrivateKey) {
	t.Helper()
	srv := testenv.StartTwoFA(t)
	srv.AddUser(peerName, peerPass, false)
	_, priv, key := peerKey(t)
	admin := srv.AdminClient()
	defer admin.Close()
	if err := admin.AddHost(ctx, "127.0.0.1:7001", client.HostSpec{Role: "mirror", Key: key, Chains: []string{"vote"}, Account: peerName, User: "peer-a", Pass: "p-at-b-1"}); err != nil {
		t.Fatalf("ihost add: %v", err)
	}
	return srv, priv
}

// peerLogin logs in as the peer account with its password: a factor is owed.
func peerLogin(t *testing.T, srv *testenv.Server) *client.Client {
	t.Helper()
	c, owed := testenv.LoginPassword(t, srv, peerName, peerPass)
	if !owed {
		t.Fatal("pass of a peer account: needs2fa = false, want true (it must pauth)")
	}
	return c
}

func TestPauthWithThePinnedKeyOverThisSessionVerifies(t *testing.T) {
	srv, priv := peerServer(t)
	c := peerLogin(t, srv)
	if st := testenv.SessionState(t, c); st != "user" {
		t.Fatalf("after pass, state %s, want user", st)
	}
	if err := c.PeerAuth(ctx, priv); err != nil {
		t.Fatalf("pauth with the pinned key: %v", err)
	}
	if st := testenv.SessionState(t, c); st != "verified" {
		t.Fatalf("after pauth, state %s, want verified", st)
	}
	// A second pauth has nothing left to prove.
	err := c.PeerAuth(ctx, priv)
	testenv.WantCode(t, err, wire.CodeState, "pauth in state verified")
	// A new handshake inside the session keeps the login.
	if err := c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if st := testenv.SessionState(t, c); st != "verified" {
		t.Fatalf("after a rehandshake, state %s, want verified", st)
	}
}

func TestPauthRefusalsAreAuthAndReturnToSession(t *testing.T) {
	srv, priv := peerServer(t)
	_, other, _ := peerKey(t)
	// A signature over another session's handshake hash: what someone who
	// saw (or relayed) the peer's pauth elsewhere could replay.
	first := peerLogin(t, srv)
	replayed := ed25519.Sign(priv, secure.PeerAuthMessage(first.HandshakeHash()))
	// On the session whose hash was signed it verifies (and clears the
	// backoff record, so that each case below is checked, not delayed).
	if err := first.PeerAuthSig(ctx, replayed); err != nil {
		t.Fatalf("pauth on the session the signature was made for: %v", err)
	}
	cases := []struct {
		name string
		sig  func(c *client.Client) []byte
	}{
		{"another key", func(c *client.Client) []byte {
			return ed25519.Sign(other, secure.PeerAuthMessage(c.HandshakeHash()))
		}},
		{"another session's hash", func(*client.Client) []byte { return replayed }},
		{"the hash without the context", func(c *client.Client) []byte { return ed25519.Sign(priv, c.HandshakeHash()) }},
		{"a short signature", func(c *client.Client) []byte {
			return ed25519.Sign(priv, secure.PeerAuthMessage(c.HandshakeHash()))[:63]
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := peerLogin(t, srv)
			err := c.PeerAuthSig(ctx, tc.sig(c))
			testenv.WantAuthFailed(t, err, "pauth with "+tc.name)
			if st := testenv.SessionState(t, c); st != "session" {
				t.Fatalf("after a refused pauth, state %s, want session", st)
			}
		})
	}
	_, err := first.Call(ctx, "pauth", replayed)
	testenv.WantCode(t, err, wire.CodeState, "pauth in state verified")
}

func TestPauthFailuresCountTowardTheBackoff(t *testing.T) {
	srv, priv := peerServer(t)
	_, other, _ := peerKey(t)
	// Three free failures per (account, address); the fourth try then
	// meets the delay and is refused unchecked, even with the right key.
	for range 4 {
		c := peerLogin(t, srv)
		err := c.PeerAuthSig(ctx, ed25519.Sign(other, secure.PeerAuthMessage(c.HandshakeHash())))
		testenv.WantAuthFailed(t, err, "pauth with another key")
	}
	c, err := testenv.DialAddr(t, srv.Addr, client.Options{NoKnownHosts: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login(ctx, peerName, peerPass)
	if err == nil {
		err = c.PeerAuth(ctx, priv)
	}
	testenv.WantAuthFailed(t, err, "the right key right after four failures (backoff)")
}

func TestPauthFromAnAccountThatIsNoPeerIsPerm(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	srv.AddUser("ann", "ann-password-1", false)
	c := srv.Login("ann", "ann-password-1")
	en, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	otp := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, "ann", id.ServerID)}
	if err := c.TwoFA(ctx, otp.Next()); err != nil {
		t.Fatalf("confirm the enrollment: %v", err)
	}
	c.Close()
	_, priv, _ := peerKey(t)
	ann, owed := testenv.LoginPassword(t, srv, "ann", "ann-password-1")
	if !owed {
		t.Fatal("ann has a factor: needs2fa = false")
	}
	err = ann.PeerAuth(ctx, priv)
	testenv.WantCode(t, err, wire.CodePerm, "pauth from an ordinary account")
	if err := ann.TwoFA(ctx, otp.Next()); err != nil {
		t.Fatalf("the refused pauth cost ann her login: twofa: %v", err)
	}
}

func TestPeerAccountCannotUseTwofaOrQr(t *testing.T) {
	srv, _ := peerServer(t)
	c := peerLogin(t, srv)
	_, err := c.Call(ctx, "twofa", "123456")
	testenv.WantCode(t, err, wire.CodePerm, "twofa from a peer account")
	_, err = c.Enroll(ctx, "")
	testenv.WantCode(t, err, wire.CodePerm, "qr from a peer account")
	if st := testenv.SessionState(t, c); st != "user" {
		t.Fatalf("after the refusals, state %s, want user (pauth still possible)", st)
	}
}

func TestPeerAccountOnlyReplicates(t *testing.T) {
	srv, priv := peerServer(t)
	admin := srv.AdminClient()
	// A write grant gives a peer account nothing.
	if _, err := admin.Call(ctx, "grant", peerName, "vote", "write"); err != nil {
		t.Fatal(err)
	}
	c := peerLogin(t, srv)
	if err := c.PeerAuth(ctx, priv); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		cmd  string
		args []any
		code wire.Code
	}{
		{"ls", nil, wire.CodePerm},
		{"pwd", nil, wire.CodePerm},
		{"mkdir", []any{"d"}, wire.CodePerm},
		{"fput", []any{"f", uint64(0), make([]byte, 32)}, wire.CodePerm},
		{"chpass", []any{peerPass, "another-password-1"}, wire.CodePerm},
		{"ulist", nil, wire.CodePerm},
		{"rput", []any{"vote", wire.RawMessage(testenv.NewRecord(t, map[string]any{"type": "x"}))}, wire.CodePerm},
	}
	for _, r := range refused {
		_, err := c.Call(ctx, r.cmd, r.args...)
		testenv.WantCode(t, err, r.code, r.cmd+" from a peer account")
	}
	// What an anonymous session may do stays: reads of public chains.
	if _, err := c.Call(ctx, "rsize", "vote"); err != nil {
		t.Fatalf("rsize vote from a peer account: %v", err)
	}
	if _, err := c.Call(ctx, "chains"); err != nil {
		t.Fatalf("chains from a peer account: %v", err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout from a peer account: %v", err)
	}
}

func TestIhostDelRevokesReplicateAndEndsThePeerSessions(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	srv.AddUser(peerName, peerPass, false)
	_, priv, key := peerKey(t)
	admin := srv.AdminClient()
	if _, err := admin.Call(ctx, "mkchain", "p", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.AddHost(ctx, "127.0.0.1:7001", client.HostSpec{Role: "mirror", Key: key, Chains: []string{"p"}, Account: peerName, User: "peer-a", Pass: "p-at-b-1"}); err != nil {
		t.Fatal(err)
	}
	c := peerLogin(t, srv)
	if err := c.PeerAuth(ctx, priv); err != nil {
		t.Fatal(err)
	}
	// replicate makes the private chain p visible to the peer; reading its
	// entries needs read (the replication commands will use replicate).
	_, err := c.Call(ctx, "rsize", "p")
	testenv.WantCode(t, err, wire.CodePerm, "rsize p with replicate only")

	if err := admin.DeleteHost(ctx, "127.0.0.1:7001", ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(ctx, "rsize", "vote")
	testenv.WantAuthFailed(t, err, "the peer's session after ihost del")
	// It stays a peer account (its password alone is no login), without
	// the right: p no longer exists for it.
	c2 := peerLogin(t, srv)
	if err := c2.PeerAuth(ctx, priv); err != nil {
		t.Fatalf("pauth after ihost del: %v", err)
	}
	_, err = c2.Call(ctx, "rsize", "p")
	testenv.WantCode(t, err, wire.CodeNotFound, "rsize p after ihost del")
}
