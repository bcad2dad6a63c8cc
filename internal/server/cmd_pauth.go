package server

import (
	"context"
	"errors"

	"github.com/vserv/vserv/internal/wire"
)

// cmdPauth is a peer account's second step (DESIGN.md §3.5): a signature by
// the key pinned for the account over the handshake hash of this session,
// so it proves the key's holder is at the other end of this very session
// and is worth nothing replayed on another. It is a login step like twofa:
// it passes the backoff first, a refusal counts toward it and forgets the
// login (§3.2), so every new try costs a user + pass.
func cmdPauth(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	sig, err := req.Bytes(0, "signature")
	if err != nil {
		return nil, err
	}
	if !c.peer {
		return nil, wire.Errorf(wire.CodePerm, "pauth is for peer accounts; %s signs in with twofa", c.account)
	}
	name := c.account
	att, err := c.beginLoginStep(name)
	if err != nil {
		c.forgetLogin(ctx)
		return nil, err
	}
	if err := c.srv.accounts.CheckPeerSig(ctx, name, c.session.HandshakeHash(), sig); err != nil {
		att.End(err)
		if errors.Is(err, wire.ErrAuth) {
			c.log.Info("peer signature refused", "account", name)
		}
		c.forgetLogin(ctx)
		return nil, err
	}
	att.Succeed()
	c.setLoggedIn(name, stateVerified)
	c.log.Info("peer signed in", "account", name)
	return ok()
}
