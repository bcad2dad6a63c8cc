package server

import (
	"context"
	"errors"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/wire"
)

// Login concurrency and account changes (docs/protocol.md, the section of
// that name).

// beginLoginStep starts a pass, twofa, enrollment-code or old-password check
// for name from this connection's address (auth.Backoff.Begin): refused with
// the fixed ERR auth during a delay or while another step of the address is
// in flight, and counted as a failure until it ends.
func (c *conn) beginLoginStep(name string) (*auth.Attempt, error) {
	att, err := c.srv.backoff.Begin(auth.HomeName(name), c.addr.String())
	if err != nil {
		c.log.Info("login step refused: backoff or another step of this address in flight", "account", name)
	}
	return att, err
}

// checkGeneration runs before every command of a logged-in connection
// (states user and verified): it reads the account's generation from the
// store (through auth's cache), and when the account was changed since this
// login (password, disable, deletion, 2FA reset, a write grant that makes it
// owe a second factor in production mode) it logs the connection out and
// refuses the command with the fixed ERR auth. This check alone is what
// ends a changed account's sessions: it holds for a change made through any
// front end on the same store, and for a login whose hash was still being
// computed when the change committed. endSessions, which closes this
// server's own connections of the account at once, only saves them their
// next round trip. quit and logout end the login anyway and always run.
func (c *conn) checkGeneration(ctx context.Context, cmd string) error {
	if c.state < stateUser || cmd == "quit" || cmd == "exit" || cmd == "logout" {
		return nil
	}
	gen, err := c.srv.accounts.Generation(ctx, c.account)
	if err == nil && gen == c.gen {
		return nil
	}
	c.log.Info("login ended: the account changed", "account", c.account)
	c.forgetLogin(ctx)
	if err != nil && !errors.Is(err, wire.ErrNotFound) {
		return err // a storage fault: logged as internal, and logged out
	}
	return wire.Errorf(wire.CodeAuth, wire.AuthFailedText)
}

// adoptGeneration keeps this connection logged in after a change it made to
// its own account (chpass, u2fa reset of itself): gen is the generation that
// change wrote, not one read afterwards, so that a change made elsewhere at
// the same moment still ends this session at its next command.
func (c *conn) adoptGeneration(gen uint64) { c.gen = gen }
